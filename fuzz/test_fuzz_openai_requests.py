"""Fuzz targets for OpenAI Chat Completions request parsing and conversion (invariants in
fuzz/README.md, "OpenAI requests").

Seeds: hand-written requests covering every role and field the parser knows (below), mutated
structurally and byte by byte, plus arbitrary JSON and arbitrary objects with the known keys.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.http._error_bodies import error_body_for
from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._openai import parse_openai_request
from kiro_protocol.requests._model import Request
from fuzz.mutations import mutate
from tests.openai_checker import check_openai_error

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
_TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}
SEEDS: list[dict[str, Any]] = [
    {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]},
    {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "developer", "content": [{"type": "text", "text": "D"}]},
            {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":"x"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "reasoning_content": "t"},
            {"role": "user", "content": "again", "name": "bob"},
        ],
        "tools": [_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 100,
        "stop": ["\n", "END"],
        "reasoning_effort": "medium",
        "temperature": 0.5,
        "top_p": 1,
        "n": 1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    },
    {
        "model": "claude-opus-4-5",
        "messages": [
            {"role": "user", "content": "t?"},
            {"role": "assistant", "function_call": {"name": "now", "arguments": "{}"}},
            {"role": "function", "name": "now", "content": "noon"},
        ],
        "functions": [{"name": "now", "parameters": {"type": "object"}}],
        "function_call": {"name": "now"},
        "max_tokens": 10,
        "stop": "x",
    },
]
CONFIG = ConversionConfig()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(
    ["model", "messages", "role", "content", "type", "text", "image_url", "url", "detail", "tool_calls", "id",
     "function", "name", "arguments", "tool_call_id", "tools", "parameters", "functions", "function_call",
     "tool_choice", "parallel_tool_calls", "stream", "stream_options", "include_usage", "max_tokens",
     "max_completion_tokens", "stop", "reasoning_effort", "n", "temperature", "response_format", "json_schema",
     "schema", "refusal", "reasoning_content", "modalities", "audio"]
)


def parse_and_convert(body: bytes | dict[str, Any]) -> None:
    """The invariant: a Request and a lint-clean body, or a LocalProtocolError rendered in the
    OpenAI error shape; nothing else."""
    try:
        request = parse_openai_request(body)
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.message
        check_openai_error(json.loads(error_body_for(exc, dialect="openai")))
        return
    assert isinstance(request, Request)
    assert request.messages and all(m.role in ("user", "assistant", "system") for m in request.messages)
    try:
        result = convert_request(request, config=CONFIG, continuation_id="c")
    except LocalProtocolError as exc:
        assert exc.status_hint in (400, 404) and exc.message
        check_openai_error(json.loads(error_body_for(exc, dialect="openai")))
        return
    assert lint_kiro_body(json.loads(result.body("arn"))) == []


@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    parse_and_convert(data)


@given(json_values)
def test_any_json(value: object) -> None:
    parse_and_convert(json.dumps(value).encode())


@given(st.dictionaries(KEYS, json_values, max_size=6))
def test_any_object_with_request_keys(value: dict[str, Any]) -> None:
    parse_and_convert(value)


@given(
    st.sampled_from(SEEDS),
    st.lists(st.integers(0, 50), max_size=7),
    json_values,
    st.none() | KEYS,
)
def test_mutated_requests(seed: dict[str, Any], path: list[int], replacement: Any, key: str | None) -> None:
    parse_and_convert(mutate(seed, path, replacement, key))


@given(st.sampled_from(SEEDS), st.integers(0, 5000), st.binary(max_size=8))
def test_byte_edits_of_requests(seed: dict[str, Any], at: int, junk: bytes) -> None:
    raw = json.dumps(seed).encode()
    at %= len(raw)
    parse_and_convert(raw[:at] + junk + raw[at + len(junk) :])


def test_seeds_are_valid() -> None:
    """The seeds themselves parse and convert (else the mutations start from an error)."""
    for seed in SEEDS:
        result = convert_request(parse_openai_request(seed), config=CONFIG, continuation_id="c")
        assert lint_kiro_body(json.loads(result.body())) == []
