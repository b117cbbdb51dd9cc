"""Store faults: each backend reports an unusable store as ``StoreUnavailable`` (and nothing
else as it), and the pool driver holds the writes the store refused until it is back: none lost,
none applied twice, and reads waiting for them answer at once instead of hanging."""

from __future__ import annotations

import dataclasses
import socket
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from adapters.runtime import pool_driver
from adapters.runtime.pool_driver import PoolDriver
from adapters.runtime.stores import StoreUnavailable
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from adapters.runtime.upstream import UpstreamClient
from kiro_protocol import AccountState, Endpoints, LoadState, Persist, PoolSettings
from kiro_protocol.pool._updates import AccountUpdate

SETTINGS = PoolSettings(endpoints=Endpoints(api_base="http://127.0.0.1:9", social_refresh="http://127.0.0.1:9/r", idc_refresh="http://127.0.0.1:9/t"))


def test_a_locked_sqlite_file_is_unavailable_for_writes_and_still_readable(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(str(path))
    store.update("a", lambda s: dataclasses.replace(s, throttle_level=1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.update("a", lambda s: dataclasses.replace(s, throttle_level=2))
        assert "SQLite" in str(caught.value) and str(path) not in str(caught.value)
        # WAL: reads go on, on their own connection (some run on the event loop).
        assert store.load_many(["a"])["a"].throttle_level == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.update("a", lambda s: dataclasses.replace(s, throttle_level=2)).throttle_level == 2
    store.close()


def test_an_sql_error_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.db"))

    def broken(db: sqlite3.Connection) -> None:
        db.execute("SELECT nothing FROM nowhere")

    with pytest.raises(sqlite3.OperationalError):
        store._write(broken)
    store.close()


def test_an_unreachable_redis_is_unavailable_without_its_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    store = RedisStore.from_url(f"redis://:hunter2-password@127.0.0.1:{port}/0")
    for call in (lambda: store.load_many(["a"]), lambda: store.add_counters("a", [("requests", 1.0)]), store.admin_accounts):
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert "Redis" in str(caught.value) and "hunter2" not in str(caught.value)
    store.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bump(AccountUpdate):
    """Not idempotent on purpose: applied twice, it would show."""

    def apply(self, state: AccountState) -> AccountState:
        return dataclasses.replace(state, throttle_level=state.throttle_level + 1)


class Away(SQLiteStore):
    """SQLite that is 'away' while ``down`` is set; ``fail_counters_once`` cuts one Persist in
    the middle (its update landed, its counters did not)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.down = False
        self.fail_counters_once = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the test store is unavailable")

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        self._check()
        return super().update(account_id, change)

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        self._check()
        if self.fail_counters_once:
            self.fail_counters_once = False
            self.down = True
            raise StoreUnavailable("the test store went away mid-write")
        super().add_counters(account_id, counters)

    def load_many(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        self._check()
        return super().load_many(list(account_ids))


class Reader:
    def __init__(self) -> None:
        self.states: dict[str, AccountState] | None = None

    def state_loaded(self, states: dict[str, AccountState], now: float, in_flight: object = None) -> None:
        self.states = states


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writes_refused_by_an_outage_are_held_and_land_once_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.setattr(pool_driver, "STORE_RETRY_INTERVAL", 0.01)
    store = Away(str(tmp_path / "state.db"))
    driver = PoolDriver(accounts=(), settings=SETTINGS, store=store, upstream=UpstreamClient())
    with anyio.fail_after(30):  # hang guard
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver.run_persist_writer)
            await anyio.sleep(0)
            store.fail_counters_once = True  # the first write is cut after its update
            for _ in range(3):
                await driver.persist(Persist(account_id="a", update=Bump(), counters=(("requests", 1.0),)))
            # A read waiting for the held writes answers now (the request gets a 503).
            with pytest.raises(StoreUnavailable):
                await driver.execute(LoadState(account_ids=("a",)), Reader())  # type: ignore[arg-type]
            await driver.persist(Persist(account_id="a", update=Bump(), counters=(("requests", 1.0),)))
            store.down = False
            reader = Reader()
            while True:
                try:
                    await driver.execute(LoadState(account_ids=("a",)), reader)  # type: ignore[arg-type]
                    break
                except StoreUnavailable:
                    await anyio.sleep(0.01)
            assert reader.states is not None and reader.states["a"].throttle_level == 4
            assert store.counters("a") == {"requests": 4.0}
            driver.stop_persist_writer()
    store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writes_still_held_at_shutdown_are_given_up_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    monkeypatch.setattr(pool_driver, "STORE_RETRY_INTERVAL", 0.01)
    store = Away(str(tmp_path / "state.db"))
    store.down = True
    driver = PoolDriver(accounts=(), settings=SETTINGS, store=store, upstream=UpstreamClient())
    with anyio.fail_after(30):  # hang guard: shutdown must not wait for the store forever
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver.run_persist_writer)
            await anyio.sleep(0)
            await driver.persist(Persist(account_id="a", counters=(("requests", 1.0),)))
            await anyio.sleep(0.05)
            driver.stop_persist_writer()
    assert "were not stored" in caplog.text
    store.close()
