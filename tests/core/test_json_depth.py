"""The nesting bound of forwarded JSON values (``check_depth``) against its plain definition."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._json import check_depth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=40,
)


def depth(value: object) -> int:
    """Levels of arrays and objects: a scalar is 0, ``[]`` and ``{}`` are 1."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def accepted(value: object, limit: int) -> bool:
    try:
        check_depth(value, "tools[0].input_schema", limit)
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.param == "tools[0].input_schema" and f"{limit} levels" in exc.message
        return False
    return True


@settings(max_examples=300)
@given(json_values, st.integers(min_value=0, max_value=6))
def test_a_value_is_refused_exactly_when_it_nests_deeper_than_the_limit(value: object, limit: int) -> None:
    assert accepted(value, limit) == (depth(value) <= limit)


def test_the_default_bound_refuses_65_levels_and_accepts_64() -> None:
    deep: object = 1
    for _ in range(64):
        deep = [deep]
    check_depth(deep, "x")
    with pytest.raises(LocalProtocolError):
        check_depth({"a": deep}, "x")


def test_any_mapping_counts_as_an_object() -> None:
    nested: object = OrderedDict(a=OrderedDict(b=[1]))
    assert not accepted(nested, 2) and accepted(nested, 3)
