"""Honour the client's ``stop_sequences`` locally, on streamed text.

Kiro has no stop-sequence parameter, so the gateway watches the answer text itself: when a
requested sequence appears, the text is cut just before it and the turn ends with
``stop_reason: "stop_sequence"`` (docs/response.md, The rules). A sequence can straddle
fragments, so the last ``len(longest) - 1`` characters are held back until the next fragment
decides them; the buffer never holds more than that plus one fragment, so nothing is rescanned
twice.
"""

from __future__ import annotations

__all__ = ["StopSequenceMatcher"]


class StopSequenceMatcher:
    """Feed text with ``feed``; ``flush`` releases the held-back tail at a block end."""

    def __init__(self, sequences: tuple[str, ...]) -> None:
        #: The non-empty sequences, in the client's order.
        self.sequences = tuple(s for s in sequences if s)
        self._hold = max((len(s) for s in self.sequences), default=1) - 1
        self._buf = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Return ``(text that is certain, matched sequence or None)``.

        After a match, the returned text ends right before the sequence, and the rest of the
        input (and everything fed later) must be dropped by the caller.
        """
        if not self.sequences:
            return text, None
        buf = self._buf + text
        best: tuple[int, int, str] | None = None
        for seq in self.sequences:
            i = buf.find(seq)
            # The sequence that *completes* first wins, as when a model stops while generating;
            # unlike "starts first", that does not depend on where the fragments were cut. At the
            # same end, the longer one (it starts earlier); then the first listed.
            if i >= 0:
                key = (i + len(seq), i)
                if best is None or key < best[:2]:
                    best = (key[0], key[1], seq)
        if best is not None:
            self._buf = ""
            return buf[: best[1]], best[2]
        keep = max(0, len(buf) - self._hold)
        self._buf = buf[keep:]
        return buf[:keep], None

    def flush(self) -> str:
        """Release the held-back tail (no sequence can complete any more)."""
        buf, self._buf = self._buf, ""
        return buf
