"""Client keys in the state stores: one contract for memory, SQLite and Redis (records, counters
shared between processes, atomic admission under concurrency)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from adapters.runtime.stores import StateStore
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from kiro_protocol import ClientKey, KeyLimits, make_client_key
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY, MONTH = "2026-01-01", "2026-01"


def _key(name: str, rpm: int = 0) -> ClientKey:
    record, _secret = make_client_key(name, random_bytes=bytes(range(32)), now=NOW, limits=KeyLimits(rpm=rpm))
    return record


def test_keys_are_added_once_listed_by_name_disabled_and_removed(store: StateStore) -> None:
    bob, alice = _key("bob", rpm=5), _key("alice")
    assert store.add_key(bob)
    assert store.add_key(alice)
    assert not store.add_key(_key("bob"))  # the name is taken: the first record stays
    assert store.list_keys() == [alice, bob]
    assert store.set_key_disabled("bob", True)
    assert [k.disabled for k in store.list_keys()] == [False, True]
    assert store.set_key_disabled("bob", False)
    assert not store.list_keys()[1].disabled
    assert not store.set_key_disabled("carol", True)
    assert store.remove_key("bob")
    assert not store.remove_key("bob")
    assert store.list_keys() == [alice]


def test_a_record_holds_the_digest_never_the_key(store: StateStore) -> None:
    record, secret = make_client_key("bob", random_bytes=bytes(range(32)), now=NOW)
    store.add_key(record)
    (stored,) = store.list_keys()
    assert secret not in stored.to_json()
    assert stored.digest == record.digest and stored.hint == secret[:8]


def test_the_rate_window_slides_and_refunds_leave_it(store: StateStore) -> None:
    counts = [store.acquire_key_slot("k", f"t{i}", now=NOW + i, window=60, hold=600, day=DAY, month=MONTH) for i in range(3)]
    assert [c.requests_in_window for c in counts] == [1, 2, 3]
    assert [c.oldest_in_window for c in counts] == [NOW, NOW, NOW]
    store.release_key_slot("k", "t2", refund=True)  # refused: not counted in the window
    later = store.acquire_key_slot("k", "t3", now=NOW + 60.5, window=60, hold=600, day=DAY, month=MONTH)
    # t0 (at NOW) left the window; t1 (NOW + 1) is the oldest left.
    assert later.requests_in_window == 2
    assert later.oldest_in_window == NOW + 1


def test_concurrency_slots_are_freed_on_release_and_lapse_after_their_hold(store: StateStore) -> None:
    a = store.acquire_key_slot("k", "a", now=NOW, window=60, hold=5, day=DAY, month=MONTH)
    b = store.acquire_key_slot("k", "b", now=NOW, window=60, hold=5, day=DAY, month=MONTH)
    assert (a.in_flight, b.in_flight) == (1, 2)
    store.release_key_slot("k", "a", refund=False)
    c = store.acquire_key_slot("k", "c", now=NOW + 1, window=60, hold=5, day=DAY, month=MONTH)
    assert c.in_flight == 2  # b and c
    assert c.requests_in_window == 3  # a released without a refund still counts against the rate
    d = store.acquire_key_slot("k", "d", now=NOW + 5.5, window=60, hold=5, day=DAY, month=MONTH)
    assert d.in_flight == 2  # b's hold lapsed (a crashed replica frees its slots); c and d


def test_token_counters_per_day_and_month(store: StateStore) -> None:
    store.add_key_tokens("k", 100, day=DAY, month=MONTH)
    store.add_key_tokens("k", 50, day=DAY, month=MONTH)
    assert store.key_tokens("k", day=DAY, month=MONTH) == (150, 150)
    store.add_key_tokens("k", 7, day="2026-01-02", month=MONTH)
    assert store.key_tokens("k", day="2026-01-02", month=MONTH) == (7, 157)
    counts = store.acquire_key_slot("k", "t", now=NOW + 86400, window=60, hold=60, day="2026-01-02", month=MONTH)
    assert (counts.tokens_today, counts.tokens_this_month) == (7, 157)
    assert store.key_tokens("other", day=DAY, month=MONTH) == (0, 0)


def test_removing_a_key_forgets_its_counters(store: StateStore) -> None:
    store.add_key(_key("k"))
    store.add_key_tokens("k", 10, day=DAY, month=MONTH)
    store.acquire_key_slot("k", "t", now=NOW, window=60, hold=60, day=DAY, month=MONTH)
    store.remove_key("k")
    store.add_key(_key("k"))  # the name again: a fresh start
    counts = store.acquire_key_slot("k", "u", now=NOW, window=60, hold=60, day=DAY, month=MONTH)
    assert (counts.requests_in_window, counts.in_flight, counts.tokens_today) == (1, 1, 0)


def test_acquire_is_atomic_under_concurrency(store: StateStore) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def grab(worker: int) -> None:
        for i in range(10):
            c = store.acquire_key_slot("k", f"{worker}-{i}", now=NOW, window=60, hold=60, day=DAY, month=MONTH)
            with lock:
                seen.append(c.in_flight)

    threads = [threading.Thread(target=grab, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 41))  # every request saw a distinct count


def test_a_sqlite_file_is_shared_between_two_stores(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    server, cli = SQLiteStore(path), SQLiteStore(path)
    try:
        cli.add_key(_key("bob"))
        assert [k.name for k in server.list_keys()] == ["bob"]
        server.acquire_key_slot("bob", "a", now=NOW, window=60, hold=60, day=DAY, month=MONTH)
        assert cli.acquire_key_slot("bob", "b", now=NOW, window=60, hold=60, day=DAY, month=MONTH).in_flight == 2
    finally:
        server.close()
        cli.close()
