"""Usage records in the state stores: one contract for memory, SQLite and Redis (time ranges,
newest first, a key's records, retention), kept across a restart and shared by replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from adapters.runtime.stores import StateStore, open_store
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from kiro_protocol import UsageRecord, summarize_usage
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)


def record(when: float, *, key: str | None = "alice", status: int = 200, tokens: int = 10, **extra: object) -> UsageRecord:
    fields: dict[str, object] = dict(
        time=when, request_id=f"req_{when}", key=key, account="acct-1", model="claude-sonnet-4-5",
        dialect="anthropic", stream=True, status=status, input_tokens=tokens, output_tokens=2 * tokens,
        credits=0.25, ttfb=0.05, duration=0.5,
    )
    fields.update(extra)
    return UsageRecord(**fields)  # type: ignore[arg-type]


def test_records_come_back_whole_newest_first_within_the_range(store: StateStore) -> None:
    late, early, middle = record(300.5, error="stream_interrupted"), record(100.0, key=None, ttfb=None), record(200.25)
    store.add_usage([late, early])
    store.add_usage([middle])  # an earlier record written after a later one still sorts by time
    store.add_usage([])
    assert store.usage() == [late, middle, early]
    assert store.usage(since=100.0, until=300.5) == [middle, early]  # since inclusive, until exclusive
    assert store.usage(since=150.0) == [late, middle]
    assert store.usage(limit=1) == [late]
    assert store.usage(key="alice") == [late, middle]
    assert store.usage(key="nobody") == []


def test_prune_drops_what_is_past_retention_and_says_how_much(store: StateStore) -> None:
    store.add_usage([record(float(t)) for t in range(10)])
    assert store.prune_usage(4.0) == 4
    assert [r.time for r in store.usage()] == [9.0, 8.0, 7.0, 6.0, 5.0, 4.0]
    assert store.prune_usage(4.0) == 0


def test_many_records_sum_the_same_in_every_store(store: StateStore) -> None:
    records = [record(1000.0 + i, key=("alice", "bob", None)[i % 3], tokens=i) for i in range(300)]
    store.add_usage(records)
    totals = {t.group: t for t in summarize_usage(store.usage(), by=("key",))}
    assert {g: t.requests for g, t in totals.items()} == {("alice",): 100, ("bob",): 100, ("-",): 100}
    assert totals[("bob",)].input_tokens == sum(range(1, 300, 3))


def test_sqlite_keeps_usage_across_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    first = open_store(url)
    first.add_usage([record(1.0), record(2.0)])
    first.close()
    second = open_store(url)
    try:
        assert [r.time for r in second.usage()] == [2.0, 1.0]
    finally:
        second.close()


def test_replicas_on_one_redis_see_each_others_usage(fresh_redis: str) -> None:
    one, two = RedisStore.from_url(fresh_redis), RedisStore.from_url(fresh_redis)
    try:
        one.add_usage([record(1.0, key="alice")])
        two.add_usage([record(2.0, key="bob")])
        assert [r.key for r in one.usage()] == ["bob", "alice"]
        assert two.prune_usage(1.5) == 1
        assert [r.key for r in one.usage()] == ["bob"]
    finally:
        one.close()
        two.close()
