"""ResponseTranslator end to end: upstream EventStream bytes -> Anthropic SSE / JSON.

Goldens: every ``syn*`` / ``real*`` upstream vector (in
``tests/fixtures/responses/upstream``) is translated to SSE and to JSON and compared byte for
byte with ``tests/fixtures/responses/anthropic/``; set ``REGEN_GOLDENS=1`` to rewrite them after a
deliberate change (then review the diff). Independently of the bytes, each case is checked
event by event against what the canonical rules require (not the references' bugs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.wire._eventstream import encode_message
from kiro_protocol.responses._lifecycle_events import MessageStarted, Ping, StopReason, TextDelta
from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    MessageMetadata,
    TokenUsage,
    ToolUse,
    UpstreamEvent,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from kiro_protocol._util import NEED_DATA
from tests.sse_checker import SSEViolation, check_anthropic_message, check_anthropic_stream
from tests.helpers_eventstream import split_frames

FIXTURES = Path(__file__).parent.parent / "fixtures" / "responses"
UPSTREAM = FIXTURES / "upstream"
GOLDEN = FIXTURES / "anthropic"
REGEN = os.environ.get("REGEN_GOLDENS") == "1"

MESSAGE_ID = "msg_01AbCdEfGhIjKlMnOpQrStUv"
MODEL = "claude-sonnet-4-5-20250929"


def make_plan(**overrides: Any) -> ResponsePlan:
    base = ResponsePlan(client_model=MODEL, kiro_model_id="claude-sonnet-4.5", estimated_input_tokens=8)
    return replace(base, **overrides)


def translate(
    data: bytes, *, chunk: int | None = None, by_frame: bool = False, stream: bool = True, **plan: Any
) -> tuple[ResponseTranslator, bytes]:
    """Run ``data`` through a fresh translator (in chunks of ``chunk`` bytes); return it and its output."""
    t = ResponseTranslator(make_plan(stream=stream, **plan), message_id=MESSAGE_ID, now=0.0)
    return t, feed(t, data, chunk=chunk, by_frame=by_frame)


def feed(t: ResponseTranslator, data: bytes, *, chunk: int | None = None, by_frame: bool = False) -> bytes:
    """Feed ``data`` to ``t`` whole, in ``chunk``-byte pieces, or a frame per read (``by_frame``, as
    a paced stream arrives), then its end; everything ``t`` wrote. (The OpenAI and Responses
    tests use it with their encoders.)"""
    out = bytearray(t.data_to_send())
    step = chunk or max(1, len(data))
    pieces = split_frames(data) if by_frame else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        t.receive_data(piece)
        out += t.data_to_send()
    t.receive_data(b"")
    out += t.data_to_send()
    return bytes(out)


def frames(*events: UpstreamEvent) -> bytes:
    return b"".join(encode_upstream_event(e) for e in events)


# -- goldens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the canonical rules require of one vector, independent of the exact bytes."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (type, text / tool input / thinking)
    stop_reason: str | None = None
    error_type: str | None = None
    thinking: bool = False
    usage_input: int | None = None


CASES: dict[str, Expect] = {
    "real01_simple_text": Expect(
        blocks=[("text", "Immersive Weather Card: Native Web Design & Dynamic Effects")], stop_reason="end_turn"
    ),
    "real02_json_text_chunks": Expect(
        blocks=[("text", '{\n    "isNewTopic": true,\n    "title": "Weather Card"\n}')], stop_reason="end_turn"
    ),
    # A truncated capture: the Write call starts and the body ends without arguments or a stop
    # flag, which is what Kiro's truncation of large tool calls looks like: an error, after the
    # text that came before it.
    "real03_chinese_then_tool_start": Expect(
        blocks=[
            ("text", "我将为您创建一个高级天气展示卡片，完全符合您的要求。让我先创建一个包含所有功能的单一HTML文件。"),
        ],
        error_type="api_error",
    ),
    # contextUsagePercentage 1.5 of a 200k window.
    "syn01_text_metering_context": Expect(blocks=[("text", "Hello world")], stop_reason="end_turn", usage_input=3000),
    "syn02_text_then_tool": Expect(
        blocks=[("text", "Let me check."), ("tool_use", {"location": "Tokyo"})], stop_reason="tool_use", usage_input=4500
    ),
    # No empty text block before a tool-only answer (Go bug).
    "syn03_tool_only": Expect(blocks=[("tool_use", {})], stop_reason="tool_use"),
    # The trailing "B" survives in its own block (Go drops it).
    "syn04_text_after_tool": Expect(
        blocks=[("text", "A"), ("tool_use", {"x": 1}), ("text", "B")], stop_reason="tool_use"
    ),
    # ContentLengthExceededException after output: a max_tokens stop, not a non-standard event.
    "syn05_exception_content_length": Expect(blocks=[("text", "partial")], stop_reason="max_tokens"),
    # An error frame mid-stream: an error event, no message_stop.
    "syn06_error_frame": Expect(blocks=[("text", "partial")], error_type="api_error"),
    "syn07_thinking_tags": Expect(
        blocks=[("thinking", "The user greets me."), ("text", "Hi there!")], stop_reason="end_turn", thinking=True
    ),
    # Framing vectors: every header type is accepted; the metering event with an empty payload
    # cannot change the answer, so it is recorded as ignored instead of failing the response;
    # a frame without headers is an unknown event (ignored; the Go reference made it text).
    "syn08_all_header_types": Expect(blocks=[("text", "all header types")], stop_reason="end_turn"),
    "syn09_empty_payload": Expect(blocks=[], stop_reason="end_turn"),
    "syn10_no_headers": Expect(blocks=[], stop_reason="end_turn"),
    # Corrupt streams: the error reaches the client, nothing looks like success.
    "syn12_bad_message_crc": Expect(error_type="api_error"),
    "syn13_garbage_prefix": Expect(error_type="api_error"),
}


def expected_parts(expect: Expect) -> tuple[str, str, list[Any]]:
    """(text, reasoning, tool arguments) the canonical rules require of ``expect``'s case."""
    text = "".join(v for kind, v in expect.blocks if kind == "text")
    reasoning = "".join(v for kind, v in expect.blocks if kind == "thinking")
    tools = [v for kind, v in expect.blocks if kind == "tool_use"]
    return text, reasoning, tools


def golden(path: Path, data: bytes) -> None:
    """``data`` must equal the golden file ``path`` (written when absent or REGEN_GOLDENS=1)."""
    if REGEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert data == path.read_bytes(), f"output differs from {path.name} (REGEN_GOLDENS=1 rewrites it)"


def _check_blocks(content: list[dict[str, Any]], expect: Expect) -> None:
    got: list[tuple[str, Any]] = []
    for block in content:
        if block["type"] == "text":
            got.append(("text", block["text"]))
        elif block["type"] == "tool_use":
            got.append(("tool_use", block["input"]))
        elif block["type"] == "thinking":
            got.append(("thinking", block["thinking"]))
    assert got == expect.blocks


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sse(case: str) -> None:
    expect = CASES[case]
    t, out = translate((UPSTREAM / f"{case}.bin").read_bytes(), by_frame=True, thinking=expect.thinking)
    golden(GOLDEN / f"{case}.sse", out)
    transcript = check_anthropic_stream(out)
    assert transcript.types[:2] == ["message_start", "ping"]
    assert transcript.message["model"] == MODEL
    assert transcript.message["id"] == MESSAGE_ID
    if expect.error_type is None:
        assert transcript.success and transcript.error is None
        assert transcript.stop_reason == expect.stop_reason
        _check_blocks(transcript.content, expect)
        if expect.usage_input is not None:
            assert transcript.message["usage"]["input_tokens"] == expect.usage_input
        assert t.stop_reason == StopReason(expect.stop_reason)
    else:
        assert not transcript.success
        assert "message_stop" not in transcript.types and "message_delta" not in transcript.types
        assert transcript.error is not None and transcript.error["type"] == expect.error_type
        # Whatever text came before the failure was streamed as it came.
        assert [("text", b["text"]) for b in transcript.content if b["type"] == "text"] == expect.blocks
        assert t.failed


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_json(case: str) -> None:
    expect = CASES[case]
    t, out = translate((UPSTREAM / f"{case}.bin").read_bytes(), stream=False, thinking=expect.thinking)
    response = t.final_response()
    assert response is not None
    golden(GOLDEN / f"{case}.json", b"%d\n" % response.status + response.body)
    if expect.error_type is None:
        assert response.status == 200 and out == response.body
        msg = check_anthropic_message(response.body)
        assert msg["stop_reason"] == expect.stop_reason and msg["model"] == MODEL and msg["id"] == MESSAGE_ID
        _check_blocks(msg["content"], expect)
    else:
        assert out == b"" and response.status >= 500
        assert json.loads(response.body)["error"]["type"] == expect.error_type


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_and_json_agree(case: str) -> None:
    """The JSON body equals what a client accumulates from the stream (one code path)."""
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking
    _, sse = translate(data, thinking=thinking)
    t, _ = translate(data, stream=False, thinking=thinking)
    transcript = check_anthropic_stream(sse)
    response = t.final_response()
    assert response is not None
    if transcript.success:
        assert json.loads(response.body) == transcript.message
    else:
        assert json.loads(response.body)["error"] == transcript.error


@pytest.mark.parametrize("case", sorted(CASES))
def test_chunking_does_not_change_the_answer(case: str) -> None:
    """How the bytes arrive decides only how text is cut into deltas (the frames of one read
    leave as one delta): the message a client accumulates, and how it ends, are the same."""
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking
    whole = check_anthropic_stream(translate(data, thinking=thinking)[1])
    for size in (1, 7, 64):
        chunked = check_anthropic_stream(translate(data, chunk=size, thinking=thinking)[1])
        assert (chunked.message, chunked.success, chunked.error) == (whole.message, whole.success, whole.error)


def test_the_text_frames_of_one_read_leave_as_one_delta() -> None:
    data = frames(*(AssistantResponse(content=f"part {i}. ") for i in range(5)))
    _, out = translate(data)
    transcript = check_anthropic_stream(out)
    assert transcript.types.count("content_block_delta") == 1
    assert transcript.text == "".join(f"part {i}. " for i in range(5))
    # Frame by frame, as a slow stream arrives: a delta each.
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    for i in range(5):
        t.receive_data(frames(AssistantResponse(content=f"part {i}. ")))
    t.receive_data(b"")
    paced = check_anthropic_stream(t.data_to_send())
    assert paced.types.count("content_block_delta") == 5 and paced.text == transcript.text


def test_syn07_without_thinking_request_passes_text_through() -> None:
    _, out = translate((UPSTREAM / "syn07_thinking_tags.bin").read_bytes())
    transcript = check_anthropic_stream(out)
    assert [b["type"] for b in transcript.content] == ["text"]
    assert transcript.text == "<thinking>\nThe user greets me.</thinking>\n\nHi there!"


# -- errors and truncation ---------------------------------------------------------------------


def test_frame_cut_at_eof_is_an_error_not_success() -> None:
    data = (UPSTREAM / "syn02_text_then_tool.bin").read_bytes()
    t, out = translate(data[:-5])
    transcript = check_anthropic_stream(out)
    assert not transcript.success and transcript.error is not None
    assert transcript.error["type"] == "api_error"
    assert t.upstream_failure is not None and t.upstream_failure.failure_class.value == "connection_failed"


def test_corruption_after_content_keeps_earlier_content_and_fails() -> None:
    good = frames(AssistantResponse(content="Hello"))
    bad = bytearray(frames(AssistantResponse(content=" world")))
    bad[-1] ^= 0xFF
    _, out = translate(good + bytes(bad))
    transcript = check_anthropic_stream(out)
    assert transcript.text == "Hello"
    assert transcript.error is not None and "CRC" in transcript.error["message"]


def test_truncated_tool_json_fails_without_stopping_the_tool_block() -> None:
    data = frames(
        ToolUse(tool_use_id="tooluse_A", name="Write", input="", stop=False),
        ToolUse(tool_use_id="tooluse_A", name="Write", input='{"file_path":"/a","content":"abc', stop=False),
    )
    t, out = translate(data)
    transcript = check_anthropic_stream(out)
    assert not transcript.success
    assert transcript.error is not None and "Write" in transcript.error["message"]
    # The tool block was never stopped: no client can take it for a complete call.
    assert "content_block_stop" not in transcript.types
    assert t.failure is not None and t.failure.kind is ErrorKind.API


def test_truncated_tool_json_non_streaming_is_an_error_response() -> None:
    data = frames(
        ToolUse(tool_use_id="tooluse_A", name="Write", input='{"a": [1, 2', stop=True),
    )
    t, out = translate(data, stream=False)
    response = t.final_response()
    assert out == b"" and response is not None and response.status == 502
    assert b"tooluse_A" in response.body


def test_empty_upstream_body_is_an_error() -> None:
    t, out = translate(b"")
    transcript = check_anthropic_stream(out)
    assert transcript.error is not None and not transcript.success
    assert t.upstream_failure is not None and t.upstream_failure.failure_class.retry_elsewhere


@pytest.mark.parametrize(
    ("exception_type", "message", "error_type"),
    [
        ("ThrottlingException", "Too many requests", "overloaded_error"),
        ("InternalServerException", "boom", "api_error"),
        ("ValidationException", "Improperly formed request.", "invalid_request_error"),
        ("ContentLengthExceededException", "too long", "invalid_request_error"),
        ("SomethingNew", "???", "api_error"),
    ],
)
def test_exception_frames_become_error_events(exception_type: str, message: str, error_type: str) -> None:
    data = frames(UpstreamException(exception_type=exception_type, message=message))
    t, out = translate(data)
    transcript = check_anthropic_stream(out)
    assert transcript.error is not None and transcript.error["type"] == error_type
    assert message in transcript.error["message"]
    assert not t.content_started


def test_content_length_before_output_says_prompt_is_too_long() -> None:
    data = frames(UpstreamException(exception_type="ContentLengthExceededException", message="x"))
    t, _ = translate(data, stream=False)
    response = t.final_response()
    assert response is not None and response.status == 400
    assert json.loads(response.body)["error"]["message"].startswith("prompt is too long")


def test_connection_lost_ends_with_error_and_no_message_stop() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    t.receive_data(frames(AssistantResponse(content="Hi")))
    t.connection_lost("read timeout after 300 s")
    t.connection_lost("twice is a no-op")
    transcript = check_anthropic_stream(t.data_to_send())
    assert transcript.error is not None and "read timeout after 300 s" in transcript.error["message"]
    assert t.finished and t.failed


def test_fail_is_a_noop_after_success() -> None:
    t, out = translate(frames(AssistantResponse(content="Hi")))
    t.fail(ErrorKind.OVERLOADED, "shutting down")
    t.connection_lost()
    assert t.data_to_send() == b"" and not t.failed
    assert check_anthropic_stream(out).success


def test_fail_for_shutdown() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    t.fail(ErrorKind.OVERLOADED, "The server is shutting down.")
    transcript = check_anthropic_stream(t.data_to_send())
    assert transcript.error == {"type": "overloaded_error", "message": "The server is shutting down."}


def test_data_after_eof_is_a_caller_bug() -> None:
    t, _ = translate(frames(AssistantResponse(content="Hi")))
    with pytest.raises(RuntimeError):
        t.receive_data(b"more")


def test_data_after_a_stop_sequence_is_ignored() -> None:
    t = ResponseTranslator(make_plan(stop_sequences=("STOP",)), message_id=MESSAGE_ID, now=0.0)
    t.receive_data(frames(AssistantResponse(content="one two STOP three")))
    assert t.finished
    t.receive_data(frames(AssistantResponse(content="ignored")))
    t.receive_data(b"")
    transcript = check_anthropic_stream(t.data_to_send())
    assert transcript.text == "one two " and transcript.stop_reason == "stop_sequence"
    assert transcript.message["stop_sequence"] == "STOP"


@pytest.mark.parametrize("bad", ["msg_short", "abc_0123456789012345678901234", ""])
def test_message_id_must_be_msg_plus_24(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        ResponseTranslator(make_plan(), message_id=bad, now=0.0)


# -- time --------------------------------------------------------------------------------------


def test_ping_after_message_start_and_after_silence() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=100.0, ping_interval=15.0)
    assert t.data_to_send().count(b"event: ping") == 1
    t.tick(110.0)
    assert t.data_to_send() == b""
    t.tick(115.0)
    assert t.data_to_send() == b'event: ping\ndata: {"type":"ping"}\n\n'
    t.tick(120.0)
    assert t.data_to_send() == b""
    t.receive_data(frames(AssistantResponse(content="x")), now=125.0)
    t.data_to_send()
    t.tick(139.0)
    assert t.data_to_send() == b""  # output at 125 restarted the silence clock
    t.tick(140.0)
    assert b"event: ping" in t.data_to_send()


def test_output_without_a_time_is_dated_by_the_next_tick() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0, ping_interval=10.0)
    t.data_to_send()
    t.receive_data(frames(AssistantResponse(content="x")))
    t.tick(50.0)  # dates the output at 50
    assert b"ping" not in t.data_to_send()
    t.tick(60.0)
    assert b"ping" in t.data_to_send()


def test_no_ping_after_the_end_and_none_for_json() -> None:
    t, _ = translate(frames(AssistantResponse(content="x")))
    t.tick(1e9)
    assert t.data_to_send() == b""
    j = ResponseTranslator(make_plan(stream=False), message_id=MESSAGE_ID, now=0.0)
    j.tick(1e9)
    assert j.data_to_send() == b""
    assert j.final_response() is None  # still open


def test_next_event_reports_lifecycle_events() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    assert isinstance(t.next_event(), MessageStarted)
    assert isinstance(t.next_event(), Ping)
    assert t.next_event() is NEED_DATA
    t.receive_data(frames(AssistantResponse(content="x")))
    t.next_event()
    event = t.next_event()
    assert isinstance(event, TextDelta) and event.text == "x"


def test_usage_prefers_upstream_token_usage() -> None:
    data = frames(
        AssistantResponse(content="Hi"),
        ContextUsage(percentage=50.0),
        MessageMetadata(
            token_usage=TokenUsage(
                uncached_input_tokens=120, output_tokens=7, cache_read_input_tokens=1000, cache_write_input_tokens=30
            )
        ),
    )
    t, out = translate(data)
    usage = check_anthropic_stream(out).message["usage"]
    assert usage == {
        "input_tokens": 120,
        "output_tokens": 7,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 1000,
    }
    assert t.usage.output_tokens == 7


def test_context_usage_uses_the_models_window() -> None:
    data = frames(AssistantResponse(content="Hi"), ContextUsage(percentage=10.0))
    _, out = translate(data, context_window=1_000_000)
    usage = check_anthropic_stream(out).message["usage"]
    assert usage["input_tokens"] == 100_000
    assert "cache_read_input_tokens" not in usage and "cache_creation_input_tokens" not in usage


def test_non_ascii_and_control_characters_stay_on_one_data_line() -> None:
    text = "line1\nline2\r\u2028\u2029 é 中 \x00 🎉"
    _, out = translate(frames(AssistantResponse(content=text)))
    assert check_anthropic_stream(out).text == text


def test_lone_surrogate_from_upstream_json_does_not_break_the_stream() -> None:
    payload = b'{"content":"a\\ud800b"}'
    message = encode_message(
        {":event-type": "assistantResponseEvent", ":content-type": "application/json", ":message-type": "event"},
        payload,
    )
    _, out = translate(message)
    assert check_anthropic_stream(out).text == "a\ud800b"


def test_checker_rejects_a_stream_that_just_stops() -> None:
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    t.receive_data(frames(AssistantResponse(content="Hi")))
    with pytest.raises(SSEViolation):
        check_anthropic_stream(t.data_to_send())


def test_syn11_awkward_tcp_reads_give_the_syn02_answer() -> None:
    chunks = [bytes.fromhex(h) for h in json.loads((UPSTREAM / "syn11_chunked_tool_stream.json").read_text())["chunks_hex"]]
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    out = bytearray(t.data_to_send())
    for piece in chunks:
        t.receive_data(piece)
        out += t.data_to_send()
    t.receive_data(b"")
    out += t.data_to_send()
    assert bytes(out) == (GOLDEN / "syn02_text_then_tool.sse").read_bytes()


def test_decoded_events_can_be_fed_directly() -> None:
    t = ResponseTranslator(make_plan(stream=False), message_id=MESSAGE_ID, now=0.0)
    t.receive_upstream_event(AssistantResponse(content="Hi"))
    assert t.final_response() is None
    t.end_of_upstream()
    response = t.final_response()
    assert response is not None and response.status == 200
    assert check_anthropic_message(response.body)["content"] == [{"type": "text", "text": "Hi"}]
    assert response.headers == (("content-type", "application/json"),)


def test_diagnostics_for_adapters() -> None:
    data = frames(AssistantResponse(content="Hi"))
    t = ResponseTranslator(make_plan(), message_id=MESSAGE_ID, now=0.0)
    t.receive_data(data[:10])
    assert t.bytes_buffered == 10 and not t.content_started
    t.receive_data(data[10:] + (UPSTREAM / "syn01_text_metering_context.bin").read_bytes())
    assert t.content_started and t.credits == 0.0123
    t.receive_data(b"")
    assert t.stop_reason is StopReason.END_TURN and t.usage.input_tokens == 3000
    assert t.streaming and t.media_type.startswith("text/event-stream")


def test_bad_payload_of_an_accounting_event_is_ignored_but_of_a_content_event_is_fatal() -> None:
    headers = {":content-type": "application/json", ":message-type": "event"}
    bad_metering = encode_message({":event-type": "meteringEvent", **headers}, b"not json")
    bad_text = encode_message({":event-type": "assistantResponseEvent", **headers}, b'{"content": 5}')
    t, out = translate(frames(AssistantResponse(content="Hi")) + bad_metering)
    assert check_anthropic_stream(out).success
    assert t.ignored_events == ("meteringEvent (invalid payload)",)
    t, out = translate(frames(AssistantResponse(content="Hi")) + bad_text)
    transcript = check_anthropic_stream(out)
    assert transcript.error is not None and "assistantResponseEvent" in transcript.error["message"]
