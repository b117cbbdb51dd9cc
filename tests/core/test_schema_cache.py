"""The tool-schema key and the caches keyed by it (normalised schemas, the token estimate of the
system prompt and tools): a hit is exactly what the work would give; a changed schema misses."""

from __future__ import annotations

import json
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.requests._convert_tools import ToolNames, build_tool_specs, normalise_schema
from kiro_protocol.requests._model import Message, Request, TextBlock, Tool
from kiro_protocol.requests._schema_cache import SchemaCache, schema_key, schema_keys
from kiro_protocol.requests._token_estimator import EstimateCache, count_input_tokens

_TEXT = st.text(max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_PROPERTY = st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", None])}, optional={"description": _TEXT})
_SCHEMAS = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(st.text(min_size=1, max_size=6), _PROPERTY | _VALUES, max_size=4)},
    optional={"required": st.lists(_TEXT | st.integers(), max_size=3), "additionalProperties": _VALUES, "extra": _VALUES},
)


def _request(schemas: list[Mapping[str, object] | None], system: str = "Be brief.") -> Request:
    tools = tuple(Tool(name=f"tool_{i}", description=f"Tool number {i}.", input_schema=s) for i, s in enumerate(schemas))
    return Request(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system=(TextBlock(text=system),),
        messages=(Message(role="user", content=(TextBlock(text="hi"),)),),
        tools=tools,
    )


def _specs(request: Request, cache: SchemaCache | None) -> list[dict[str, object]]:
    return build_tool_specs(
        request.tools, [], names=ToolNames(), max_description_length=100, repairs=[],
        schema_cache=cache, keys=schema_keys(request.tools),
    )


@given(st.lists(_SCHEMAS, min_size=1, max_size=4))
def test_cached_specs_and_estimates_are_what_the_work_gives(schemas: list[Mapping[str, object]]) -> None:
    request = _request(list(schemas))
    cache, tokens = SchemaCache(), EstimateCache()
    plain = _specs(request, None)
    assert _specs(request, cache) == plain  # fills the cache
    assert _specs(request, cache) == plain  # served from it
    assert json.dumps(_specs(request, cache)) == json.dumps(plain)
    expected = count_input_tokens(request)
    assert count_input_tokens(request, cache=tokens) == expected
    assert count_input_tokens(request, cache=tokens) == expected  # a hit
    assert count_input_tokens(request, cache=tokens, schema_keys=schema_keys(request.tools)) == expected


@given(_SCHEMAS, _SCHEMAS)
def test_a_changed_schema_changes_the_key_and_the_answers(first: Mapping[str, object], second: Mapping[str, object]) -> None:
    specs, tokens = SchemaCache(), EstimateCache()
    one, two = _request([first]), _request([second])
    assert (schema_key(first) == schema_key(second)) == (json.dumps(first) == json.dumps(second))
    for request in (one, two, one):
        assert _specs(request, specs) == _specs(request, None)
        assert count_input_tokens(request, cache=tokens) == count_input_tokens(request)


def test_key_order_and_value_types_count() -> None:
    a = {"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "integer"}}}
    b = {"type": "object", "properties": {"y": {"type": "integer"}, "x": {"type": "string"}}}
    assert schema_key(a) != schema_key(b)
    assert schema_key({"n": 1}) != schema_key({"n": 1.0}) != schema_key({"n": True})
    cache = SchemaCache()
    assert list(_specs(_request([a]), cache)[0]["toolSpecification"]["inputSchema"]["json"]["properties"]) == ["x", "y"]  # type: ignore[index]
    assert list(_specs(_request([b]), cache)[0]["toolSpecification"]["inputSchema"]["json"]["properties"]) == ["y", "x"]  # type: ignore[index]


def test_no_key_for_what_is_not_json() -> None:
    class Opaque:
        pass

    schema: dict[str, object] = {"type": "object", "properties": {"x": Opaque()}}
    assert schema_key(schema) is None
    assert schema_key(None) is None
    cache = SchemaCache()
    assert _specs(_request([schema]), cache)[0]["toolSpecification"]["inputSchema"]["json"] == normalise_schema(schema)  # type: ignore[index]
    assert len(cache) == 0
    tokens = EstimateCache()
    request = _request([schema, None])
    assert count_input_tokens(request, cache=tokens) == count_input_tokens(request)
    assert len(tokens) == 0  # a schema without a key: the estimate is not remembered


def test_an_absent_schema_is_not_an_empty_one() -> None:
    tokens = EstimateCache()
    absent, empty = _request([None]), _request([{}])
    assert count_input_tokens(absent, cache=tokens) == count_input_tokens(absent)
    assert count_input_tokens(empty, cache=tokens) == count_input_tokens(empty)
    assert len(tokens) == 2


def test_the_schema_cache_is_bounded() -> None:
    cache = SchemaCache(max_entries=3)
    for n in range(10):
        cache.put(str(n).encode(), {"n": n})
    assert len(cache) == 3
    assert cache.get(b"0") is None and cache.get(b"9") == {"n": 9}


def test_conversion_with_a_warm_cache_sends_the_same_body() -> None:
    schemas: list[Mapping[str, object] | None] = [
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        {"type": None, "properties": None, "required": [], "items": None},
        None,
    ]
    request = _request(schemas, system="You are a coding agent.")
    config = ConversionConfig()
    cold = convert_request(request, config=config, continuation_id="c0ffee00-0000-4000-8000-000000000000")
    assert len(config.schema_cache) == 2
    warm = convert_request(request, config=config, continuation_id="c0ffee00-0000-4000-8000-000000000000")
    fresh = convert_request(request, config=ConversionConfig(), continuation_id="c0ffee00-0000-4000-8000-000000000000")
    assert warm.body() == cold.body() == fresh.body()
    assert warm.response_plan == cold.response_plan == fresh.response_plan
