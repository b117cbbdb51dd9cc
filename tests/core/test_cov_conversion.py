"""The request converter (``kiro_protocol.convert_request``) on requests an embedder can build
that the HTTP parsers never produce: NaN in a decoded body, an empty history turn, a tool
offered twice; and ``normalise_schema`` at its depth bound."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kiro_protocol import ConversionConfig, LocalProtocolError, parse_anthropic_request
from kiro_protocol.requests import convert_request
from kiro_protocol.requests import Message, Request, TextBlock, Tool, normalise_schema

MODEL = "claude-sonnet-4-5"


def convert(request: Request) -> Any:
    return convert_request(request, config=ConversionConfig(), continuation_id="cont-1")


def test_nan_in_an_already_decoded_body_is_a_400() -> None:
    body = {
        "model": MODEL,
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"x": math.nan}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    with pytest.raises(LocalProtocolError) as caught:
        convert(parse_anthropic_request(body))
    assert caught.value.message == "request contains a number that is not valid JSON (NaN or Infinity)"
    assert caught.value.status_hint == 400


def test_an_empty_history_user_turn_is_filled_with_a_dot() -> None:
    request = Request(
        model=MODEL,
        messages=(
            Message(role="user", content=()),
            Message(role="assistant", content=(TextBlock(text="ok"),)),
            Message(role="user", content=(TextBlock(text="go"),)),
        ),
    )
    kiro = convert(request)
    assert kiro.repairs == ("user-content: empty user turn filled",)
    first = kiro.conversation_state["history"][0]["userInputMessage"]
    assert first["content"] == "."


def test_a_tool_offered_twice_is_declared_once_with_its_first_definition() -> None:
    request = Request(
        model=MODEL,
        messages=(Message(role="user", content=(TextBlock(text="go"),)),),
        tools=(Tool(name="f", description="first"), Tool(name="f", description="second")),
    )
    kiro = convert(request)
    assert "tool-name: duplicate 'f' dropped" in kiro.repairs
    tools = kiro.conversation_state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert [t["toolSpecification"]["description"] for t in tools] == ["first"]


def test_schemas_nested_past_the_depth_bound_are_forwarded_as_they_are() -> None:
    leaf: dict[str, object] = {"type": None, "required": "x"}  # would be cleaned at a shallow depth
    schema: dict[str, object] = {"type": "object", "properties": {"leaf": leaf}}
    for _ in range(40):
        schema = {"type": "object", "properties": {"child": schema}}
    out = normalise_schema(schema)
    node: Any = out
    for _ in range(40):
        node = node["properties"]["child"]
    assert node["properties"]["leaf"] == {"type": None, "required": "x"}
    shallow = normalise_schema({"type": "object", "properties": {"leaf": dict(leaf)}})
    assert shallow["properties"] == {"leaf": {}}
