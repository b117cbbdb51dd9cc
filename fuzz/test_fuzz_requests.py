"""Fuzz targets for Anthropic request parsing and conversion (invariants in fuzz/README.md,
"Anthropic requests").

Seeds: the Claude Code request bodies and the conversion vectors in tests/fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.requests._anthropic import parse_anthropic_request
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._model import Request

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"
SEEDS: list[dict[str, Any]] = [
    json.loads(p.read_text()) for p in sorted((FIXTURES / "conversion").glob("conv*.request.json"))
] + [s["body"] for s in json.loads((FIXTURES / "clients" / "claude-code-requests.json").read_text())["samples"] if s["body"]]
CONFIG = ConversionConfig()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(
    ["model", "messages", "role", "content", "type", "text", "tool_use_id", "id", "name", "input", "source",
     "media_type", "data", "system", "tools", "input_schema", "thinking", "budget_tokens", "tool_choice",
     "metadata", "user_id", "max_tokens", "stream", "is_error", "output_config", "effort", "format"]
)


def parse_and_convert(body: bytes | dict[str, Any]) -> None:
    """The invariant: a Request and a lint-clean body, or a LocalProtocolError; nothing else."""
    try:
        request = parse_anthropic_request(body)
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.message
        return
    assert isinstance(request, Request)
    try:
        result = convert_request(request, config=CONFIG, continuation_id="c")
    except LocalProtocolError as exc:
        assert exc.status_hint in (400, 404) and exc.message
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


def _mutate(value: Any, path: list[int], replacement: Any, keys: list[str]) -> Any:
    """Replace the node reached by following ``path`` (indexes into children) with ``replacement``."""
    if not path:
        return replacement
    if isinstance(value, dict) and value:
        items = list(value.items())
        k, v = items[path[0] % len(items)]
        out = dict(value)
        if keys and path[0] % 7 == 0:
            out[keys[0]] = replacement  # sometimes add or overwrite a well-known key instead
        else:
            out[k] = _mutate(v, path[1:], replacement, keys[1:])
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        i = path[0] % len(out_list)
        out_list[i] = _mutate(out_list[i], path[1:], replacement, keys[1:])
        return out_list
    return replacement


@given(
    st.sampled_from(SEEDS),
    st.lists(st.integers(0, 50), max_size=7),
    json_values,
    st.lists(KEYS, max_size=3),
)
def test_mutated_real_requests(seed: dict[str, Any], path: list[int], replacement: Any, keys: list[str]) -> None:
    parse_and_convert(_mutate(seed, path, replacement, keys))


@given(st.sampled_from(SEEDS), st.integers(0, 2000), st.binary(max_size=8))
def test_byte_edits_of_real_requests(seed: dict[str, Any], at: int, junk: bytes) -> None:
    raw = json.dumps(seed).encode()
    at %= len(raw)
    parse_and_convert(raw[:at] + junk + raw[at + len(junk):])
