"""Usage accounting in the core: the record's stored form, the sums per key, account, model and
day, and the time rules (UTC days, retention, what --since means)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from kiro_protocol import UsageRecord, clip_label, parse_since, retention_cutoff, summarize_usage
from kiro_protocol.accounting import usage_day

NOW = datetime(2025, 6, 15, 12, 30, tzinfo=timezone.utc).timestamp()

_labels = st.none() | st.text(max_size=30)
records = st.builds(
    UsageRecord,
    time=st.floats(min_value=0, max_value=4e9),
    request_id=st.text(max_size=40),
    key=_labels,
    account=_labels,
    model=_labels,
    dialect=st.sampled_from(["anthropic", "openai", "responses"]),
    stream=st.booleans(),
    status=st.integers(100, 599),
    error=_labels,
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    credits=st.floats(min_value=0, max_value=1e6),
    ttfb=st.none() | st.floats(min_value=0, max_value=1e4),
    duration=st.floats(min_value=0, max_value=1e5),
)


@given(records)
def test_a_record_survives_its_json_and_row_forms(record: UsageRecord) -> None:
    assert UsageRecord.from_json(record.to_json()) == record
    assert UsageRecord.from_json(record.to_json().encode()) == record
    assert UsageRecord.from_row(record.row()) == record


@pytest.mark.parametrize("text", ["", "{}", "[1, 2]", '"x"', "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]",
                                  '["t","r",null,null,null,"a",true,200,null,0,0,0,null,0]',
                                  '[1e999,"r",null,null,null,"a",true,200,null,0,0,0,null,0]',
                                  '[-1,"r",null,null,null,"a",true,200,null,0,0,0,null,0]',
                                  '[4e10,"r",null,null,null,"a",true,200,null,0,0,0,null,0]',
                                  '[true,"r",null,null,null,"a",true,200,null,0,0,0,null,0]',
                                  '[1,"r",null,null,null,"a",true,200,null,0,0,NaN,null,0]',
                                  '[1,"r",null,null,null,"a",true,200,null,0,0,0,Infinity,0]',
                                  '[1,"r",null,null,null,"a",true,200,null,Infinity,0,0,null,0]'])
def test_anything_else_is_not_a_record(text: str) -> None:
    with pytest.raises(ValueError):
        UsageRecord.from_json(text)


def rec(when: float, *, key: str | None = "alice", account: str | None = "acct-1", model: str = "claude-sonnet-4-5",
        status: int = 200, error: str | None = None, tokens: int = 10, ttfb: float | None = 0.1) -> UsageRecord:
    return UsageRecord(time=when, request_id="r", key=key, account=account, model=model, dialect="anthropic",
                       stream=True, status=status, error=error, input_tokens=tokens, output_tokens=tokens * 3,
                       credits=0.5, ttfb=ttfb, duration=2.0)


def test_totals_per_key_count_requests_errors_tokens_and_credits() -> None:
    day = NOW
    rows = [
        rec(day, tokens=10),
        rec(day + 1, tokens=20, status=429, error="rate_limit_error", ttfb=None),
        rec(day + 2, tokens=5, status=200, error="stream_interrupted"),  # broke after it started
        rec(day + 3, key="bob", tokens=1),
        rec(day + 4, key=None, account=None, status=401, error="authentication_error", tokens=0, ttfb=None),
    ]
    totals = {t.group: t for t in summarize_usage(rows, by=("key",))}
    assert list(totals) == [("-",), ("alice",), ("bob",)]
    alice = totals[("alice",)]
    assert (alice.requests, alice.errors, alice.input_tokens, alice.output_tokens) == (3, 2, 35, 105)
    assert alice.credits == 1.5
    assert alice.mean_ttfb == pytest.approx(0.1)  # the answer without a first byte is not counted
    assert alice.mean_duration == 2.0
    assert (alice.first, alice.last) == (day, day + 2)
    assert totals[("-",)].mean_ttfb is None


def test_totals_by_several_fields_and_by_none() -> None:
    rows = [rec(NOW), rec(NOW + 86400, model="claude-haiku-4-5"), rec(NOW + 86400, account="acct-2")]
    by_day_model = [(t.group, t.requests) for t in summarize_usage(rows, by=("day", "model"))]
    assert by_day_model == [
        (("2025-06-15", "claude-sonnet-4-5"), 1),
        (("2025-06-16", "claude-haiku-4-5"), 1),
        (("2025-06-16", "claude-sonnet-4-5"), 1),
    ]
    assert [(t.group, t.requests) for t in summarize_usage(rows, by=("account",))] == [(("acct-1",), 2), (("acct-2",), 1)]
    (grand,) = summarize_usage(rows, by=())
    assert grand.group == () and grand.requests == 3
    assert summarize_usage([], by=("key",)) == []
    with pytest.raises(ValueError, match="cannot be grouped by password"):
        summarize_usage(rows, by=("password",))


def test_days_are_utc() -> None:
    assert usage_day(0.0) == "1970-01-01"
    assert usage_day(NOW) == "2025-06-15"
    assert usage_day(datetime(2025, 6, 15, 23, 59, 59, tzinfo=timezone.utc).timestamp()) == "2025-06-15"


def test_retention_cutoff_is_days_back() -> None:
    assert retention_cutoff(NOW, 30) == NOW - 30 * 86400
    assert retention_cutoff(NOW, 0.5) == NOW - 43200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", NOW - 5400),
        ("24h", NOW - 86400),
        ("7d", NOW - 7 * 86400),
        ("7D", NOW - 7 * 86400),
        ("2w", NOW - 14 * 86400),
        ("30s", NOW - 30),
        ("1.5h", NOW - 5400),
        ("today", datetime(2025, 6, 15, tzinfo=timezone.utc).timestamp()),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp()),
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=timezone.utc).timestamp()),
        ("2025-06-01T12:00:00", datetime(2025, 6, 1, 12, tzinfo=timezone.utc).timestamp()),
        ("2025-06-01T12:00:00+02:00", datetime(2025, 6, 1, 10, tzinfo=timezone.utc).timestamp()),
    ],
)
def test_since_is_a_duration_back_a_day_or_a_time(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "7x", "-3d", "2025-13-01", "soon"])
def test_since_refuses_anything_else_and_says_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="use a duration such as 24h"):
        parse_since(text, NOW)


def test_labels_are_clipped_and_printable() -> None:
    assert clip_label(None) is None
    assert clip_label("claude-sonnet-4-5") == "claude-sonnet-4-5"
    assert clip_label("a" * 500) == "a" * 120
    assert clip_label("bad\nname\x00") == "bad?name?"
