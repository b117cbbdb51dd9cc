"""The official ``openai`` SDK, and the strict chunk checker on raw streams, on every way of serving."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.conformance.conftest import Gateway, request
from tests.openai_checker import check_openai_completion, check_openai_error, check_openai_stream

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"
BASH: Any = {
    "type": "function",
    "function": {
        "name": "Bash",
        "description": "Run a shell command.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
}


def client(gateway: Gateway, *, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=api_key or gateway.token, max_retries=0, timeout=60)


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def raw(gateway: Gateway, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {"authorization": f"Bearer {gateway.token}", "content-type": "application/json"}
    return request(gateway.port, "POST", "/v1/chat/completions", json.dumps(body).encode(), headers)


def test_text_without_streaming(gateway: Gateway, marker: str) -> None:
    completion = client(gateway).chat.completions.create(model=MODEL, messages=ask(f"Say hello {marker}"))
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert completion.usage is not None and completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert len(gateway.generate_calls(marker)) == 1


def test_text_streaming_with_usage(gateway: Gateway, marker: str) -> None:
    chunks = list(
        client(gateway).chat.completions.create(
            model=MODEL, messages=ask(f"Say hello {marker}"), stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


def test_stream_helper_final_completion(gateway: Gateway, marker: str) -> None:
    with client(gateway).chat.completions.stream(model=MODEL, messages=ask(f"Say hello {marker}")) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content and final.choices[0].finish_reason == "stop"


def test_raw_streams_pass_the_strict_checker(gateway: Gateway, marker: str) -> None:
    status, headers, body = raw(
        gateway,
        {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}, "messages": ask(f"[[sim:tools:2]] {marker}"), "tools": [BASH]},
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    transcript = check_openai_stream(body, include_usage=True)
    assert transcript.success and transcript.finish_reason == "tool_calls"
    assert len(transcript.tool_calls) == 2 and all(a["command"].startswith("echo") for a in transcript.tool_arguments)
    status, _, body = raw(gateway, {"model": MODEL, "messages": ask(f"Say hello {marker}")})
    assert status == 200 and check_openai_completion(body)["choices"][0]["finish_reason"] == "stop"


def test_tool_round_trip(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    messages: list[Any] = ask(f"Please use the Bash tool to run `echo {marker}`")
    first = api.chat.completions.create(model=MODEL, messages=messages, tools=[BASH])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "Bash"
    assert json.loads(call.function.arguments) == {"command": f"echo {marker}"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": f"{marker}-output"},
    ]
    second = api.chat.completions.create(model=MODEL, messages=messages, tools=[BASH])
    assert second.choices[0].finish_reason == "stop"
    assert f"{marker}-output" in (second.choices[0].message.content or "")


def test_finish_reason_length_only_when_the_answer_was_cut(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    whole = api.chat.completions.create(model=MODEL, max_tokens=50, messages=ask(f"[[sim:long:300]] {marker} a"))
    assert whole.choices[0].finish_reason == "stop"
    assert (whole.choices[0].message.content or "").split()[-1] == "chunk-300"
    chunks = list(
        api.chat.completions.create(model=MODEL, max_tokens=50, messages=ask(f"[[sim:long:300]] {marker} b"), stream=True)
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    cut = api.chat.completions.create(model=MODEL, messages=ask(f"[[sim:content-length-exceeded]] {marker}"))
    assert cut.choices[0].finish_reason == "length"


def test_models_list(gateway: Gateway) -> None:
    assert MODEL in [m.id for m in client(gateway).models.list()]


def test_errors_in_the_openai_shape(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        client(gateway, api_key="wrong-token-0123456789").chat.completions.create(model=MODEL, messages=ask("hi"))
    assert denied.value.status_code == 401
    check_openai_error(json.loads(denied.value.response.content))
    with pytest.raises(openai.BadRequestError) as bad:
        client(gateway).chat.completions.create(model=MODEL, messages=[])
    error = check_openai_error(json.loads(bad.value.response.content))
    assert error["type"] == "invalid_request_error"
    status, _, body = request(
        gateway.port, "POST", "/v1/chat/completions", b"{not json", {"authorization": f"Bearer {gateway.token}"}
    )
    assert status == 400 and check_openai_error(json.loads(body))["type"] == "invalid_request_error"


def test_a_failure_mid_stream_is_an_error_chunk_without_done(gateway: Gateway, marker: str) -> None:
    status, _, body = raw(gateway, {"model": MODEL, "stream": True, "messages": ask(f"[[sim:error-frame]] {marker}")})
    assert status == 200
    transcript = check_openai_stream(body)
    assert not transcript.success and transcript.error is not None
    assert b"[DONE]" not in body
