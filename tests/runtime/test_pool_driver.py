"""The pool driver's store writes: ordered, never waited for by the request, read back in order."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import anyio
import pytest

from adapters.runtime.pool_driver import PoolDriver
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from adapters.runtime.ids import random_uuid
from adapters.runtime.upstream import UpstreamClient
from kiro_protocol import AccountState, AcquireLease, Endpoints, LoadState, Persist, PoolSettings
from kiro_protocol.pool import Exchange, Strategy
from tests.exchange_runner import make_accounts

pytestmark = pytest.mark.anyio

SETTINGS = PoolSettings(endpoints=Endpoints(api_base="http://127.0.0.1:9", social_refresh="http://127.0.0.1:9/r", idc_refresh="http://127.0.0.1:9/t"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowStore(SQLiteStore):
    """SQLite whose counter writes take a while and are recorded in the order they land."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.landed: list[float] = []
        self.threads: set[int] = set()

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        pairs = tuple(counters)
        time.sleep(0.01)
        self.threads.add(threading.get_ident())
        self.landed.append(pairs[0][1])
        super().add_counters(account_id, pairs)


class Reader:
    """A machine that only records what a ``LoadState`` read back."""

    def __init__(self) -> None:
        self.states: dict[str, AccountState] | None = None

    def state_loaded(
        self, states: dict[str, AccountState], now: float, in_flight: Mapping[str, int] | None = None
    ) -> None:
        self.states = states

    def next_decision(self, now: float) -> object:  # pragma: no cover - not driven here
        raise AssertionError

    def lease_result(self, acquired: bool, now: float) -> None:  # pragma: no cover
        raise AssertionError

    def refresh_answered(self, response: object, now: float) -> None:  # pragma: no cover
        raise AssertionError

    def refresh_failed(self, message: str, now: float) -> None:  # pragma: no cover
        raise AssertionError


def driver_for(store: SQLiteStore | MemoryStore) -> PoolDriver:
    return PoolDriver(accounts=(), settings=SETTINGS, store=store, upstream=UpstreamClient())


async def test_queued_writes_land_in_order_off_the_request_path(tmp_path: Path) -> None:
    store = SlowStore(str(tmp_path / "state.db"))
    driver = driver_for(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run_persist_writer)
        await anyio.sleep(0)
        t0 = time.monotonic()
        for i in range(1, 41):
            await driver.persist(Persist(account_id="a", counters=(("requests", float(i)),)))
        # 40 writes of 10 ms each: queuing them took no store time at all.
        assert time.monotonic() - t0 < 0.2
        # A read issued now sees every write queued before it.
        await driver.execute(LoadState(account_ids=("a",)), Reader())  # type: ignore[arg-type]
        assert store.landed == [float(i) for i in range(1, 41)]
        assert store.counters("a")["requests"] == sum(range(1, 41))
        assert threading.get_ident() not in store.threads  # SQLite writes run in a worker thread
        driver.stop_persist_writer()
    store.close()


async def test_a_failing_write_is_logged_and_the_rest_still_land(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(SlowStore):
        def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
            pairs = tuple(counters)
            if pairs[0][1] == 2.0:
                raise OSError("disk full")
            super().add_counters(account_id, pairs)

    store = Flaky(str(tmp_path / "state.db"))
    driver = driver_for(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run_persist_writer)
        await anyio.sleep(0)
        for i in (1, 2, 3):
            await driver.persist(Persist(account_id="a", counters=(("requests", float(i)),)))
        await driver.execute(LoadState(account_ids=("a",)), Reader())  # type: ignore[arg-type]
        driver.stop_persist_writer()
    assert store.landed == [1.0, 3.0]
    assert "could not store the state of account a" in caplog.text
    store.close()


async def test_the_memory_store_is_written_at_once() -> None:
    store = MemoryStore()
    driver = driver_for(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run_persist_writer)
        await anyio.sleep(0)
        await driver.persist(Persist(account_id="a", counters=(("requests", 1.0),)))
        # No turn of the event loop in between: nothing was queued.
        assert store.counters("a")["requests"] == 1.0
        driver.stop_persist_writer()


async def _first_pick(driver: PoolDriver, exchange: Exchange) -> str:
    """Drive ``exchange`` through its state read and its pick; the account it asks a lease for."""
    while True:
        decision = exchange.next_decision(time.time())
        if isinstance(decision, AcquireLease):
            return decision.account_id
        assert await driver.execute(decision, exchange), decision


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_a_cold_burst_is_spread_round_robin_whatever_the_store(tmp_path: Path, kind: str) -> None:
    # The soak's cold burst: with SQLite, the requests that read the store while the writer was
    # still storing the others' picks all took the same least recently used account (400 streams
    # on five accounts: 1, 48, 351, 0 and 0). A request must see this process's own picks at once,
    # as with memory://, whether or not the writer has stored them yet.
    accounts = make_accounts(5)
    store: SQLiteStore | MemoryStore = SQLiteStore(str(tmp_path / "state.db")) if kind == "sqlite" else MemoryStore()
    settings = dataclasses.replace(SETTINGS, strategy=Strategy.ROUND_ROBIN)
    driver = PoolDriver(accounts=accounts, settings=settings, store=store, upstream=UpstreamClient())
    exchanges = [
        Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=random_uuid, random=lambda: 0.5)
        for _ in range(10)
    ]
    picks: list[str] = []

    async def one(exchange: Exchange) -> None:
        picks.append(await _first_pick(driver, exchange))

    async with anyio.create_task_group() as tg:
        tg.start_soon(driver.run_persist_writer)
        await anyio.sleep(0)
        with anyio.fail_after(30):  # a hang guard
            async with anyio.create_task_group() as requests:
                for exchange in exchanges:
                    requests.start_soon(one, exchange)
        driver.stop_persist_writer()
    store.close()
    assert Counter(picks) == {a.account_id: 2 for a in accounts}


async def test_queued_changes_over_the_same_stored_state_give_one_shared_state(tmp_path: Path) -> None:
    # Each request holds the states it loaded while it streams: the overlay of the writes still
    # queued is computed once per stored state and queue, not once per request.
    from kiro_protocol.pool import Picked

    store = SQLiteStore(str(tmp_path / "state.db"))
    driver = driver_for(store)
    stored = AccountState(access_token="tok")
    driver._unstored = {"a": [(1, Persist(account_id="a", update=Picked(now=5.0)))]}
    first = driver._with_unstored({"a": stored}, ["a"])["a"]
    assert first.last_used_at == 5.0 and first.access_token == "tok"
    assert driver._with_unstored({"a": stored}, ["a"])["a"] is first
    driver._unstored["a"].append((2, Persist(account_id="a", update=Picked(now=6.0))))
    later = driver._with_unstored({"a": stored}, ["a"])["a"]
    assert later.last_used_at == 6.0
    newer = AccountState(access_token="new")
    assert driver._with_unstored({"a": newer}, ["a"])["a"].access_token == "new"
    assert driver._with_unstored({}, ["a"])["a"] == AccountState(last_used_at=6.0)
    store.close()


async def test_a_record_sealed_with_another_key_is_the_stores_503_not_a_crash(tmp_path: Path) -> None:
    # Replicas sharing a store with different KIRO_STATE_KEY values: a record one of them sealed
    # does not open in the other. The request gets the store's 503 (StoreUnavailable), with a
    # message that names the setting and no key.
    from adapters.runtime.state_cipher import StateCipher, generate_key, parse_state_key
    from adapters.runtime.stores import StoreUnavailable

    mine, theirs = parse_state_key(generate_key()), parse_state_key(generate_key())
    path = str(tmp_path / "state.db")
    SQLiteStore(path, cipher=StateCipher((theirs,))).update("a", lambda _old: AccountState(access_token="tok"))
    driver = driver_for(SQLiteStore(path, cipher=StateCipher((mine,))))
    with pytest.raises(StoreUnavailable) as caught:
        await driver.execute(LoadState(account_ids=("a",)), Reader())  # type: ignore[arg-type]
    assert "KIRO_STATE_KEY" in str(caught.value) and "tok" not in str(caught.value)


async def test_store_calls_use_a_few_worker_threads_however_many_requests_ask(tmp_path: Path) -> None:
    # A cold burst's lease calls took all 40 of anyio's default worker threads; one SQLite
    # connection serves one call at a time, so the rest only waited in threads.
    class Counting(SQLiteStore):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            self.running = 0
            self.most = 0
            self.guard = threading.Lock()

        def try_lease(self, account_id: str, owner: str, ttl: float) -> bool:
            with self.guard:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.01)
            with self.guard:
                self.running -= 1
            return super().try_lease(account_id, owner, ttl)

    class LeaseReader(Reader):
        def lease_result(self, acquired: bool, now: float) -> None:
            pass

    store = Counting(str(tmp_path / "state.db"))
    driver = driver_for(store)
    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(driver.execute, AcquireLease(account_id=f"a{i}", owner="me", ttl=30.0), LeaseReader())  # type: ignore[arg-type]
    assert 1 <= store.most <= 4, store.most
    store.close()
