"""The OpenAI request parser (``kiro_protocol.parse_openai_request``): assistant turns as clients
send them back (reasoning, refusals, arguments as objects or empty strings), system messages,
participant names; and the 400s for shapes it refuses, each naming the offending field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiro_protocol import LocalProtocolError
from kiro_protocol.requests import parse_openai_request
from kiro_protocol.requests import Request, TextBlock, ThinkingBlock, ToolUseBlock


def request(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": list(messages), **extra}


HI = {"role": "user", "content": "hi"}


def parse(body: dict[str, Any]) -> Request:
    return parse_openai_request(json.dumps(body))


def refused(body: object) -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as caught:
        parse_openai_request(body)  # type: ignore[arg-type]
    assert caught.value.status_hint == 400
    return caught.value


def test_an_assistant_turn_keeps_its_reasoning_refusal_and_calls_in_order() -> None:
    assistant = {
        "role": "assistant",
        "reasoning_content": "think",
        "content": None,
        "refusal": "no",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
    }
    result = {"role": "tool", "tool_call_id": "c1", "content": "done"}
    message = parse(request(HI, assistant, result)).messages[1]
    assert message.role == "assistant"
    assert message.content == (
        ThinkingBlock(thinking="think"),
        TextBlock(text="no"),
        ToolUseBlock(id="c1", name="f", input={"a": 1}),
    )


def test_empty_reasoning_refusal_and_arguments_add_nothing() -> None:
    assistant = {
        "role": "assistant",
        "reasoning_content": "",
        "content": "ok",
        "refusal": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "  "}}],
    }
    result = {"role": "tool", "tool_call_id": "c1", "content": "done"}
    message = parse(request(HI, assistant, result)).messages[1]
    assert message.content == (TextBlock(text="ok"), ToolUseBlock(id="c1", name="f", input={}))


def test_a_named_participant_is_accepted_and_not_forwarded() -> None:
    parsed = parse(request({"role": "user", "name": "alice", "content": "hi"}))
    assert parsed.messages[0].content == (TextBlock(text="hi"),)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (request({"role": "user", "name": 5, "content": "hi"}), "messages.0.name: expected a string, got number"),
        (request({"role": "system"}, HI), "messages.0.content: field required"),
        (
            request({"role": "user", "content": [{"type": 7}]}),
            'messages.0.content.0.type: expected "text" or "image_url", got number',
        ),
        (
            request({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64"}}]}),
            "messages.0.content.0.image_url.url: malformed data: URI (no comma before the data)",
        ),
        (request(HI, temperature=float("inf")), "temperature: number out of range"),
        (request(HI, top_logprobs=-1), "top_logprobs: must be at least 0, got -1"),
        (
            request(HI, tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
            "tools.0.function.strict: expected a boolean, got string",
        ),
    ],
    ids=["name-not-string", "system-without-content", "part-type-not-string", "data-uri-without-comma",
         "infinite-temperature", "negative-top-logprobs", "strict-not-boolean"],
)
def test_refused_requests(body: dict[str, Any], message: str) -> None:
    error = refused(body)
    assert error.message == message
    assert error.param == message.split(":")[0]


def test_a_decoded_body_that_is_not_an_object_is_refused() -> None:
    error = refused("just text")
    assert error.message.startswith("request body")
    assert refused(3).message == "request body: expected a JSON object, got number"
    assert refused(None).message == "request body: expected a JSON object, got null"
