"""The state stores: one contract for memory, SQLite and Redis; persistence across restarts;
replicas sharing Redis never refresh one account twice."""

from __future__ import annotations

import os
from dataclasses import replace
import stat
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from adapters.runtime.stores import StateStore, StoreConfigurationError, apply_persist, open_store
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from kiro_protocol.pool._credentials import AccountConfig
from kiro_protocol.http._messages import HttpRequest
from kiro_protocol.pool._accounts import AccountState, PoolSettings
from kiro_protocol.pool._decisions import Persist
from kiro_protocol.pool._updates import Throttled
from tests.exchange_runner import Answer, RealClock, Upstream, make_accounts, refresh_ok, run_exchange
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)


def test_states_round_trip_and_unknown_ids_are_absent(store: StateStore) -> None:
    st = AccountState(access_token="tok", expires_at=123.5, refresh_token="rot", remaining_credits=7.25,
                      cooldown_reason="HTTP 429: x", throttle_level=2)
    store.update("a", lambda _old: st)
    assert store.load_many(["a", "b"]) == {"a": st}
    assert store.load_many([]) == {}


def test_an_unchanged_state_loads_as_the_same_object(store: StateStore) -> None:
    # Every request loads every account and holds the states while it streams: shared, not
    # decoded again per request (1,000 held streams kept 11,000 copies of eleven states).
    store.update("a", lambda _old: AccountState(access_token="tok", expires_at=5.0))
    first = store.load_many(["a"])["a"]
    assert store.load_many(["a", "b"])["a"] is first
    store.update("a", lambda old: replace(old, throttle_level=1))
    second = store.load_many(["a"])["a"]
    assert second == AccountState(access_token="tok", expires_at=5.0, throttle_level=1)
    assert store.load_many(["a"])["a"] is second


def _increment(state: AccountState) -> AccountState:
    # A plain read-modify-write: every update must land on the freshest state (a Throttled
    # would not do: a 429 during a running cooldown deliberately keeps its level).
    return replace(state, throttle_level=state.throttle_level + 1)


def test_update_applies_to_the_freshest_state_concurrently(store: StateStore) -> None:

    def bump() -> None:
        for _ in range(20):
            store.update("acct", _increment)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.load_many(["acct"])["acct"].throttle_level == 80


def test_leases_are_exclusive_reentrant_released_and_expire(store: StateStore) -> None:
    assert store.try_lease("a", "one", 0.3)
    assert store.try_lease("a", "one", 0.3)  # the holder may extend
    assert not store.try_lease("a", "two", 0.3)
    assert store.try_lease("b", "two", 0.3)  # per account
    store.release_lease("a", "two")  # not the holder: no effect
    assert not store.try_lease("a", "two", 0.3)
    store.release_lease("a", "one")
    assert store.try_lease("a", "two", 0.3)
    time.sleep(0.4)
    assert store.try_lease("a", "three", 0.3)  # expired: a crashed holder does not block


def test_counters_add_up(store: StateStore) -> None:
    store.add_counters("a", [("requests", 1), ("input_tokens", 100)])
    store.add_counters("a", [("requests", 1), ("credits", 0.25)])
    assert dict(store.counters("a")) == {"requests": 2, "input_tokens": 100, "credits": 0.25}
    assert dict(store.counters("nobody")) == {}


def test_apply_persist_does_all_three(store: StateStore) -> None:
    assert store.try_lease("a", "me", 30)
    apply_persist(store, Persist(account_id="a", update=None, counters=(("failures", 1),), release_lease="me"))
    assert store.counters("a")["failures"] == 1
    assert store.try_lease("a", "other", 30)


def test_sqlite_restart_keeps_rotated_refresh_token_and_cooldown(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "state.db")
    accounts = make_accounts(1)
    clock = RealClock()
    upstream = Upstream(accounts, refresh={0: [refresh_ok("at-1", refresh_token="rotated-" + "z" * 40)]})
    first = SQLiteStore(path)
    run_exchange(accounts, first, upstream, clock)
    first.update(accounts[0].account_id, Throttled(reason="HTTP 429", now=clock(), jitter=1.0,
                                                   settings=PoolSettings()).apply)
    first.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds refresh tokens

    again = open_store(f"sqlite:///{path}")
    st = again.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.refresh_token == "rotated-" + "z" * 40
    assert st.cooldown_until > clock() and st.throttle_level == 1
    again.close()


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    s = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(s, SQLiteStore) and s.path == f"{tmp_path}/x.db"
    s.close()
    for bad in ("", "postgres://x", "sqlite://", "file.db"):
        with pytest.raises(StoreConfigurationError):
            open_store(bad)


class SlowRefreshUpstream(Upstream):
    """Refreshes take a while, so that concurrent requests overlap; counts them thread-safely."""

    lock = threading.Lock()

    def answer(self, kind: str, account: AccountConfig, request: HttpRequest) -> Answer:
        if kind == "refresh":
            time.sleep(0.2)
        with self.lock:
            return super().answer(kind, account, request)


def test_two_pools_sharing_redis_refresh_an_account_once(fresh_redis: str) -> None:
    accounts = make_accounts(1)
    upstream = SlowRefreshUpstream(accounts)
    replicas = [RedisStore.from_url(fresh_redis), RedisStore.from_url(fresh_redis)]
    settings = PoolSettings(lease_poll=0.05)
    errors: list[BaseException] = []
    served: list[int] = []

    def request(store: StateStore) -> None:
        try:
            out = run_exchange(accounts, store, upstream, RealClock(), settings=settings)
            assert out.account is not None
            served.append(out.account.index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(replicas[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert served == [0] * 8
    assert upstream.count("refresh") == 1
    # Both replicas see the one token, and the shared counters add up.
    for replica in replicas:
        st = replica.load_many([accounts[0].account_id])[accounts[0].account_id]
        assert st.access_token == "access-0-0"
    assert replicas[0].counters(accounts[0].account_id)["requests"] == 8
    for r in replicas:
        r.close()


def test_rotated_refresh_token_from_one_replica_is_used_by_the_other(fresh_redis: str) -> None:
    accounts = make_accounts(1)
    clock = RealClock()
    upstream = Upstream(accounts, refresh={0: [refresh_ok("a", refresh_token="rotated-" + "q" * 40, expires_in=40)]})
    one, two = RedisStore.from_url(fresh_redis), RedisStore.from_url(fresh_redis)
    run_exchange(accounts, one, upstream, clock)
    # token lifetime 40 s < min validity + margin: the other replica must refresh, with the new token
    run_exchange(accounts, two, upstream, clock, settings=PoolSettings(min_token_validity=45, refresh_margin=300))
    bodies = [r.body for k, _, r in upstream.sent if k == "refresh"]
    assert len(bodies) == 2 and b"rotated-" + b"q" * 40 in bodies[1]
    one.close()
    two.close()


def test_sqlite_file_shared_by_two_processes_style_handles(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    a, b = SQLiteStore(path), SQLiteStore(path)
    assert a.try_lease("x", "a", 30)
    assert not b.try_lease("x", "b", 30)
    a.update("x", _increment)
    b.update("x", _increment)
    assert a.load_many(["x"])["x"].throttle_level == 2
    a.close()
    b.close()


def test_ensure_redis_server_is_quiet_and_fast_when_present() -> None:
    import subprocess

    script = Path(__file__).parent.parent.parent / "scripts" / "ensure-redis-server"
    started = time.monotonic()
    done = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    assert time.monotonic() - started < 5


def test_sqlite_updates_from_two_processes_all_count(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = str(tmp_path / "procs.db")
    SQLiteStore(path).close()
    code = (
        "import sys\n"
        "from adapters.runtime.stores.sqlite_store import SQLiteStore\n"
        "from dataclasses import replace\n"
        "s = SQLiteStore(sys.argv[1])\n"
        "bump = lambda st: replace(st, throttle_level=st.throttle_level + 1)\n"
        "for _ in range(40):\n"
        "    s.update('x', bump)\n"
        "    s.add_counters('x', [('requests', 1)])\n"
        "s.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, path]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    store = SQLiteStore(path)
    assert store.load_many(["x"])["x"].throttle_level == 80
    assert store.counters("x")["requests"] == 80
    store.close()
