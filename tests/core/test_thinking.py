"""ThinkingSplitter: inline <thinking> tags split into thinking and text, whatever the cuts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.responses._thinking import Segment, ThinkingSplitter


def split(chunks: list[str]) -> list[tuple[bool, str]]:
    """Run the splitter and merge adjacent segments of the same kind (cuts are arbitrary)."""
    splitter = ThinkingSplitter()
    segments: list[Segment] = []
    for chunk in chunks:
        segments += splitter.feed(chunk)
    segments += splitter.flush()
    merged: list[tuple[bool, str]] = []
    for seg in segments:
        assert seg.text, "empty segments are never emitted"
        if merged and merged[-1][0] == seg.thinking:
            merged[-1] = (seg.thinking, merged[-1][1] + seg.text)
        else:
            merged.append((seg.thinking, seg.text))
    return merged


CASES = [
    # Kiro's usual shape: one newline after the tag dropped, the blank line after the end dropped.
    ("<thinking>\nThe user greets me.</thinking>\n\nHi there!", [(True, "The user greets me."), (False, "Hi there!")]),
    # Blank text before the tag is dropped; non-blank text before it is text.
    ("\n  <thinking>a</thinking>\n\nb", [(True, "a"), (False, "b")]),
    ("Intro <thinking>a</thinking>\n\nb", [(False, "Intro "), (True, "a"), (False, "b")]),
    # Quoted mentions of the tags are text / stay inside the thinking.
    ("Use `<thinking>` tags", [(False, "Use `<thinking>` tags")]),
    ('say "<thinking>" now', [(False, 'say "<thinking>" now')]),
    ("<thinking>the tag '</thinking>' ends it</thinking>\n\nok", [(True, "the tag '</thinking>' ends it"), (False, "ok")]),
    # A closing tag not followed by a blank line is not the end ...
    ("<thinking>a</thinking> b</thinking>\n\nc", [(True, "a</thinking> b"), (False, "c")]),
    # ... except at the very end of the text.
    ("<thinking>only thoughts</thinking>", [(True, "only thoughts")]),
    ("<thinking>unclosed", [(True, "unclosed")]),
    # Only the first section is thinking.
    ("<thinking>a</thinking>\n\nb <thinking>c</thinking>\n\n", [(True, "a"), (False, "b <thinking>c</thinking>\n\n")]),
    # No tag at all.
    ("plain answer", [(False, "plain answer")]),
    ("", []),
    ("<thinking>\n</thinking>\n\nx", [(False, "x")]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_and_char_by_char(text: str, expected: list[tuple[bool, str]]) -> None:
    assert split([text]) == expected
    assert split(list(text)) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
@given(data=st.data())
def test_any_cut_gives_the_same_split(text: str, expected: list[tuple[bool, str]], data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    assert split([text[a:b] for a, b in zip(bounds, bounds[1:])]) == expected


@given(st.lists(st.text(alphabet="<>/thinkg\n`' ab", max_size=12), max_size=8))
def test_nothing_is_lost_or_invented(chunks: list[str]) -> None:
    """Whatever the text, the output is the input minus at most the tags and their newlines."""
    text = "".join(chunks)
    merged = split(chunks)
    out = "".join(t for _, t in merged)
    assert len(out) <= len(text)
    assert split([text]) == merged  # chunking invariance on arbitrary text
    if "<thinking>" not in text:
        # Without an opening tag, only blank text can be dropped (when that is all there is,
        # it is released at the end).
        assert out == text


def test_held_back_text_is_bounded() -> None:
    splitter = ThinkingSplitter()
    out = splitter.feed("x" * 1000)
    assert sum(len(s.text) for s in out) >= 1000 - len("<thinking>")
    splitter.feed("<thinking>")
    out = splitter.feed("y" * 1000)
    assert all(s.thinking for s in out)
    assert sum(len(s.text) for s in out) >= 1000 - len("</thinking>\n\n") - 1


def test_in_thinking_flag_and_text_after_flush() -> None:
    splitter = ThinkingSplitter()
    splitter.feed("<thinking>\nabc")
    assert splitter.in_thinking
    assert splitter.flush() == [Segment(thinking=True, text="abc")]
    assert not splitter.in_thinking
    assert splitter.feed("<thinking>x") == [Segment(thinking=False, text="<thinking>x")]
