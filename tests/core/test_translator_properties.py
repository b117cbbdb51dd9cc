"""Property tests: random valid upstream streams, chunked arbitrarily, always give a stream the
strict checker accepts, with exactly the content that went in; random corruption always ends in
an error event, never in something that looks like success."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kiro_protocol.responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStopped,
    SignatureDelta,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
)
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    IgnoredUpstreamEvent,
    Metering,
    ReasoningContent,
    ToolUse,
    UpstreamEvent,
)
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from kiro_protocol._util import NEED_DATA
from tests.sse_checker import check_anthropic_stream
from tests.core.test_translator import MESSAGE_ID, make_plan

# Text that exercises JSON escaping, SSE line breaks and multi-byte UTF-8, but no thinking tags
# (those are covered by tests/core/test_thinking.py and would change the expected text).
TEXT = st.text(alphabet=st.sampled_from(list("ab \n\r\t\"\\{}:é中🎉\u2028")), min_size=1, max_size=12)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
TOOL_INPUT = st.dictionaries(st.text(min_size=1, max_size=6), JSON_VALUE, max_size=4)


def _split(data: bytes | str, cuts: list[int]) -> list[Any]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


class TranslatorMachine(RuleBasedStateMachine):
    """Feeds random valid upstream events, frame bytes cut anywhere, into one translator."""

    def __init__(self) -> None:
        super().__init__()
        self.expected: list[tuple[str, Any]] = []  # ("text", str) / ("tool", dict) / ("thinking", str)
        self.pending = b""
        self.tools = 0
        self.output = bytearray()
        self.events: list[LifecycleEvent] = []
        self.open_index: int | None = None
        self.next_index = 0
        self.sent = 0

    @initialize(thinking=st.booleans())
    def start(self, thinking: bool) -> None:
        self.thinking = thinking
        self.translator = ResponseTranslator(make_plan(thinking=thinking), message_id=MESSAGE_ID, now=0.0)
        self._drain()

    # -- feeding ---------------------------------------------------------------------------

    def _send(self, *events: UpstreamEvent) -> None:
        self.sent += len(events)
        self.pending += b"".join(encode_upstream_event(e) for e in events)

    @rule(cut=st.integers(min_value=0, max_value=10_000))
    def deliver(self, cut: int) -> None:
        """Hand the translator an arbitrary prefix of the bytes produced so far."""
        n = cut % (len(self.pending) + 1)
        chunk, self.pending = self.pending[:n], self.pending[n:]
        if chunk:
            self.translator.receive_data(chunk)
            self._drain()

    def _add(self, kind: str, value: Any) -> None:
        if self.expected and self.expected[-1][0] == kind and kind != "tool":
            self.expected[-1] = (kind, self.expected[-1][1] + value)
        else:
            self.expected.append((kind, value))

    @rule(text=TEXT)
    def text(self, text: str) -> None:
        self._send(AssistantResponse(content=text))
        self._add("text", text)

    @rule(args=TOOL_INPUT, cuts=st.lists(st.integers(0, 200), max_size=4), with_stop=st.booleans(), name=st.sampled_from(["Read", "Write", "Bash"]))
    def tool_call(self, args: dict[str, Any], cuts: list[int], with_stop: bool, name: str) -> None:
        self.tools += 1
        tid = f"tooluse_{self.tools:022d}"
        fragments = _split(json.dumps(args, ensure_ascii=False), cuts)
        self._send(ToolUse(tool_use_id=tid, name=name, input="", stop=False))
        self._send(*(ToolUse(tool_use_id=tid, name=name, input=f, stop=False) for f in fragments))
        if with_stop:
            self._send(ToolUse(tool_use_id=tid, name=name, input="", stop=True))
        else:
            # Without a stop flag the next block or the end closes the call; an unrelated
            # event in between must not.
            self._send(Metering(unit="credit", usage=0.01))
        self._add("tool", args)

    @precondition(lambda self: getattr(self, "thinking", False))
    @rule(text=TEXT)
    def reasoning(self, text: str) -> None:
        self._send(ReasoningContent(text=text))
        self._add("thinking", text)

    @rule(pct=st.floats(min_value=0, max_value=100))
    def metadata(self, pct: float) -> None:
        self._send(ContextUsage(percentage=pct), IgnoredUpstreamEvent(event_type="followupPromptEvent"))

    # -- invariants --------------------------------------------------------------------------

    def _drain(self) -> None:
        self.output += self.translator.data_to_send()
        while (event := self.translator.next_event()) is not NEED_DATA:
            self.events.append(event)
            self._check_event(event)

    def _check_event(self, event: LifecycleEvent) -> None:
        if isinstance(event, ContentBlockStarted):
            assert self.open_index is None, "a block started while another is open"
            assert event.index == self.next_index, "indexes are sequential"
            self.open_index = event.index
            self.next_index += 1
        elif isinstance(event, TextDelta | ThinkingDelta | ToolInputDelta | SignatureDelta):
            assert event.index == self.open_index, "delta for the open block only"
        elif isinstance(event, ContentBlockStopped):
            assert event.index == self.open_index, "stop for the open block only"
            self.open_index = None
        elif isinstance(event, MessageDelta | MessageStopped):
            assert self.open_index is None
        # The only failure of a valid stream: a body without a single event.
        assert not isinstance(event, StreamFailed) or self.sent == 0, event

    @invariant()
    def not_finished_early(self) -> None:
        if hasattr(self, "translator"):
            assert not self.translator.finished

    def teardown(self) -> None:
        if not hasattr(self, "translator"):
            return
        if self.pending:
            self.translator.receive_data(self.pending)
        self.translator.receive_data(b"")
        self._drain()
        transcript = check_anthropic_stream(bytes(self.output))
        if self.sent == 0:
            assert transcript.error is not None
            return
        assert transcript.success
        got: list[tuple[str, Any]] = []
        for block in transcript.content:
            if block["type"] == "text":
                got.append(("text", block["text"]))
            elif block["type"] == "thinking":
                got.append(("thinking", block["thinking"]))
            elif block["type"] == "tool_use":
                got.append(("tool", block["input"]))
        assert got == self.expected
        tool_blocks = [e for e in self.events if isinstance(e, ContentBlockStarted) and isinstance(e.block, ToolUseBlock)]
        assert len(tool_blocks) == self.tools
        assert (transcript.stop_reason == "tool_use") == (self.tools > 0)


TestTranslatorMachine = TranslatorMachine.TestCase
TestTranslatorMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


# -- corruption --------------------------------------------------------------------------------

EVENTS = st.lists(
    st.one_of(
        TEXT.map(lambda t: AssistantResponse(content=t)),
        TOOL_INPUT.map(lambda a: ToolUse(tool_use_id="tooluse_x", name="t", input=json.dumps(a), stop=True)),
        st.floats(0, 100).map(lambda p: ContextUsage(percentage=p)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(events=EVENTS, position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255), cuts=st.lists(st.integers(0, 5000), max_size=5))
def test_a_corrupted_byte_always_ends_in_an_error_event(
    events: list[UpstreamEvent], position: int, flip: int, cuts: list[int]
) -> None:
    data = bytearray(b"".join(encode_upstream_event(e) for e in events))
    data[position % len(data)] ^= flip
    translator = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    out = bytearray(translator.data_to_send())
    for chunk in _split(bytes(data), cuts):
        translator.receive_data(chunk)
        out += translator.data_to_send()
    translator.receive_data(b"")
    out += translator.data_to_send()
    transcript = check_anthropic_stream(bytes(out))
    assert not transcript.success and transcript.error is not None
    assert translator.failed and "message_stop" not in transcript.types


@settings(max_examples=150, deadline=None)
@given(events=EVENTS, cut=st.integers(min_value=1))
def test_a_body_cut_inside_a_frame_is_an_error(events: list[UpstreamEvent], cut: int) -> None:
    frames = [encode_upstream_event(e) for e in events]
    data = b"".join(frames)
    boundaries = {0}
    for frame in frames:
        boundaries.add(max(boundaries) + len(frame))
    n = cut % len(data)
    if n in boundaries:
        n += 1  # a cut on a frame boundary is a shorter valid stream, not a truncation
    translator = ResponseTranslator(make_plan(stream=False), message_id=MESSAGE_ID, now=0.0)
    translator.receive_data(data[:n])
    translator.receive_data(b"")
    response = translator.final_response()
    assert response is not None and response.status == 502
    assert json.loads(response.body)["error"]["type"] == "api_error"
