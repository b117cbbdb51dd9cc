"""The Anthropic encoders: SSE bytes per lifecycle event, and the non-streaming message body."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kiro_protocol.responses._anthropic import AnthropicMessageEncoder, block_start_json, dumps, usage_json
from kiro_protocol._errors import ErrorKind
from kiro_protocol.responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    RedactedThinkingBlock,
    SignatureDelta,
    StopReason,
    StreamFailed,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
    Usage,
)
from kiro_protocol.responses._anthropic import AnthropicStreamEncoder
from kiro_protocol.wire._sse import SSE_MEDIA_TYPE, sse_event
from tests.sse_checker import check_anthropic_message, check_anthropic_stream, parse_sse

START = MessageStarted(message_id="msg_" + "x" * 24, model="claude-opus-4-5", usage=Usage(input_tokens=5, output_tokens=0))
EVENTS: list[LifecycleEvent] = [
    START,
    Ping(),
    ContentBlockStarted(index=0, block=ThinkingBlock()),
    ThinkingDelta(index=0, thinking="hmm"),
    SignatureDelta(index=0, signature="c2ln"),
    ContentBlockStopped(index=0),
    ContentBlockStarted(index=1, block=RedactedThinkingBlock(data="opaque")),
    ContentBlockStopped(index=1),
    ContentBlockStarted(index=2, block=TextBlock()),
    TextDelta(index=2, text="Hello "),
    TextDelta(index=2, text="wörld\n"),
    ContentBlockStopped(index=2),
    ContentBlockStarted(index=3, block=ToolUseBlock(id="tooluse_1", name="Read")),
    ToolInputDelta(index=3, partial_json='{"path":'),
    ToolInputDelta(index=3, partial_json='"/x"}'),
    ContentBlockStopped(index=3),
    MessageDelta(
        stop_reason=StopReason.TOOL_USE,
        stop_sequence=None,
        usage=Usage(input_tokens=5, output_tokens=9, cache_read_input_tokens=100),
    ),
    MessageStopped(),
]


def test_sse_event_format() -> None:
    assert sse_event("ping", b'{"type":"ping"}') == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_stream_encoder_writes_one_valid_event_per_lifecycle_event() -> None:
    encoder = AnthropicStreamEncoder()
    assert encoder.streaming and encoder.media_type == SSE_MEDIA_TYPE
    chunks = [encoder.send(e) for e in EVENTS]
    for chunk in chunks:
        (event,) = parse_sse(chunk)
        assert event.data_lines == 1 and json.loads(event.data)["type"] == event.event
        assert chunk.count(b"\n") == 3  # event line, data line, blank line
    transcript = check_anthropic_stream(b"".join(chunks))
    assert transcript.success
    assert transcript.content == [
        {"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Hello wörld\n"},
        {"type": "tool_use", "id": "tooluse_1", "name": "Read", "input": {"path": "/x"}},
    ]
    assert transcript.message["usage"] == {"input_tokens": 5, "output_tokens": 9, "cache_read_input_tokens": 100}


def test_json_encoder_builds_the_same_message() -> None:
    encoder = AnthropicMessageEncoder()
    assert not encoder.streaming and encoder.media_type == "application/json"
    outputs = [encoder.send(e) for e in EVENTS]
    assert all(o == b"" for o in outputs[:-1])
    body = outputs[-1]
    message = check_anthropic_message(body)
    streamed = check_anthropic_stream(b"".join(AnthropicStreamEncoder().send(e) for e in EVENTS)).message
    assert message == streamed
    assert message["stop_reason"] == "tool_use" and message["stop_sequence"] is None
    assert encoder.message == message


def test_error_event_is_anthropics_error_body() -> None:
    data = AnthropicStreamEncoder().send(StreamFailed(kind=ErrorKind.OVERLOADED, message="Kiro is busy"))
    assert data == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Kiro is busy"}}\n\n'


def test_json_encoder_after_failure_returns_nothing_and_keeps_the_error() -> None:
    encoder = AnthropicMessageEncoder()
    failure = StreamFailed(kind=ErrorKind.API, message="broken")
    events: list[LifecycleEvent] = [START, ContentBlockStarted(index=0, block=TextBlock()), TextDelta(index=0, text="x"), failure]
    for event in events:
        assert encoder.send(event) == b""
    assert encoder.failure == failure and encoder.message is None


def test_stop_sequence_is_reported() -> None:
    delta = MessageDelta(stop_reason=StopReason.STOP_SEQUENCE, stop_sequence="\n\nHuman:", usage=Usage(input_tokens=1, output_tokens=1))
    (event,) = parse_sse(AnthropicStreamEncoder().send(delta))
    assert json.loads(event.data)["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"}


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (TextBlock(), {"type": "text", "text": ""}),
        (ThinkingBlock(), {"type": "thinking", "thinking": "", "signature": ""}),
        (RedactedThinkingBlock(data="d"), {"type": "redacted_thinking", "data": "d"}),
        (ToolUseBlock(id="tooluse_1", name="n"), {"type": "tool_use", "id": "tooluse_1", "name": "n", "input": {}}),
    ],
)
def test_block_starts(block: TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock, expected: dict[str, object]) -> None:
    assert block_start_json(block) == expected


def test_usage_cache_fields_only_when_reported() -> None:
    assert usage_json(Usage(input_tokens=1, output_tokens=2)) == {"input_tokens": 1, "output_tokens": 2}
    assert usage_json(Usage(input_tokens=1, output_tokens=2, cache_creation_input_tokens=0)) == {
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
    }
    with pytest.raises(ValueError):
        Usage(input_tokens=-1, output_tokens=0)


def test_dumps_is_compact_utf8_and_survives_lone_surrogates() -> None:
    assert dumps({"a": "é\n"}) == '{"a":"é\\n"}'.encode()
    assert dumps({"a": "\ud800"}) == b'{"a":"\\ud800"}'


@given(
    index=st.integers(min_value=0, max_value=10**6),
    value=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())),
)
@example(index=0, value='a\ud800"\n\u2028b')
def test_delta_events_are_the_json_of_their_dict(index: int, value: str) -> None:
    # The delta fast path must be byte for byte what dumps() makes of the event's dict, lone
    # surrogates (ASCII-escaped) included.
    encoder = AnthropicStreamEncoder()
    cases: list[tuple[LifecycleEvent, dict[str, object]]] = [
        (TextDelta(index=index, text=value), {"type": "text_delta", "text": value}),
        (ThinkingDelta(index=index, thinking=value), {"type": "thinking_delta", "thinking": value}),
        (SignatureDelta(index=index, signature=value), {"type": "signature_delta", "signature": value}),
        (ToolInputDelta(index=index, partial_json=value), {"type": "input_json_delta", "partial_json": value}),
    ]
    for event, delta in cases:
        expected = sse_event("content_block_delta", dumps({"type": "content_block_delta", "index": index, "delta": delta}))
        assert encoder.send(event) == expected
    # So must the events made once, or around their one integer.
    stop = sse_event("content_block_stop", dumps({"type": "content_block_stop", "index": index}))
    assert encoder.send(ContentBlockStopped(index=index)) == stop
    assert encoder.send(MessageStopped()) == sse_event("message_stop", dumps({"type": "message_stop"}))
    assert encoder.send(Ping()) == sse_event("ping", dumps({"type": "ping"}))


@given(
    message_id=st.text(max_size=30),
    model=st.text(max_size=30),
    usage=st.builds(
        Usage,
        input_tokens=st.integers(min_value=0, max_value=10**9),
        output_tokens=st.integers(min_value=0, max_value=10**9),
        cache_creation_input_tokens=st.none() | st.integers(min_value=0, max_value=10**6),
        cache_read_input_tokens=st.none() | st.integers(min_value=0, max_value=10**6),
        web_search_requests=st.integers(min_value=0, max_value=3),
    ),
)
@example(message_id="msg_\ud800", model="é", usage=Usage(input_tokens=1, output_tokens=0))
def test_message_start_is_the_json_of_its_dict(message_id: str, model: str, usage: Usage) -> None:
    from kiro_protocol.responses._anthropic import message_start_json

    event = MessageStarted(message_id=message_id, model=model, usage=usage)
    expected = sse_event("message_start", dumps({"type": "message_start", "message": message_start_json(event)}))
    assert AnthropicStreamEncoder().send(event) == expected
