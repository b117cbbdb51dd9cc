"""The thinking splitter (``kiro_protocol.responses.ThinkingSplitter``) when the newline after
``<thinking>`` arrives in a later fragment than the tag."""

from __future__ import annotations

from kiro_protocol.responses import Segment, ThinkingSplitter


def run(*fragments: str) -> list[Segment]:
    splitter = ThinkingSplitter()
    out: list[Segment] = []
    for fragment in fragments:
        out.extend(splitter.feed(fragment))
    out.extend(splitter.flush())
    return out


def joined(segments: list[Segment]) -> list[tuple[bool, str]]:
    """Adjacent segments of one kind merged (the cut between them is not behaviour)."""
    merged: list[tuple[bool, str]] = []
    for s in segments:
        if merged and merged[-1][0] == s.thinking:
            merged[-1] = (s.thinking, merged[-1][1] + s.text)
        else:
            merged.append((s.thinking, s.text))
    return merged


def test_the_newline_after_the_tag_is_dropped_when_it_comes_in_the_next_fragment() -> None:
    out = run("<thinking>", "\nreason</thinking>\n\nanswer")
    assert joined(out) == [(True, "reason"), (False, "answer")]


def test_only_one_newline_is_dropped_and_only_right_after_the_tag() -> None:
    assert joined(run("<thinking>", "\n\nreason</thinking>\n\nanswer")) == [(True, "\nreason"), (False, "answer")]
    assert joined(run("<thinking>", "reason", "\n</thinking>\n\nx")) == [(True, "reason\n"), (False, "x")]


def test_an_empty_fragment_yields_nothing_and_keeps_the_pending_newline_drop() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<thinking>") == []
    assert splitter.feed("") == []
    out = splitter.feed("\nr") + splitter.flush()
    assert joined(out) == [(True, "r")]
