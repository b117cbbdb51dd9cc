"""Responses API encoders end to end: upstream EventStream bytes -> ``/v1/responses`` SSE and the
``response`` object, through the same ``ResponseTranslator`` as the other two dialects.

Goldens: every upstream vector of ``tests.core.test_translator.CASES`` (the ``syn*`` and
``real*`` streams of tests/fixtures/responses/upstream) is translated to a Responses stream and
body and compared byte for byte with ``tests/fixtures/responses/responses_api/``
(``REGEN_GOLDENS=1`` rewrites them; review the diff). Independently of the bytes, each case is
held to the strict checker (``tests/responses_checker.py``) and to what the canonical rules
require: its text, reasoning, tool arguments and status.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.http._error_bodies import error_body_for, responses_error_body, responses_error_code
from kiro_protocol.pool._upstream_errors import PROMPT_TOO_LONG_PREFIX, classify_stream_failure, classify_upstream_failure
from kiro_protocol.responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    RedactedThinkingBlock,
    ServerToolUseBlock,
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
    WebSearchHit,
    WebSearchResultBlock,
)
from kiro_protocol.responses._responses_api import (
    ResponseEcho,
    ResponsesObjectEncoder,
    ResponsesStreamEncoder,
    responses_encoder,
    responses_usage_json,
)
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    ReasoningContent,
    ToolUse,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from tests.core.test_translator import CASES, MESSAGE_ID, MODEL, UPSTREAM, expected_parts, feed, frames, golden, make_plan
from tests.responses_checker import (
    check_responses_error,
    check_responses_object,
    check_responses_stream,
    check_responses_usage,
)
from tests.sse_checker import SSEViolation

GOLDEN = Path(__file__).parent.parent / "fixtures" / "responses" / "responses_api"

RESPONSE_ID = "resp_AbCdEfGhIjKlMnOpQrStUvWx"
CREATED = 1_764_000_000
STATUS = {"end_turn": "completed", "stop_sequence": "completed", "tool_use": "completed", "max_tokens": "incomplete"}


def translate(
    data: bytes, *, chunk: int | None = None, by_frame: bool = False, stream: bool = True, echo: ResponseEcho | None = None, **plan: Any
) -> tuple[ResponseTranslator, bytes]:
    """Run ``data`` through a translator with the Responses encoder; return it and its output."""
    response_plan = make_plan(stream=stream, **plan)
    encoder = responses_encoder(response_plan, response_id=RESPONSE_ID, created_at=CREATED, request_echo=echo)
    t = ResponseTranslator(response_plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder)
    return t, feed(t, data, chunk=chunk, by_frame=by_frame)




SUCCESS = sorted(c for c, e in CASES.items() if e.error_type is None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_golden_and_rules(case: str) -> None:
    expect = CASES[case]
    t, sse = translate((UPSTREAM / f"{case}.bin").read_bytes(), by_frame=True, thinking=expect.thinking)
    golden(GOLDEN / f"{case}.sse", sse)
    tr = check_responses_stream(sse)
    assert (tr.id, tr.created_at, tr.model) == (RESPONSE_ID, CREATED, MODEL)
    text, reasoning, tools = expected_parts(expect)
    assert tr.reasoning == reasoning
    if expect.error_type is None:
        assert tr.success and tr.error is None and not t.failed
        assert tr.text == text and tr.tool_arguments == tools
        assert tr.status == STATUS[expect.stop_reason or ""]
        assert tr.usage is not None and tr.usage["output_tokens"] == t.usage.output_tokens
        if expect.usage_input is not None:
            assert tr.usage["input_tokens"] == expect.usage_input
        assert tr.types[-1] == ("response.incomplete" if expect.stop_reason == "max_tokens" else "response.completed")
    else:
        assert (tr.text + tr.partial_text).startswith(text)
        assert tr.status == "failed" and tr.error is not None and tr.types[-1] == "response.failed"
        assert "response.completed" not in tr.types
        assert t.failure is not None and tr.error == {"code": "server_error", "message": t.failure.message}


@pytest.mark.parametrize("case", sorted(CASES))
def test_object_golden_and_rules(case: str) -> None:
    expect = CASES[case]
    t, body = translate((UPSTREAM / f"{case}.bin").read_bytes(), stream=False, thinking=expect.thinking)
    response = t.final_response()
    assert response is not None
    if expect.error_type is not None:
        assert body == b"" and response.status >= 500
        error = check_responses_error(json.loads(response.body))
        assert error["type"] == expect.error_type and error["code"] == "server_error"
        assert dict(response.headers)["content-type"] == "application/json"
        return
    golden(GOLDEN / f"{case}.json", body)
    assert response.status == 200 and response.body == body
    obj = check_responses_object(body)
    text, reasoning, tools = expected_parts(expect)
    assert _text(obj) == text and _reasoning(obj) == reasoning
    assert [json.loads(i["arguments"]) for i in obj["output"] if i["type"] == "function_call"] == tools
    assert obj["status"] == STATUS[expect.stop_reason or ""]
    assert (obj["id"], obj["created_at"], obj["model"]) == (RESPONSE_ID, CREATED, MODEL)


def _text(obj: dict[str, Any]) -> str:
    return "".join(p["text"] for i in obj["output"] if i["type"] == "message" for p in i["content"])


def _reasoning(obj: dict[str, Any]) -> str:
    return "".join(p["text"] for i in obj["output"] if i["type"] == "reasoning" for p in i["summary"])


@pytest.mark.parametrize("case", SUCCESS)
def test_stream_and_object_agree(case: str) -> None:
    """The stream's final ``response`` is the non-streamed body, byte for byte."""
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking
    _, sse = translate(data, thinking=thinking)
    _, body = translate(data, stream=False, thinking=thinking)
    tr = check_responses_stream(sse)
    assert tr.response == json.loads(body)
    assert tr.items == json.loads(body)["output"]


@pytest.mark.parametrize("case", ["syn02_text_then_tool", "syn07_thinking_tags", "real03_chinese_then_tool_start"])
def test_any_chunking_gives_the_same_answer(case: str) -> None:
    """Chunking decides only how text is cut into deltas (the frames of one read leave as one)."""
    data = (UPSTREAM / f"{case}.bin").read_bytes()
    thinking = CASES[case].thinking

    def answer(sse: bytes) -> tuple[object, ...]:
        t = check_responses_stream(sse)
        items = [{k: v for k, v in item.items() if k != "id"} for item in t.items]
        return items, t.status, t.usage, t.error, t.partial_text

    whole = answer(translate(data, thinking=thinking)[1])
    for size in (1, 7, 64):
        assert answer(translate(data, chunk=size, thinking=thinking)[1]) == whole


def test_two_parallel_function_calls_are_two_items_whose_arguments_parse() -> None:
    data = frames(
        AssistantResponse(content="Checking both."),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input="", stop=False),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input='{"city":', stop=False),
        ToolUse(tool_use_id="tooluse_a", name="get_weather", input='"Paris"}', stop=True),
        ToolUse(tool_use_id="tooluse_b", name="get_time", input='{"tz":"UTC"}', stop=True),
    )
    _, sse = translate(data)
    tr = check_responses_stream(sse)
    assert [(c["call_id"], c["name"]) for c in tr.function_calls] == [("tooluse_a", "get_weather"), ("tooluse_b", "get_time")]
    assert tr.tool_arguments == [{"city": "Paris"}, {"tz": "UTC"}] and tr.text == "Checking both."
    assert [i["type"] for i in tr.items] == ["message", "function_call", "function_call"]
    assert tr.types.count("response.function_call_arguments.delta") == 3
    _, body = translate(data, stream=False)
    calls = [i for i in check_responses_object(body)["output"] if i["type"] == "function_call"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Paris"}, {"tz": "UTC"}]


def test_a_call_without_arguments_streams_and_returns_an_empty_object() -> None:
    _, sse = translate((UPSTREAM / "syn03_tool_only.bin").read_bytes())
    tr = check_responses_stream(sse)
    assert tr.tool_arguments == [{}] and [i["type"] for i in tr.items] == ["function_call"]
    _, body = translate((UPSTREAM / "syn03_tool_only.bin").read_bytes(), stream=False)
    assert [i["arguments"] for i in check_responses_object(body)["output"]] == ["{}"]


def test_a_mapped_tool_name_and_a_namespace_reach_the_client() -> None:
    """The plan maps Kiro's (shortened) name back; the echo splits a flattened namespace tool."""
    data = frames(ToolUse(tool_use_id="tooluse_n", name="short_1", input='{"target":"a"}', stop=True))
    echo = ResponseEcho(namespaced_tools=MappingProxyType({"multi_agent_v1__close_agent": ("multi_agent_v1", "close_agent")}))
    names = MappingProxyType({"short_1": "multi_agent_v1__close_agent"})
    _, sse = translate(data, echo=echo, tool_names=names)
    call = check_responses_stream(sse).function_calls[0]
    assert (call["name"], call["namespace"], call["call_id"]) == ("close_agent", "multi_agent_v1", "tooluse_n")
    _, body = translate(data, stream=False, echo=echo, tool_names=names)
    (item,) = check_responses_object(body)["output"]
    assert (item["name"], item["namespace"]) == ("close_agent", "multi_agent_v1")
    _, plain = translate(data, tool_names=names)
    assert "namespace" not in check_responses_stream(plain).function_calls[0]


def test_a_length_cut_ends_with_response_incomplete() -> None:
    """As the API ends one: Codex keeps the finished items and names the reason."""
    _, sse = translate((UPSTREAM / "syn05_exception_content_length.bin").read_bytes())
    tr = check_responses_stream(sse)
    assert tr.status == "incomplete" and tr.response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert tr.types[-1] == "response.incomplete" and tr.text == "partial" and "response.completed" not in tr.types
    assert tr.usage is not None and tr.error is None


def test_thinking_is_a_reasoning_summary_and_counts_as_reasoning_tokens() -> None:
    data = frames(ReasoningContent(text="Let me think about it."), AssistantResponse(content="Done."))
    _, sse = translate(data, thinking=True)
    tr = check_responses_stream(sse)
    assert tr.reasoning == "Let me think about it." and tr.text == "Done."
    assert tr.usage is not None and 0 < tr.usage["output_tokens_details"]["reasoning_tokens"] <= tr.usage["output_tokens"]
    assert [i["type"] for i in tr.items] == ["reasoning", "message"]
    assert "encrypted_content" not in tr.items[0]


def test_thinking_tags_stay_text_when_thinking_was_not_requested() -> None:
    _, sse = translate((UPSTREAM / "syn07_thinking_tags.bin").read_bytes(), thinking=False)
    tr = check_responses_stream(sse)
    assert tr.reasoning == "" and "reasoning" not in {i["type"] for i in tr.items}
    assert "The user greets me." in tr.text and tr.text.endswith("Hi there!")


def test_mid_stream_failure_after_a_call_started_ends_with_response_failed_and_no_call() -> None:
    data = frames(
        AssistantResponse(content="Writing."),
        ToolUse(tool_use_id="tooluse_a", name="f", input='{"a":', stop=False),
        UpstreamException(exception_type="InternalServerException", message="boom"),
    )
    _, sse = translate(data)
    tr = check_responses_stream(sse)
    assert tr.status == "failed" and tr.function_calls == [] and tr.text == "Writing."
    assert tr.error is not None and tr.error["code"] == "server_error" and "boom" in tr.error["message"]
    assert "response.completed" not in tr.types


def test_an_over_long_conversation_fails_with_context_length_exceeded() -> None:
    """Codex maps ``context_length_exceeded`` in response.failed to "context window exceeded"."""
    data = frames(UpstreamException(exception_type="ContentLengthExceededException", message="Input is too long"))
    t, sse = translate(data)
    tr = check_responses_stream(sse)
    assert tr.error is not None and tr.error["code"] == "context_length_exceeded"
    assert tr.error["message"].startswith(PROMPT_TOO_LONG_PREFIX)
    t, _ = translate(data, stream=False)
    response = t.final_response()
    assert response is not None and response.status == 400
    assert check_responses_error(json.loads(response.body))["code"] == "context_length_exceeded"


def test_the_http_answer_to_an_over_long_conversation_has_the_codex_code() -> None:
    failure = classify_upstream_failure(400, b'{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}')
    body = error_body_for(failure.client_error, dialect="responses")
    error = check_responses_error(json.loads(body))
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    stream_failure = classify_stream_failure("ContentLengthExceededException", "too long")
    assert responses_error_code(stream_failure.client_error.kind, stream_failure.client_error.message) == "context_length_exceeded"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (ErrorKind.INVALID_REQUEST, "invalid_request"),
        (ErrorKind.AUTHENTICATION, "invalid_api_key"),
        (ErrorKind.RATE_LIMIT, "rate_limit_exceeded"),
        (ErrorKind.API, "server_error"),
        (ErrorKind.OVERLOADED, "server_is_overloaded"),
        (ErrorKind.NOT_FOUND, "not_found"),
    ],
)
def test_error_codes_follow_the_kind(kind: ErrorKind, code: str) -> None:
    error = check_responses_error(json.loads(responses_error_body(kind, "something failed", param="input.0")))
    assert error["code"] == code and error["param"] == "input.0"
    # An over-long message that is not an invalid request keeps its kind's code.
    assert responses_error_code(kind, PROMPT_TOO_LONG_PREFIX) == ("context_length_exceeded" if kind is ErrorKind.INVALID_REQUEST else code)


def test_translator_fail_and_connection_lost_end_with_response_failed() -> None:
    plan = make_plan(stream=True)
    encoder = responses_encoder(plan, response_id=RESPONSE_ID, created_at=CREATED)
    t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder)
    out = t.data_to_send()
    t.receive_data(frames(AssistantResponse(content="Hel")))
    t.connection_lost("read timeout after 300 s")
    out += t.data_to_send()
    tr = check_responses_stream(out)
    assert tr.partial_text == "Hel" and tr.items == [] and tr.error is not None and "read timeout" in tr.error["message"]


def test_pings_are_sse_comments_and_invisible_to_clients() -> None:
    plan = make_plan(stream=True)
    encoder = responses_encoder(plan, response_id=RESPONSE_ID, created_at=CREATED)
    t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder, ping_interval=5)
    out = t.data_to_send()
    t.tick(6.0)
    pinged = t.data_to_send()
    assert pinged == b": ping\n\n"
    t.receive_data(frames(AssistantResponse(content="x")))
    t.receive_data(b"")
    out += pinged + t.data_to_send()
    assert check_responses_stream(out).text == "x"


def test_the_request_echo_is_repeated_in_every_lifecycle_event() -> None:
    tools = ({"type": "function", "name": "exec_command", "parameters": {"type": "object"}},)
    echo = ResponseEcho(
        instructions="Be brief.",
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
        metadata=MappingProxyType({"k": "v"}),
        reasoning=MappingProxyType({"effort": "high", "summary": "auto"}),
        text=MappingProxyType({"format": {"type": "json_object"}}),
        max_output_tokens=500,
        temperature=0.2,
        top_p=0.9,
        store=False,
        prompt_cache_key="pck",
    )
    _, sse = translate((UPSTREAM / "syn01_text_metering_context.bin").read_bytes(), echo=echo)
    tr = check_responses_stream(sse)
    expected = {
        "instructions": "Be brief.", "tools": list(tools), "tool_choice": "required", "parallel_tool_calls": False,
        "metadata": {"k": "v"}, "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_object"}}, "max_output_tokens": 500, "temperature": 0.2, "top_p": 0.9,
        "store": False, "prompt_cache_key": "pck",
    }  # fmt: skip
    for line in sse.decode().splitlines():
        if line.startswith('data: {"type":"response.'):
            obj = json.loads(line[6:])
            if "response" in obj:
                assert {k: obj["response"][k] for k in expected} == expected
    assert tr.response["reasoning"] == {"effort": "high", "summary": "auto"}


def test_default_echo_is_what_a_plain_request_implies() -> None:
    _, body = translate((UPSTREAM / "syn01_text_metering_context.bin").read_bytes(), stream=False)
    obj = check_responses_object(body)
    assert obj["tools"] == [] and obj["tool_choice"] == "auto" and obj["parallel_tool_calls"] is True
    assert obj["text"] == {"format": {"type": "text"}} and obj["reasoning"] == {"effort": None, "summary": None}
    assert obj["store"] is False and obj["previous_response_id"] is None and obj["metadata"] == {}


# -- the encoders alone ------------------------------------------------------------------------


def _events() -> list[LifecycleEvent]:
    usage = Usage(input_tokens=10, output_tokens=50, cache_read_input_tokens=90, cache_creation_input_tokens=3)
    return [
        MessageStarted(message_id=MESSAGE_ID, model="gpt-5", usage=Usage(input_tokens=10, output_tokens=0)),
        ContentBlockStarted(index=0, block=ThinkingBlock()),
        ThinkingDelta(index=0, thinking=""),
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
        ContentBlockStarted(index=3, block=RedactedThinkingBlock(data="opaque")),
        ContentBlockStopped(index=3),
        ContentBlockStarted(index=4, block=ThinkingBlock()),
        SignatureDelta(index=4, signature="sig"),
        ContentBlockStopped(index=4),
        ContentBlockStarted(index=5, block=ToolUseBlock(id="call_2", name="b")),
        ToolInputDelta(index=5, partial_json="{}"),
        ContentBlockStopped(index=5),
        MessageDelta(stop_reason=StopReason.TOOL_USE, stop_sequence=None, usage=usage),
        MessageStopped(),
    ]


def test_stream_encoder_gives_every_item_its_grammar() -> None:
    enc = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    out = b"".join(enc.send(e) for e in _events())
    tr = check_responses_stream(out)
    assert [i["type"] for i in tr.items] == ["reasoning", "message", "function_call", "reasoning", "reasoning", "function_call"]
    assert tr.reasoning == "hmm" and tr.text == "Hi" and tr.model == "gpt-5"
    assert tr.items[3] == {"id": f"rs_{RESPONSE_ID[5:]}_3", "type": "reasoning", "summary": [], "encrypted_content": "opaque"}
    assert tr.items[4]["summary"] == []  # a thinking block with no text has no summary part
    assert tr.tool_arguments == [{"x": 1}, {}]
    assert tr.usage is not None and tr.usage == {
        "input_tokens": 103,
        "input_tokens_details": {"cached_tokens": 90, "cache_write_tokens": 3},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": tr.usage["output_tokens_details"]["reasoning_tokens"]},
        "total_tokens": 153,
    }
    assert out.count(b": ping\n\n") == 1 and enc.response_id == RESPONSE_ID
    assert len({i["id"] for i in tr.items}) == 6


def test_object_encoder_builds_one_body_at_the_end() -> None:
    enc = ResponsesObjectEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    outputs = [enc.send(e) for e in _events()]
    assert all(o == b"" for o in outputs[:-1]) and outputs[-1]
    assert enc.response == json.loads(outputs[-1]) and enc.response_id == RESPONSE_ID
    obj = check_responses_object(outputs[-1])
    stream = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    assert check_responses_stream(b"".join(stream.send(e) for e in _events())).response == obj


def test_object_encoder_keeps_the_failure_and_returns_nothing() -> None:
    enc = ResponsesObjectEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    enc.send(MessageStarted(message_id=MESSAGE_ID, model="m", usage=Usage(input_tokens=1, output_tokens=0)))
    failure = StreamFailed(kind=ErrorKind.OVERLOADED, message="Kiro is overloaded")
    assert enc.send(failure) == b"" and enc.failure == failure and enc.response is None
    assert json.loads(enc.error_body(failure.kind, failure.message)) == {
        "error": {"message": "Kiro is overloaded", "type": "overloaded_error", "param": None, "code": "server_is_overloaded"}
    }
    stream = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    assert stream.error_body(failure.kind, failure.message) == enc.error_body(failure.kind, failure.message)


def test_a_web_search_is_a_web_search_call_item_and_its_results_have_no_item() -> None:
    """A search served through MCP (server blocks): the call with its query, then the summary text."""
    hit = WebSearchHit(title="t", url="https://example.com", encrypted_content="snippet")
    events: list[LifecycleEvent] = [
        MessageStarted(message_id=MESSAGE_ID, model="m", usage=Usage(input_tokens=1, output_tokens=0)),
        ContentBlockStarted(index=0, block=ServerToolUseBlock(id="srvtoolu_1", name="web_search")),
        ToolInputDelta(index=0, partial_json='{"query":"kiro gateway"}'),
        ContentBlockStopped(index=0),
        ContentBlockStarted(index=1, block=WebSearchResultBlock(tool_use_id="srvtoolu_1", results=(hit,))),
        ContentBlockStopped(index=1),
        ContentBlockStarted(index=2, block=TextBlock()),
        TextDelta(index=2, text="Results: t"),
        ContentBlockStopped(index=2),
        MessageDelta(stop_reason=StopReason.END_TURN, stop_sequence=None, usage=Usage(input_tokens=1, output_tokens=3)),
        MessageStopped(),
    ]
    enc = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    tr = check_responses_stream(b"".join(enc.send(e) for e in events))
    assert [i["type"] for i in tr.items] == ["web_search_call", "message"]
    assert tr.items[0]["action"] == {"type": "search", "query": "kiro gateway"} and tr.text == "Results: t"
    body = ResponsesObjectEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    assert [body.send(e) for e in events][-1] and body.response is not None
    assert body.response["output"] == tr.items


def test_a_web_search_with_unreadable_input_has_an_empty_query() -> None:
    enc = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    events: list[LifecycleEvent] = [
        MessageStarted(message_id=MESSAGE_ID, model="m", usage=Usage(input_tokens=1, output_tokens=0)),
        ContentBlockStarted(index=0, block=ServerToolUseBlock(id="srvtoolu_1", name="web_search")),
        ToolInputDelta(index=0, partial_json="not json"),
        ContentBlockStopped(index=0),
        MessageDelta(stop_reason=StopReason.END_TURN, stop_sequence=None, usage=Usage(input_tokens=1, output_tokens=3)),
        MessageStopped(),
    ]
    tr = check_responses_stream(b"".join(enc.send(e) for e in events))
    assert tr.items[0]["action"]["query"] == ""


def test_usage_counts_all_input_and_caps_reasoning_at_output() -> None:
    assert responses_usage_json(Usage(input_tokens=7, output_tokens=2), reasoning_tokens=5) == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 9,
    }


@pytest.mark.parametrize(
    ("response_id", "created_at"),
    [("msg_01AbCdEfGhIjKlMnOpQrStUv", CREATED), ("resp_short", CREATED), (RESPONSE_ID, -1), (RESPONSE_ID, True)],
)
def test_bad_ids_are_refused(response_id: str, created_at: int) -> None:
    with pytest.raises(LocalProtocolError):
        ResponsesStreamEncoder(response_id=response_id, created_at=created_at)
    with pytest.raises(LocalProtocolError):
        ResponsesObjectEncoder(response_id=response_id, created_at=created_at)


def test_factory_picks_the_encoder_from_the_plan() -> None:
    streaming = responses_encoder(make_plan(stream=True), response_id=RESPONSE_ID, created_at=CREATED)
    assert isinstance(streaming, ResponsesStreamEncoder) and streaming.streaming
    plain = responses_encoder(make_plan(stream=False), response_id=RESPONSE_ID, created_at=CREATED)
    assert isinstance(plain, ResponsesObjectEncoder) and not plain.streaming
    assert plain.media_type == "application/json" and streaming.media_type.startswith("text/event-stream")


def test_checker_rejects_what_codex_or_the_sdk_would_choke_on() -> None:
    """The strict checker is not a rubber stamp."""
    enc = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    good = b"".join(enc.send(e) for e in _events())
    check_responses_stream(good)
    completed_at = good.rindex(b"event: response.completed")
    bad_variants = [
        good.replace(b'"sequence_number":5,', b'"sequence_number":6,', 1),  # a gap
        good[:completed_at],  # a stream that simply stops
        good + b'event: response.completed\ndata: {"type":"response.completed"}\n\n',  # after the end
        good.replace(b"event: response.in_progress", b"event: response.created", 1),  # name != type
        good.replace(b'"delta":"{\\"x\\":1}"', b'"delta":"{\\"x\\":2}"', 1),  # deltas != done
        good.replace(b'"call_id":"call_2","name":"b"}}', b'"call_id":"call_9","name":"b"}}', 1),  # call changed
        good.replace(b'"status":"completed","background"', b'"status":"failed","background"', 1),  # wrong ending
        good.replace(b'"total_tokens":153', b'"total_tokens":154', 1),  # usage does not add up
    ]
    for bad in bad_variants:
        assert bad != good
        with pytest.raises(SSEViolation):
            check_responses_stream(bad)
    with pytest.raises(SSEViolation):
        check_responses_usage({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}, "usage")


# -- property: whatever the tracker produces encodes to a grammatical stream -------------------

TEXT = st.text(alphabet=st.sampled_from(list("ab \n\"\\{}é中🎉")), min_size=1, max_size=8)
UPSTREAM_EVENT = st.one_of(
    TEXT.map(lambda t: AssistantResponse(content=t)),
    st.builds(
        ToolUse,
        tool_use_id=st.sampled_from(["tooluse_a", "tooluse_b"]),
        name=st.sampled_from(["t", "Write"]),
        input=st.sampled_from(["", '{"a":', "1}", "{}", '{"q":"x"}']),
        stop=st.booleans(),
    ),
    st.builds(ReasoningContent, text=TEXT, signature=st.none() | st.just("sig"), redacted_content=st.none() | st.just("r")),
    st.floats(0, 100).map(lambda p: ContextUsage(percentage=p)),
    st.builds(UpstreamException, exception_type=st.sampled_from(["ContentLengthExceededException", "ThrottlingException"]), message=TEXT),
)


@settings(max_examples=80, deadline=None)
@given(events=st.lists(UPSTREAM_EVENT, max_size=10), thinking=st.booleans(), ticks=st.lists(st.floats(0, 30), max_size=3))
def test_any_tracker_output_encodes_to_a_grammatical_stream_and_agrees_with_the_object(
    events: list[Any], thinking: bool, ticks: list[float]
) -> None:
    data = b"".join(encode_upstream_event(e) for e in events)
    plan = make_plan(stream=True, thinking=thinking)
    t = ResponseTranslator(
        plan, message_id=MESSAGE_ID, now=0.0, ping_interval=10.0,
        encoder=responses_encoder(plan, response_id=RESPONSE_ID, created_at=CREATED),
    )  # fmt: skip
    out = bytearray(t.data_to_send())
    parts = len(ticks) + 1
    for i in range(parts):
        chunk = data[i * len(data) // parts : (i + 1) * len(data) // parts]
        if chunk:  # b"" would end the body
            t.receive_data(chunk)
        if i < len(ticks):
            t.tick(sum(ticks[: i + 1]))
        out += t.data_to_send()
    t.receive_data(b"")
    out += t.data_to_send()
    tr = check_responses_stream(bytes(out))
    assert tr.success != t.failed
    plain, body = translate(data, stream=False, thinking=thinking)
    if tr.success:
        assert tr.response == json.loads(body)
    else:
        response = plain.final_response()
        assert response is not None and response.status >= 400 and tr.error is not None
        assert check_responses_error(json.loads(response.body))["code"] == tr.error["code"]


# -- the openai SDK's own stream accumulator ---------------------------------------------------


def _sdk_final_response(sse: bytes) -> Any:
    """What ``client.responses.stream(...).get_final_response()`` builds from ``sse`` (the SDK's
    accumulator, fed event by event; it raises on an event out of its order)."""
    from openai import omit
    from openai._models import construct_type
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent

    from tests.sse_checker import parse_sse

    state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
    for ev in parse_sse(sse):
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=json.loads(ev.data)))
    return state._completed_response


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_sdk_accumulates_every_golden_stream(case: str) -> None:
    expect = CASES[case]
    sse = (GOLDEN / f"{case}.sse").read_bytes()
    final = _sdk_final_response(sse)
    if expect.error_type is not None or expect.stop_reason == "max_tokens":
        # get_final_response raises without response.completed, as against OpenAI itself.
        assert final is None
        return
    text, reasoning, tools = expected_parts(expect)
    assert final.output_text == text and final.status == STATUS[expect.stop_reason or ""]
    assert [json.loads(o.arguments) for o in final.output if o.type == "function_call"] == tools
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens
    body = json.loads((GOLDEN / f"{case}.json").read_bytes())
    assert [(o.id, o.type) for o in final.output] == [(i["id"], i["type"]) for i in body["output"]]


def test_a_call_with_no_fragments_at_all_still_streams_its_empty_object() -> None:
    """The tracker sends ``{}`` itself today; the encoder does not rely on it."""
    events: list[LifecycleEvent] = [
        MessageStarted(message_id=MESSAGE_ID, model="m", usage=Usage(input_tokens=1, output_tokens=0)),
        ContentBlockStarted(index=0, block=ToolUseBlock(id="call_1", name="a")),
        ContentBlockStopped(index=0),
        ContentBlockStarted(index=1, block=WebSearchResultBlock(tool_use_id="srvtoolu_1", results=())),
        TextDelta(index=1, text="no item takes this"),
        ContentBlockStopped(index=1),
        MessageDelta(stop_reason=StopReason.TOOL_USE, stop_sequence=None, usage=Usage(input_tokens=1, output_tokens=1)),
        MessageStopped(),
    ]
    stream = ResponsesStreamEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    tr = check_responses_stream(b"".join(stream.send(e) for e in events))
    assert tr.tool_arguments == [{}] and tr.types.count("response.function_call_arguments.delta") == 1
    body = ResponsesObjectEncoder(response_id=RESPONSE_ID, created_at=CREATED)
    for e in events:
        body.send(e)
    assert body.response is not None and body.response["output"] == tr.items
