"""Split Kiro's inline ``<thinking>...</thinking>`` answer text into thinking and text, incrementally.

Kiro has no native thinking switch on the IDE endpoint: the request converter asks for it with a
prompt prefix, and the model then writes its reasoning inline, as
``<thinking>\\n...reasoning...</thinking>\\n\\nanswer`` (docs/kiro-protocol.md, Thinking by
prompt tags, and Thinking in the answer). Fragments cut the tags anywhere (``<thin`` +
``king>``), so the splitter holds back the few characters that could still become a tag and
never rescans what it already searched (style R11).

Rules (the [PY]/[RS] behaviour, which real clients have lived with):

* a real opening tag is ``<thinking>`` not wrapped in a backquote or quote (a model *talking
  about* the tag writes ```<thinking>``` or ``"<thinking>"``); one newline right after it is dropped;
* a real closing tag is ``</thinking>`` not preceded by a quote and followed by a blank line
  (``\\n\\n``, dropped too); at the end of the text a bare ``</thinking>`` is accepted;
* text before the opening tag is text, except that blank text before it is dropped (no empty
  text block ahead of the thinking block);
* only the first thinking section is extracted; everything after it is text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Segment", "ThinkingSplitter"]

_OPEN = "<thinking>"
_CLOSE = "</thinking>"
_CLOSE_DELIMITER = "\n\n"
_QUOTES = frozenset("`\"'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """A run of text of one kind, in order."""

    #: True for reasoning (a thinking block), False for answer text.
    thinking: bool
    text: str


class _Phase(enum.Enum):
    #: Looking for the opening tag; text seen so far is answer text.
    SEARCH_OPEN = "search_open"
    #: Inside the thinking section, looking for the closing tag.
    IN_THINKING = "in_thinking"
    #: The thinking section is over: everything is answer text.
    PASSTHROUGH = "passthrough"


class ThinkingSplitter:
    """Feed answer fragments with ``feed``; call ``flush`` at a tool call or the end of the text."""

    def __init__(self) -> None:
        self._phase = _Phase.SEARCH_OPEN
        self._buf = ""
        # Everything in _buf before this offset was already searched for the current tag.
        self._searched = 0
        # The character just before _buf (for the quote check), "" at the very start.
        self._prev = ""
        # Whether any answer text was emitted; blank text is only dropped before that.
        self._emitted_text = False
        # One "\n" right after the opening tag is dropped, even if it arrives in the next fragment.
        self._strip_newline = False

    @property
    def in_thinking(self) -> bool:
        """Whether the splitter is inside the thinking section."""
        return self._phase is _Phase.IN_THINKING

    def feed(self, text: str) -> list[Segment]:
        """Add a fragment; return the segments that are now certain (possibly none)."""
        if not text:
            return []
        if self._phase is _Phase.PASSTHROUGH:
            return [self._text(text)]
        if self._strip_newline:
            self._strip_newline = False
            if text.startswith("\n"):
                text = text[1:]
        self._buf += text
        out: list[Segment] = []
        while True:
            if self._phase is _Phase.SEARCH_OPEN:
                progressed = self._search_open(out)
            elif self._phase is _Phase.IN_THINKING:
                progressed = self._search_close(out)
            else:
                if self._buf:
                    out.append(self._text(self._buf))
                    self._buf = ""
                progressed = False
            if not progressed:
                return [s for s in out if s.text]

    def flush(self) -> list[Segment]:
        """Release everything held back (at a tool call or at the end of the response).

        An unclosed thinking section ends here; a trailing bare ``</thinking>`` is accepted.
        After a flush inside the thinking section, later text is answer text.
        """
        buf, self._buf, self._searched = self._buf, "", 0
        self._strip_newline = False
        if self._phase is _Phase.IN_THINKING:
            self._phase = _Phase.PASSTHROUGH
            stripped = buf.rstrip()
            if stripped.endswith(_CLOSE):
                buf = stripped[: -len(_CLOSE)]
            return [Segment(thinking=True, text=buf)] if buf else []
        return [self._text(buf)] if buf else []

    # -- internals ---------------------------------------------------------------------------

    def _text(self, text: str) -> Segment:
        self._emitted_text = True
        return Segment(thinking=False, text=text)

    def _search_open(self, out: list[Segment]) -> bool:
        buf = self._buf
        start = self._searched
        while True:
            i = buf.find(_OPEN, start)
            if i < 0:
                break
            before = buf[i - 1] if i > 0 else self._prev
            end = i + len(_OPEN)
            if end == len(buf):
                # The next character decides whether this is a quoted mention; wait for it.
                self._release(out, i, thinking=False, resume=i)
                return False
            if before in _QUOTES or buf[end] in _QUOTES:
                start = i + 1
                continue
            head = buf[:i]
            if head and (self._emitted_text or head.strip()):
                out.append(self._text(head))
            self._prev = ">"
            self._buf = buf[end:]
            self._searched = 0
            self._phase = _Phase.IN_THINKING
            if self._buf.startswith("\n"):
                self._buf = self._buf[1:]
            elif not self._buf:
                self._strip_newline = True
            return True
        # No tag: all but the last len(tag)-1 characters are certainly text.
        keep = max(0, len(buf) - (len(_OPEN) - 1))
        self._release(out, keep, thinking=False, resume=keep)
        return False

    def _search_close(self, out: list[Segment]) -> bool:
        buf = self._buf
        start = self._searched
        while True:
            j = buf.find(_CLOSE, start)
            if j < 0:
                break
            before = buf[j - 1] if j > 0 else self._prev
            end = j + len(_CLOSE)
            if before in _QUOTES:
                start = j + 1
                continue
            after = buf[end : end + len(_CLOSE_DELIMITER)]
            if after != _CLOSE_DELIMITER:
                if len(after) < len(_CLOSE_DELIMITER) and _CLOSE_DELIMITER.startswith(after):
                    # Not decided until the blank line is there (or not); wait.
                    self._release(out, j, thinking=True, resume=j)
                    return False
                start = j + 1
                continue
            if j:
                out.append(Segment(thinking=True, text=buf[:j]))
            self._phase = _Phase.PASSTHROUGH
            self._buf = buf[end + len(_CLOSE_DELIMITER) :]
            self._searched = 0
            return True
        # Hold back what could still be the start of "</thinking>\n\n".
        keep = max(0, len(buf) - (len(_CLOSE) + len(_CLOSE_DELIMITER) - 1))
        self._release(out, keep, thinking=True, resume=max(keep, len(buf) - (len(_CLOSE) - 1)))
        return False

    def _release(self, out: list[Segment], upto: int, *, thinking: bool, resume: int) -> None:
        """Emit ``_buf[:upto]`` and keep the rest; the next search starts at ``resume``."""
        head = self._buf[:upto]
        if head and not thinking and not self._emitted_text and not head.strip():
            # Blank text before anything else is held, not emitted: it may precede <thinking>.
            self._searched = resume
            return
        if head:
            out.append(Segment(thinking=True, text=head) if thinking else self._text(head))
            self._prev = head[-1]
            self._buf = self._buf[upto:]
        self._searched = resume - len(head)
