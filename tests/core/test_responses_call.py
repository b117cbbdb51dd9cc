"""``ModelCall`` on ``/v1/responses`` (Dialect.RESPONSES), driven by hand: the parser and the
Responses encoder are picked for the dialect, the request's echo fields and namespaces reach the
answer, errors before the stream are in the OpenAI shape with the Responses codes, and a lone
web_search tool is searched through MCP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiro_protocol import Dialect, LocalProtocolError, ModelCall, parse_accounts
from kiro_protocol.responses import AssistantResponse, ContextUsage, ToolUse, encode_upstream_event
from tests.core import call_driver as driver
from tests.core.call_driver import Run
from tests.responses_checker import check_responses_object, check_responses_stream

ACCOUNTS = parse_accounts(json.dumps([{"auth": "Social", "refreshToken": f"aor-{i}" + "x" * 40} for i in range(2)]))
MODEL = "claude-sonnet-4-5"
NAMESPACE = {"type": "namespace", "name": "agents", "description": "d", "tools": [{"type": "function", "name": "spawn"}]}


def call_for(body: dict[str, Any]) -> ModelCall:
    return driver.call_for(body, accounts=ACCOUNTS, dialect=Dialect.RESPONSES)


def drive(call: ModelCall, upstream: list[driver.Scripted]) -> Run:
    return driver.drive(call, upstream, chunk=7, step=1.0)


def frames(*events: object) -> bytes:
    return b"".join(encode_upstream_event(e) for e in events)  # type: ignore[arg-type]


TEXT = frames(AssistantResponse(content="Hello"), ContextUsage(percentage=1.0))


def test_a_streamed_answer_is_the_responses_event_stream() -> None:
    call = call_for({"model": MODEL, "input": "hi", "stream": True, "metadata": {"team": "a"}})
    run = drive(call, [(200, TEXT)])
    assert run.answer is None and run.outputs[0].head is not None and run.outputs[-1].end
    transcript = check_responses_stream(run.body)
    assert transcript.status == "completed" and transcript.id == "resp_" + "a" * 32
    assert transcript.response["metadata"] == {"team": "a"} and transcript.response["store"] is False


def test_a_non_streamed_answer_echoes_the_request_and_names_namespaced_calls() -> None:
    body = {
        "model": MODEL,
        "input": "go",
        "instructions": "Be brief.",
        "tools": [NAMESPACE],
        "tool_choice": "required",
        "reasoning": {"summary": "auto"},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "max_output_tokens": 500,
        "prompt_cache_key": "thread-1",
    }
    upstream = frames(ToolUse(tool_use_id="tooluse_1", name="agents__spawn", input='{"task":"x"}', stop=True), ContextUsage(percentage=1.0))
    run = drive(call_for(body), [(200, upstream)])
    assert run.answer is not None and run.answer.reply.status == 200
    response = check_responses_object(run.answer.reply.body)
    (item,) = response["output"]
    assert (item["type"], item["name"], item["namespace"], item["call_id"]) == ("function_call", "spawn", "agents", "tooluse_1")
    assert json.loads(item["arguments"]) == {"task": "x"}
    assert response["instructions"] == "Be brief." and response["tool_choice"] == "required"
    assert response["tools"] == [NAMESPACE] and response["max_output_tokens"] == 500
    assert response["reasoning"] == {"effort": None, "summary": "auto"} and response["text"]["verbosity"] == "low"
    assert response["prompt_cache_key"] == "thread-1"


@pytest.mark.parametrize("stream", [True, False])
def test_an_upstream_error_before_any_byte_is_answered_with_the_responses_codes(stream: bool) -> None:
    too_long = json.dumps({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}).encode()
    run = drive(call_for({"model": MODEL, "input": "hi", "stream": stream}), [(400, too_long)])
    assert run.answer is not None and run.answer.reply.status == 400 and run.outputs == []
    error = run.error()
    assert error["type"] == "invalid_request_error" and error["code"] == "context_length_exceeded"
    assert error["message"].startswith("prompt is too long")
    broken = drive(call_for({"model": MODEL, "input": "hi", "stream": stream}), [(500, b"{}"), (500, b"{}")])
    assert broken.answer is not None and broken.error()["code"] == "server_error"


def test_a_bad_body_is_refused_before_any_decision() -> None:
    with pytest.raises(LocalProtocolError) as info:
        call_for({"model": MODEL, "input": "hi", "store": True})
    assert info.value.param == "store"


@pytest.mark.parametrize("stream", [True, False])
def test_a_lone_web_search_is_searched_through_mcp(stream: bool) -> None:
    results = [{"title": "Kiro", "url": "https://kiro.dev/a", "snippet": "About Kiro."}]
    text = json.dumps({"results": results})
    answer = json.dumps({"id": "x", "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": text}], "isError": False}}).encode()
    call = call_for({"model": MODEL, "input": "kiro news", "stream": stream, "tools": [{"type": "web_search"}]})
    assert call.web_search is not None and call.web_search.query == "kiro news"
    run = drive(call, [(200, answer)])
    assert [s.request.url.rsplit("/", 1)[-1] for s in run.sends] == ["mcp"]
    if stream:
        items = check_responses_stream(run.body).items
    else:
        assert run.answer is not None
        items = check_responses_object(run.answer.reply.body)["output"]
    assert [i["type"] for i in items] == ["web_search_call", "message"]
    assert items[0]["action"]["query"] == "kiro news" and "https://kiro.dev/a" in json.dumps(items[1])
