"""Fuzz targets for Responses API request parsing and conversion (invariants in fuzz/README.md,
"Responses API requests").

Seeds: the captured Codex CLI request and hand-written requests covering every input item, part,
tool and field the parser knows, mutated structurally and byte by byte, plus arbitrary bytes,
arbitrary JSON and arbitrary objects with the known keys.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.http._routing import Dialect, error_answer
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._responses import ResponsesRequest, parse_responses_request
from kiro_protocol.requests._web_search import web_search_of
from fuzz.mutations import mutate
from tests.openai_checker import check_openai_error

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"
_FN = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": False}
_NS = {"type": "namespace", "name": "ns", "description": "n", "tools": [{"type": "function", "name": "g"}]}
SEEDS: list[dict[str, Any]] = [
    json.loads((FIXTURES / "clients" / "codex-cli-0.169-responses-request.json").read_text())["request"]["body"],
    {"model": "claude-sonnet-4-5", "input": "Hi"},
    {
        "model": "claude-sonnet-4-5",
        "instructions": "I",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "see"}, {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "e"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}, {"type": "refusal", "refusal": "no"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":"x"}'},
            {"type": "function_call", "call_id": "c2", "name": "g", "namespace": "ns", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "r2"}]},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
            {"role": "system", "content": "later"},
            {"role": "user", "content": "again"},
        ],
        "tools": [_FN, _NS, {"type": "web_search", "filters": {"allowed_domains": ["example.com"]}}],
        "tool_choice": {"type": "function", "name": "g"},
        "parallel_tool_calls": False,
        "stream": True,
        "max_output_tokens": 100,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}, "verbosity": "low"},
        "temperature": 0.5,
        "top_p": 1,
        "metadata": {"k": "v"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "p",
    },
    {"model": "claude-opus-4-5", "input": "news?", "tools": [{"type": "web_search_preview"}], "tool_choice": {"type": "web_search_preview"}},
]
CONFIG = ConversionConfig()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(
    ["model", "input", "instructions", "type", "role", "content", "text", "image_url", "detail", "file_id",
     "call_id", "name", "namespace", "arguments", "output", "summary", "encrypted_content", "tools", "parameters",
     "strict", "tool_choice", "mode", "parallel_tool_calls", "stream", "max_output_tokens", "reasoning", "effort",
     "format", "schema", "store", "previous_response_id", "metadata", "include", "prompt_cache_key", "filters",
     "allowed_domains", "refusal", "temperature", "top_p", "truncation"]
)


def parse_and_convert(body: bytes | dict[str, Any]) -> None:
    """The invariant: a parsed request and a lint-clean body (or a web search), or a
    LocalProtocolError rendered in the OpenAI error shape; nothing else."""
    try:
        parsed = parse_responses_request(body)
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.message
        check_openai_error(json.loads(error_answer(exc, Dialect.RESPONSES).body))
        return
    assert isinstance(parsed, ResponsesRequest)
    request = parsed.request
    assert request.messages and all(m.role in ("user", "assistant", "system") for m in request.messages)
    assert set(parsed.namespaces) <= {t.name for t in request.tools}
    try:
        result = convert_request(request, config=CONFIG, continuation_id="c")
        web_search_of(request)
    except LocalProtocolError as exc:
        assert exc.status_hint in (400, 404) and exc.message
        check_openai_error(json.loads(error_answer(exc, Dialect.RESPONSES).body))
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


@given(st.sampled_from(SEEDS), st.lists(st.integers(0, 50), max_size=7), json_values, st.none() | KEYS)
def test_mutated_requests(seed: dict[str, Any], path: list[int], replacement: Any, key: str | None) -> None:
    parse_and_convert(mutate(seed, path, replacement, key))


@given(st.sampled_from(SEEDS), st.integers(0, 50_000), st.binary(max_size=8))
def test_byte_edits_of_requests(seed: dict[str, Any], at: int, junk: bytes) -> None:
    raw = json.dumps(seed).encode()
    at %= len(raw)
    parse_and_convert(raw[:at] + junk + raw[at + len(junk) :])


def test_seeds_are_valid() -> None:
    """The seeds themselves parse and convert (else the mutations start from an error)."""
    for seed in SEEDS:
        result = convert_request(parse_responses_request(seed).request, config=CONFIG, continuation_id="c")
        assert lint_kiro_body(json.loads(result.body())) == []
