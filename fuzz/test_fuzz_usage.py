"""Fuzz targets for usage accounting's parsers (invariants in fuzz/README.md, "Usage records").

A usage record comes back from the state store (a Redis member anything with the Redis password
could have written), and ``--since`` from an operator's command line: neither may crash a reader.
Seeds: valid records' JSON, mutated by replacing fields with arbitrary JSON; arbitrary text.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol import USAGE_GROUPINGS, UsageRecord, parse_since, summarize_usage

SEED = json.loads(
    UsageRecord(time=1.7e9, request_id="req_1", key="alice", account="acct-1", model="claude-sonnet-4-5",
                dialect="anthropic", stream=True, status=200, error=None, input_tokens=10, output_tokens=20,
                credits=0.5, ttfb=0.1, duration=1.0).to_json()
)

# Numbers that break conversions (infinities, NaN, huge, fractional counts) come often.
edges = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1, 0.5, 2**70, "1e999", "", True])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | edges,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    row: list[Any] = list(SEED)
    for _ in range(draw(st.integers(0, 4))):
        row[draw(st.integers(0, len(row) - 1))] = draw(json_values)
    if draw(st.booleans()):
        del row[draw(st.integers(0, len(row) - 1)):]
    return row


@given(st.one_of(mutated_records().map(lambda r: json.dumps(r)), st.text(max_size=200),
                 json_values.map(lambda v: json.dumps(v))))
def test_a_stored_value_is_a_record_or_a_value_error(text: str) -> None:
    try:
        record = UsageRecord.from_json(text)
    except ValueError:
        return
    # What was accepted stores and reads back as itself, and sums by every grouping.
    assert UsageRecord.from_json(record.to_json()) == record
    for field in USAGE_GROUPINGS:
        (total,) = summarize_usage([record], by=(field,))
        assert total.requests == 1


@given(st.text(max_size=40), st.floats(min_value=0, max_value=4e9))
def test_since_is_a_time_or_a_value_error(text: str, now: float) -> None:
    try:
        when = parse_since(text, now)
    except ValueError:
        return
    assert isinstance(when, float) and not math.isnan(when)
