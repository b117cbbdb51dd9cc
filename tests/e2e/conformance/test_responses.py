"""The official ``openai`` SDK's Responses API (``POST /v1/responses``), and the strict stream
checker on raw streams, on every way of serving.

The SDK is lenient (it passes unknown events through and rebuilds the final response from what
it understood), so raw streams also go through ``tests/responses_checker``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from tests.e2e.conformance.conftest import Gateway, request
from tests.openai_checker import check_openai_error
from tests.responses_checker import check_responses_object, check_responses_stream

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
BASH: Any = {
    "type": "function",
    "name": "Bash",
    "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    "strict": False,
}
AGENTS: Any = {
    "type": "namespace",
    "name": "agents",
    "description": "Sub-agents.",
    "tools": [{"type": "function", "name": "spawn", "description": "Start one.", "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}],
}
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()


def client(gateway: Gateway, *, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=api_key or gateway.token, max_retries=0, timeout=60)


def raw(gateway: Gateway, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {"authorization": f"Bearer {gateway.token}", "content-type": "application/json"}
    return request(gateway.port, "POST", "/v1/responses", json.dumps(body).encode(), headers)


def test_text_without_streaming(gateway: Gateway, marker: str) -> None:
    response = client(gateway).responses.create(model=MODEL, input=f"Say hello {marker}", instructions="Be kind.")
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.model == MODEL and response.instructions == "Be kind."
    assert [item.type for item in response.output] == ["message"] and response.output_text.strip()
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    (call,) = gateway.generate_calls(marker)
    assert "Be kind." in json.dumps(call["body"]), "instructions reach Kiro as the system prompt"


def test_text_streaming(gateway: Gateway, marker: str) -> None:
    events = list(client(gateway).responses.create(model=MODEL, input=f"Say hello {marker}", stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text.strip() and final.output_text == text and final.status == "completed"


def test_stream_helper_final_response(gateway: Gateway, marker: str) -> None:
    with client(gateway).responses.stream(model=MODEL, input=f"Say hello {marker}") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed" and final.output_text == "".join(deltas) and final.output_text.strip()


def test_two_parallel_function_calls_whose_arguments_parse(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    response = api.responses.create(model=MODEL, input=f"[[sim:tools:2]] {marker}", tools=[BASH], parallel_tool_calls=True)
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 2 and len({c.call_id for c in calls}) == 2
    assert all(c.name == "Bash" and json.loads(c.arguments)["command"].startswith("echo") for c in calls)
    with api.responses.stream(model=MODEL, input=f"[[sim:tools:2]] {marker} s", tools=[BASH]) as stream:
        final = stream.get_final_response()
    streamed = [item for item in final.output if item.type == "function_call"]
    assert len(streamed) == 2 and all(isinstance(json.loads(c.arguments), dict) for c in streamed)


def test_a_multi_turn_exchange_with_function_call_output(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    history: list[Any] = [{"role": "user", "content": f"Please use the Bash tool to run `echo {marker}`"}]
    first = api.responses.create(model=MODEL, input=history, tools=[BASH])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "Bash" and json.loads(call.arguments) == {"command": f"echo {marker}"}
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": f"{marker}-output"})
    second = api.responses.create(model=MODEL, input=history, tools=[BASH])
    assert second.status == "completed" and not [i for i in second.output if i.type == "function_call"]
    assert f"{marker}-output" in second.output_text
    sent = gateway.generate_calls(marker)[-1]["body"]
    assert call.call_id in json.dumps(sent), "the output answers the call Kiro made"


def test_a_namespaced_function_comes_back_under_its_namespace(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    first = api.responses.create(model=MODEL, input=f"[[sim:tool:agents__spawn]] {marker}", tools=[WEATHER, AGENTS])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.name, call.namespace) == ("spawn", "agents")
    history: list[Any] = [{"role": "user", "content": f"[[sim:tool:agents__spawn]] {marker}"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "spawned"})
    second = api.responses.create(model=MODEL, input=history, tools=[WEATHER, AGENTS])
    assert second.status == "completed"
    assert '"agents__spawn"' in json.dumps(gateway.generate_calls(marker)[-1]["body"])


def test_an_image(gateway: Gateway, marker: str) -> None:
    content: Any = [
        {"type": "input_text", "text": f"What is in this picture? {marker}"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
    ]
    response = client(gateway).responses.create(model=MODEL, input=[{"role": "user", "content": content}])
    assert response.status == "completed" and response.output_text.strip()
    (call,) = gateway.generate_calls(marker)
    images = call["body"]["conversationState"]["currentMessage"]["userInputMessage"]["images"]
    assert images == [{"format": "png", "source": {"bytes": PNG}}]


def test_reasoning_is_a_summary_and_goes_back_without_an_upstream_error(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    prompt = f"[[sim:thinking]] Use the Bash tool to run `echo {marker}`"
    first = api.responses.create(model=MODEL, input=prompt, tools=[BASH], reasoning={"effort": "high", "summary": "auto"})
    kinds = [item.type for item in first.output]
    assert kinds[0] == "reasoning" and "function_call" in kinds
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary and reasoning.summary[0].text.strip()
    assert first.reasoning is not None and first.reasoning.effort == "high"
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens > 0
    call = next(item for item in first.output if item.type == "function_call")
    history: list[Any] = [{"role": "user", "content": prompt}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": f"{marker}-output"})
    second = api.responses.create(model=MODEL, input=history, tools=[BASH], reasoning={"effort": "high"})
    assert second.status == "completed" and f"{marker}-output" in second.output_text
    calls = gateway.generate_calls(marker)
    # The thinking went back to Kiro with the conversation (in <thinking>, as thinking is on).
    assert len(calls) == 2 and json.dumps(reasoning.summary[0].text)[1:-1] in json.dumps(calls[1]["body"])


def test_web_search_alone_is_searched(gateway: Gateway, marker: str) -> None:
    response = client(gateway).responses.create(model=MODEL, input=f"kiro gateway news {marker}", tools=[{"type": "web_search"}])
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert marker in response.output_text and "https://" in response.output_text
    assert not gateway.generate_calls(marker), "a search is not a model call"


def test_raw_streams_pass_the_strict_checker(gateway: Gateway, marker: str) -> None:
    status, headers, body = raw(gateway, {"model": MODEL, "stream": True, "input": f"[[sim:tools:2]] {marker}", "tools": [BASH]})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    transcript = check_responses_stream(body)
    assert transcript.status == "completed" and [i["type"] for i in transcript.items].count("function_call") == 2
    status, headers, body = raw(gateway, {"model": MODEL, "input": f"[[sim:thinking]] {marker}", "reasoning": {"effort": "low", "summary": "auto"}})
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert [i["type"] for i in check_responses_object(body)["output"]] == ["reasoning", "message"]


def test_a_failure_mid_stream_is_response_failed(gateway: Gateway, marker: str) -> None:
    status, _, body = raw(gateway, {"model": MODEL, "stream": True, "input": f"[[sim:error-frame]] {marker}"})
    assert status == 200
    transcript = check_responses_stream(body)
    assert transcript.status == "failed" and transcript.error is not None
    assert b"response.completed" not in body


def test_an_over_long_conversation_is_context_length_exceeded(gateway: Gateway, marker: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).responses.create(model=MODEL, input=f"[[sim:input-too-long]] {marker}")
    error = check_openai_error(json.loads(info.value.response.content))
    assert error["code"] == "context_length_exceeded" and error["message"].startswith("prompt is too long")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_0123456789"}, "previous_response_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}]}]}, "input.0.content.0.image_url"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools.0.type"),
        ({"input": []}, "input"),
    ],
)
def test_refused_requests_are_400s_in_the_openai_shape(gateway: Gateway, fields: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": MODEL, "input": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).responses.create(**body)
    error = check_openai_error(json.loads(info.value.response.content))
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"].startswith(f"{param}: ")


def test_errors_in_the_openai_shape(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        client(gateway, api_key="wrong-token-0123456789").responses.create(model=MODEL, input="hi")
    assert check_openai_error(json.loads(denied.value.response.content))["type"] == "authentication_error"
    with pytest.raises(openai.NotFoundError) as unknown:
        client(gateway).responses.create(model="gpt-0-unknown", input="hi")
    assert check_openai_error(json.loads(unknown.value.response.content))["type"] == "not_found_error"
    status, _, body = request(gateway.port, "POST", "/v1/responses", b"{not json", {"authorization": f"Bearer {gateway.token}"})
    assert status == 400 and check_openai_error(json.loads(body))["type"] == "invalid_request_error"
    status, headers, _ = request(gateway.port, "GET", "/v1/responses", b"", {"authorization": f"Bearer {gateway.token}"})
    assert status == 405 and "POST" in headers["allow"]
