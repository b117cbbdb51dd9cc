"""OpenAI encoders end to end: upstream EventStream bytes -> ``chat.completion.chunk`` SSE and
``chat.completion`` JSON, through the same ``ResponseTranslator`` as the Anthropic side.

Goldens: every upstream vector of ``tests.core.test_translator.CASES`` (the ``syn*`` and ``real*``
streams of tests/fixtures/responses/upstream) is translated to OpenAI SSE (with usage) and JSON and compared byte
for byte with ``tests/fixtures/responses/openai/`` (``REGEN_GOLDENS=1`` rewrites them; review
the diff). Independently of the bytes, each case is checked with the strict checker
(``tests/openai_checker.py``) against what the canonical rules require: its text, reasoning,
tool arguments and finish reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
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
from kiro_protocol.responses._openai import (
    DONE,
    FINISH_REASONS,
    OpenAIChunkEncoder,
    OpenAICompletionEncoder,
    openai_encoder,
    openai_usage_json,
)
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import AssistantResponse, ContextUsage, ToolUse, UpstreamException
from tests.openai_checker import check_openai_completion, check_openai_error, check_openai_stream
from tests.sse_checker import SSEViolation
from tests.core.test_translator import CASES, MESSAGE_ID, MODEL, UPSTREAM, expected_parts, feed, frames, golden, make_plan

GOLDEN = Path(__file__).parent.parent / "fixtures" / "responses" / "openai"

COMPLETION_ID = "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWx"
CREATED = 1_764_000_000
ANTHROPIC_TO_OPENAI = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


def translate_openai(
    data: bytes,
    *,
    chunk: int | None = None, by_frame: bool = False,
    stream: bool = True,
    include_usage: bool = False,
    **plan_overrides: Any,
) -> tuple[ResponseTranslator, bytes]:
    """Run ``data`` through a translator with the OpenAI encoder; return it and its output."""
    plan = make_plan(stream=stream, **plan_overrides)
    encoder = openai_encoder(plan, completion_id=COMPLETION_ID, created=CREATED, include_usage=include_usage)
    t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder)
    return t, feed(t, data, chunk=chunk, by_frame=by_frame)




SUCCESS = sorted(c for c, e in CASES.items() if e.error_type is None)
FAILURE = sorted(c for c, e in CASES.items() if e.error_type is not None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_golden_and_rules(case: str) -> None:
    expect = CASES[case]
    t, sse = translate_openai((UPSTREAM / f"{case}.bin").read_bytes(), by_frame=True, include_usage=True, thinking=expect.thinking)
    golden(GOLDEN / f"{case}.sse", sse)
    tr = check_openai_stream(sse, include_usage=True)
    assert (tr.id, tr.created, tr.model) == (COMPLETION_ID, CREATED, MODEL)
    text, reasoning, tools = expected_parts(expect)
    assert tr.content.startswith(text) if expect.error_type else tr.content == text
    assert tr.reasoning == reasoning
    if expect.error_type is None:
        assert tr.success and tr.error is None and not t.failed
        assert tr.tool_arguments == tools
        assert tr.finish_reason == ANTHROPIC_TO_OPENAI[expect.stop_reason or ""]
        assert tr.usage is not None and tr.usage["completion_tokens"] == t.usage.output_tokens
        if expect.usage_input is not None:
            assert tr.usage["prompt_tokens"] == expect.usage_input
        assert sse.endswith(DONE)
    else:
        assert not tr.success and tr.error is not None and tr.error["type"] == expect.error_type
        assert tr.finish_reason is None and DONE not in sse


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_golden_and_rules(case: str) -> None:
    expect = CASES[case]
    t, body = translate_openai((UPSTREAM / f"{case}.bin").read_bytes(), stream=False, thinking=expect.thinking)
    response = t.final_response()
    assert response is not None
    if expect.error_type is not None:
        assert body == b"" and response.status >= 500
        assert check_openai_error(json.loads(response.body))["type"] == expect.error_type
        assert dict(response.headers)["content-type"] == "application/json"
        return
    golden(GOLDEN / f"{case}.json", body)
    assert response.status == 200 and response.body == body
    obj = check_openai_completion(body)
    message = obj["choices"][0]["message"]
    text, reasoning, tools = expected_parts(expect)
    assert message["content"] == (text if text or not tools else None)
    assert message.get("reasoning_content", "") == reasoning
    assert [json.loads(c["function"]["arguments"]) for c in message.get("tool_calls", [])] == tools
    assert obj["choices"][0]["finish_reason"] == ANTHROPIC_TO_OPENAI[expect.stop_reason or ""]
    assert (obj["id"], obj["created"], obj["model"]) == (COMPLETION_ID, CREATED, MODEL)


@pytest.mark.parametrize("case", SUCCESS)
def test_stream_and_json_agree(case: str) -> None:
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking
    _, sse = translate_openai(data, include_usage=True, thinking=thinking)
    _, body = translate_openai(data, stream=False, thinking=thinking)
    tr = check_openai_stream(sse, include_usage=True)
    obj = json.loads(body)
    message = obj["choices"][0]["message"]
    assert (message["content"] or "") == tr.content
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])] == [
        (c["id"], c["name"], c["arguments"]) for c in tr.tool_calls
    ]
    assert obj["choices"][0]["finish_reason"] == tr.finish_reason
    assert obj["usage"] == tr.usage


@pytest.mark.parametrize("case", ["syn02_text_then_tool", "syn07_thinking_tags", "real03_chinese_then_tool_start"])
def test_any_chunking_gives_the_same_answer(case: str) -> None:
    """Chunking decides only how text is cut into chunks (the frames of one read leave as one)."""
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking

    def answer(sse: bytes) -> tuple[object, ...]:
        t = check_openai_stream(sse)
        return t.content, t.reasoning, t.tool_calls, t.finish_reason, t.usage, t.success, t.error

    whole = answer(translate_openai(data, thinking=thinking)[1])
    for size in (1, 7, 64):
        assert answer(translate_openai(data, chunk=size, thinking=thinking)[1]) == whole


def test_without_include_usage_there_is_no_usage_anywhere() -> None:
    _, sse = translate_openai((UPSTREAM / "syn02_text_then_tool.bin").read_bytes())
    tr = check_openai_stream(sse)  # the checker refuses any usage key without include_usage
    assert tr.usage is None and tr.finish_reason == "tool_calls" and b'"usage"' not in sse


def test_usage_chunk_is_refused_by_the_checker_when_missing() -> None:
    _, sse = translate_openai((UPSTREAM / "syn01_text_metering_context.bin").read_bytes())
    with pytest.raises(SSEViolation):
        check_openai_stream(sse, include_usage=True)


def test_thinking_tags_stay_text_when_thinking_was_not_requested() -> None:
    _, sse = translate_openai((UPSTREAM / "syn07_thinking_tags.bin").read_bytes(), thinking=False)
    tr = check_openai_stream(sse)
    assert tr.reasoning == "" and b"reasoning_content" not in sse
    assert "The user greets me." in tr.content and tr.content.endswith("Hi there!")


def test_two_parallel_tool_calls_get_indexes_0_and_1() -> None:
    data = frames(
        AssistantResponse(content="Checking both."),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input="", stop=False),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input='{"city":', stop=False),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input='"Paris"}', stop=True),
        ToolUse(tool_use_id="tooluse_b", name="get_time", input='{"tz":"UTC"}', stop=True),
    )
    _, sse = translate_openai(data, include_usage=True)
    tr = check_openai_stream(sse, include_usage=True)
    assert [(c["id"], c["name"]) for c in tr.tool_calls] == [("tooluse_a", "get_weather"), ("tooluse_b", "get_time")]
    assert tr.tool_arguments == [{"city": "Paris"}, {"tz": "UTC"}]
    assert tr.finish_reason == "tool_calls" and tr.content == "Checking both."
    _, body = translate_openai(data, stream=False)
    calls = check_openai_completion(body)["choices"][0]["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Paris"}, {"tz": "UTC"}]


def test_tool_only_answer_has_null_content_in_json() -> None:
    _, body = translate_openai((UPSTREAM / "syn03_tool_only.bin").read_bytes(), stream=False)
    message = check_openai_completion(body)["choices"][0]["message"]
    assert message["content"] is None and len(message["tool_calls"]) == 1


def test_empty_answer_is_an_empty_string_not_null() -> None:
    _, body = translate_openai(frames(ContextUsage(percentage=1.0)), stream=False)
    message = check_openai_completion(body)["choices"][0]["message"]
    assert message["content"] == "" and "tool_calls" not in message


def test_stop_sequence_maps_to_stop() -> None:
    data = frames(AssistantResponse(content="one two END three"))
    t, sse = translate_openai(data, stop_sequences=("END",))
    tr = check_openai_stream(sse)
    assert t.stop_reason is StopReason.STOP_SEQUENCE
    assert tr.finish_reason == "stop" and tr.content == "one two "


def test_mid_stream_error_after_a_tool_started_leaves_no_done() -> None:
    data = frames(
        ToolUse(tool_use_id="tooluse_a", name="f", input='{"a":', stop=False),
        UpstreamException(exception_type="InternalServerException", message="boom"),
    )
    _, sse = translate_openai(data, include_usage=True)
    tr = check_openai_stream(sse, include_usage=True)
    assert tr.error is not None and not tr.success
    assert DONE not in sse and tr.finish_reason is None and tr.usage is None
    assert sse.rstrip().splitlines()[-1].startswith(b'data: {"error":')


def test_translator_fail_and_connection_lost_end_with_an_error_chunk() -> None:
    plan = make_plan(stream=True)
    encoder = openai_encoder(plan, completion_id=COMPLETION_ID, created=CREATED)
    t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder)
    out = t.data_to_send()
    t.receive_data(frames(AssistantResponse(content="Hel")))
    t.connection_lost("read timeout after 300 s")
    out += t.data_to_send()
    tr = check_openai_stream(out)
    assert tr.content == "Hel" and tr.error is not None and "read timeout" in tr.error["message"]


def test_pings_are_sse_comments_and_invisible_to_clients() -> None:
    plan = make_plan(stream=True)
    encoder = openai_encoder(plan, completion_id=COMPLETION_ID, created=CREATED)
    t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder, ping_interval=5)
    out = t.data_to_send()
    t.tick(6.0)
    pinged = t.data_to_send()
    assert pinged == b": ping\n\n"
    t.receive_data(frames(AssistantResponse(content="x")))
    t.receive_data(b"")
    out += pinged + t.data_to_send()
    assert check_openai_stream(out).content == "x"


def test_non_streaming_error_uses_the_openai_error_shape_and_status() -> None:
    t, body = translate_openai((UPSTREAM / "syn06_error_frame.bin").read_bytes(), stream=False)
    response = t.final_response()
    assert body == b"" and response is not None
    error = check_openai_error(json.loads(response.body))
    assert t.failure is not None and error["message"] == t.failure.message
    assert response.status == 500


# -- the encoders alone ------------------------------------------------------------------------


def _events_with_two_tools() -> list[Any]:
    usage = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=90, cache_creation_input_tokens=3)
    return [
        MessageStarted(message_id=MESSAGE_ID, model="gpt-4o", usage=Usage(input_tokens=10, output_tokens=0)),
        ContentBlockStarted(index=0, block=ThinkingBlock()),
        ThinkingDelta(index=0, thinking="hmm"),
        SignatureDelta(index=0, signature="sig"),
        ContentBlockStopped(index=0),
        ContentBlockStarted(index=1, block=TextBlock()),
        TextDelta(index=1, text=""),
        TextDelta(index=1, text="Hi"),
        ContentBlockStopped(index=1),
        ContentBlockStarted(index=2, block=ToolUseBlock(id="call_1", name="a")),
        ToolInputDelta(index=2, partial_json=""),
        ToolInputDelta(index=2, partial_json='{"x":1}'),
        ContentBlockStopped(index=2),
        Ping(),
        ContentBlockStarted(index=3, block=ToolUseBlock(id="call_2", name="b")),
        ToolInputDelta(index=3, partial_json="{}"),
        ContentBlockStopped(index=3),
        MessageDelta(stop_reason=StopReason.TOOL_USE, stop_sequence=None, usage=usage),
        MessageStopped(),
    ]


def test_chunk_encoder_maps_block_indexes_to_call_indexes_and_skips_empty_fragments() -> None:
    enc = OpenAIChunkEncoder(completion_id=COMPLETION_ID, created=CREATED, include_usage=True)
    out = b"".join(enc.send(e) for e in _events_with_two_tools())
    tr = check_openai_stream(out, include_usage=True)
    assert tr.reasoning == "hmm" and tr.content == "Hi" and tr.model == "gpt-4o"
    assert [c["name"] for c in tr.tool_calls] == ["a", "b"] and tr.tool_arguments == [{"x": 1}, {}]
    assert tr.usage == {
        "prompt_tokens": 103,
        "completion_tokens": 5,
        "total_tokens": 108,
        "prompt_tokens_details": {"cached_tokens": 90},
    }
    # No chunk for the empty text/argument fragments, the signature or the block stops.
    assert sum(1 for line in out.split(b"\n") if line.startswith(b"data: {")) == 9
    assert out.count(b": ping\n\n") == 1 and out.endswith(DONE)


def test_completion_encoder_builds_one_body_at_the_end() -> None:
    enc = OpenAICompletionEncoder(completion_id=COMPLETION_ID, created=CREATED)
    outputs = [enc.send(e) for e in _events_with_two_tools()]
    assert all(o == b"" for o in outputs[:-1]) and outputs[-1]
    assert enc.completion == json.loads(outputs[-1])
    obj = check_openai_completion(outputs[-1])
    message = obj["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Hi",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
            {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
        "reasoning_content": "hmm",
    }
    assert obj["usage"]["prompt_tokens"] == 103


def test_completion_encoder_keeps_the_failure_and_returns_nothing() -> None:
    enc = OpenAICompletionEncoder(completion_id=COMPLETION_ID, created=CREATED)
    enc.send(MessageStarted(message_id=MESSAGE_ID, model="m", usage=Usage(input_tokens=1, output_tokens=0)))
    failure = StreamFailed(kind=ErrorKind.OVERLOADED, message="Kiro is overloaded")
    assert enc.send(failure) == b"" and enc.failure == failure and enc.completion is None
    assert json.loads(enc.error_body(failure.kind, failure.message)) == {
        "error": {"message": "Kiro is overloaded", "type": "overloaded_error", "param": None, "code": "overloaded"}
    }


def test_every_stop_reason_has_a_finish_reason_and_none_is_content_filter() -> None:
    assert set(FINISH_REASONS) == set(StopReason)
    assert "content_filter" not in FINISH_REASONS.values()


def test_usage_without_cache_figures_has_no_details() -> None:
    assert openai_usage_json(Usage(input_tokens=7, output_tokens=2)) == {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "total_tokens": 9,
    }


@pytest.mark.parametrize(
    ("completion_id", "created"),
    [("msg_01AbCdEfGhIjKlMnOpQrStUv", CREATED), ("chatcmpl-short", CREATED), (COMPLETION_ID, -1), (COMPLETION_ID, True)],
)
def test_bad_ids_are_refused(completion_id: str, created: int) -> None:
    with pytest.raises(LocalProtocolError):
        OpenAIChunkEncoder(completion_id=completion_id, created=created)
    with pytest.raises(LocalProtocolError):
        OpenAICompletionEncoder(completion_id=completion_id, created=created)


def test_factory_picks_the_encoder_from_the_plan() -> None:
    streaming = openai_encoder(make_plan(stream=True), completion_id=COMPLETION_ID, created=CREATED, include_usage=True)
    assert isinstance(streaming, OpenAIChunkEncoder) and streaming.include_usage and streaming.streaming
    plain = openai_encoder(make_plan(stream=False), completion_id=COMPLETION_ID, created=CREATED, include_usage=True)
    assert isinstance(plain, OpenAICompletionEncoder) and not plain.streaming
    assert plain.media_type == "application/json" and streaming.media_type.startswith("text/event-stream")


def test_checker_rejects_what_the_sdk_would_choke_on() -> None:
    """The strict checker is not a rubber stamp: a piece without ``index``, a repeated name,
    a missing ``[DONE]`` and a chunk after ``[DONE]`` are all violations."""
    enc = OpenAIChunkEncoder(completion_id=COMPLETION_ID, created=CREATED)
    good = b"".join(enc.send(e) for e in _events_with_two_tools())
    check_openai_stream(good)
    bad_variants = [
        good.replace(b'"index":1,"function"', b'"function"', 1),
        good.replace(b'{"index":0,"function":{"arguments":"{\\"x\\":1}"}}', b'{"index":0,"function":{"name":"a","arguments":"{\\"x\\":1}"}}'),
        good[: -len(DONE)],
        good + b'data: {"x":1}\n\n',
        good.replace(b'"finish_reason":"tool_calls"', b'"finish_reason":"content_filter"'),
    ]
    for bad in bad_variants:
        assert bad != good
        with pytest.raises(SSEViolation):
            check_openai_stream(bad)


# -- against the Go reference's OpenAI output (tests/fixtures/responses/openai_go) -------

GO = Path(__file__).parent.parent / "fixtures" / "responses" / "openai_go"


@pytest.mark.parametrize("case", ["syn01_text_metering_context", "syn02_text_then_tool", "syn04_text_after_tool"])
def test_same_answer_as_the_go_reference_where_it_is_right(case: str) -> None:
    """Where the Go reference is correct, a client accumulates the same answer from both."""
    go = check_openai_stream((GO / f"{case}.expected_go_openai.sse").read_bytes())
    _, sse = translate_openai((UPSTREAM / f"{case}.bin").read_bytes())
    ours = check_openai_stream(sse)
    assert (ours.content, ours.tool_calls, ours.finish_reason) == (go.content, go.tool_calls, go.finish_reason)


def test_thinking_tags_pass_through_as_text_like_go_when_not_requested() -> None:
    go = check_openai_stream((GO / "syn07_thinking_tags.expected_go_openai.sse").read_bytes())
    _, sse = translate_openai((UPSTREAM / "syn07_thinking_tags.bin").read_bytes(), thinking=False)
    assert check_openai_stream(sse).content == go.content


def test_where_go_is_wrong_we_follow_the_spec() -> None:
    """Go reports a content-length cut as ``stop``, fakes success after an error frame (spec
    docs/openai.md) and leaves a call without arguments with ``arguments: ""`` (not a JSON object); we say
    ``length``, send an error chunk without ``[DONE]`` and send ``{}``."""
    with pytest.raises(SSEViolation, match="arguments are not JSON"):
        check_openai_stream((GO / "syn03_tool_only.expected_go_openai.sse").read_bytes())
    ours03 = check_openai_stream(translate_openai((UPSTREAM / "syn03_tool_only.bin").read_bytes())[1])
    assert ours03.tool_arguments == [{}] and ours03.finish_reason == "tool_calls"
    go05 = check_openai_stream((GO / "syn05_exception_content_length.expected_go_openai.sse").read_bytes())
    ours05 = check_openai_stream(translate_openai((UPSTREAM / "syn05_exception_content_length.bin").read_bytes())[1])
    assert (go05.finish_reason, ours05.finish_reason) == ("stop", "length")
    go06 = check_openai_stream((GO / "syn06_error_frame.expected_go_openai.sse").read_bytes())
    ours06 = check_openai_stream(translate_openai((UPSTREAM / "syn06_error_frame.bin").read_bytes())[1])
    assert go06.success and not ours06.success and ours06.error is not None
    assert ours06.content == go06.content == "partial"
