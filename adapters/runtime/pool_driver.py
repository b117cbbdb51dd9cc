"""The async executor of the pool's decisions (``Exchange`` and ``AccountCheck``).

The core decides; this module does the IO each decision names: read and update the state
store (synchronous stores, run in a worker thread), sleep, send refresh and usage calls through
the upstream client, and feed the answers back. ``SendUpstream`` / ``StartStream`` are not here:
they belong to the service, which owns the client response.

It also keeps what only this process knows: the upstream calls in flight per account (the core
caps them, ``PoolSettings.max_connections_per_account``) and the line of requests waiting for an
account (``Wait.line``), in arrival order. Both are per process: replicas sharing a store each
keep their own line and their own count (docs/accounts.md, Waiting for an account).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from kiro_protocol import (
    AccountCheck,
    AccountConfig,
    AccountState,
    AcquireLease,
    checks_due,
    CheckModels,
    CheckUsage,
    Decision,
    Done,
    HttpResponse,
    LoadState,
    Persist,
    PoolSettings,
    Refresh,
    Retry,
    unavailable_reason,
    Wait,
)

from .ids import random_uuid
from .stores import StateStore, StoreUnavailable, apply_persist
from .state_cipher import StateKeyError
from .stores.memory_store import MemoryStore
from .stores.sqlite_store import SQLiteStore
from .upstream import SMALL_CALL_TIMEOUT, UpstreamClient, UpstreamConnectionError

__all__ = ["PoolDriver", "Machine"]

log = logging.getLogger("kiro2api.pool")

#: Pause between attempts of the state writer while the store is unavailable (seconds).
STORE_RETRY_INTERVAL = 0.5

T = TypeVar("T")

# How often a request waiting in line looks whether a slot freed or the line moved.
_LINE_NAP = 0.05
#: Store calls running in worker threads at once (the rest wait their turn on the event loop).
_STORE_THREADS = 4


class Machine(Protocol):
    """The feed methods shared by ``ModelCall`` and ``AccountCheck``."""

    def next_decision(self, now: float) -> Decision: ...

    def state_loaded(
        self, states: dict[str, AccountState], now: float, in_flight: Mapping[str, int] | None = None
    ) -> None: ...

    def lease_result(self, acquired: bool, now: float) -> None: ...

    def waited(self, now: float) -> None: ...

    def refresh_answered(self, response: HttpResponse, now: float) -> None: ...

    def refresh_failed(self, message: str, now: float) -> None: ...


class PoolDriver:
    """Executes pool decisions against a store and the upstream client.

    Args:
        accounts: the configured accounts.
        settings: the pool settings.
        store: the state store (``open_store(KIRO_STATE)``).
        upstream: the upstream client (refresh and usage calls use the account's own pool).
        clock: wall-clock seconds (token expiry is absolute time).
    """

    def __init__(
        self,
        *,
        accounts: Sequence[AccountConfig],
        settings: PoolSettings,
        store: StateStore,
        upstream: UpstreamClient,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = random_uuid,
        random_float: Callable[[], float] = random.random,
    ) -> None:
        self.accounts = tuple(accounts)
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.new_id = new_id
        self.random = random_float
        # The memory store never blocks: a worker-thread hop would cost more than the call.
        # SQLite (WAL) reads take microseconds and never wait for a writer, so they run inline
        # too; a thread hop costs a GIL hand-over (up to the 5 ms switch interval under load).
        self._inline = isinstance(store, MemoryStore)
        self._inline_reads = self._inline or isinstance(store, SQLiteStore)
        send, receive = anyio.create_memory_object_stream[Persist](max_buffer_size=math.inf)
        self._persist_send, self._persist_receive = send, receive
        self._writer_running = False
        # Writes queued / applied so far: a read waits for the writes queued before it.
        self._queued = 0
        self._applied = 0
        self._applied_changed = anyio.Event()
        #: The state changes queued for the writer and not stored yet, per account, in order,
        #: with their place in the queue. Reads show them over the store's copy: without them,
        #: every request reading while the writer lagged took the same least recently used
        #: account (a cold burst of 400 on five accounts served 1, 48, 351, 0 and 0), where the
        #: memory store (written at once) spread it evenly.
        self._unstored: dict[str, list[tuple[int, Persist]]] = {}
        #: Per account, the last state shown that way: (the store's copy, the queue places of
        #: the changes applied over it, the result).
        self._overlaid: dict[str, tuple[AccountState | None, tuple[int, ...], AccountState]] = {}
        #: Set while the writer holds writes the store refused as unavailable (it retries them).
        self._store_fault: StoreUnavailable | None = None
        self._closing = False
        #: Upstream calls in flight per account id (generate calls, opened by the runner).
        self._in_flight: dict[str, int] = {}
        #: Machines waiting for an account, in arrival order (``Wait.line``).
        self._line: list[object] = []
        #: Bumped when a slot frees or the line moves: waiters in line then look again.
        self._line_moves = 0
        # The synchronous twin runs requests in threads.
        self._counts_lock = threading.Lock()
        #: Worker threads for store calls, at most: a cold burst's lease calls took all 40 of
        #: anyio's default limiter (one SQLite connection serves one at a time anyway).
        self._store_threads = anyio.CapacityLimiter(_STORE_THREADS)

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        if self._inline:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._store_threads)

    async def _load(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        try:
            if self._inline_reads:
                states = self.store.load_many(account_ids)
            else:
                states = await anyio.to_thread.run_sync(self.store.load_many, account_ids, limiter=self._store_threads)
        except StateKeyError as exc:
            # A record sealed since start-up with a key this process lacks (replicas sharing a
            # store with different KIRO_STATE_KEY values): one clear line and the store's 503,
            # not a traceback and a 500. The message names settings, never a key.
            raise StoreUnavailable(f"the state store cannot be read: {exc}") from None
        return self._with_unstored(states, account_ids)

    def _with_unstored(self, states: dict[str, AccountState], account_ids: Sequence[str]) -> dict[str, AccountState]:
        """``states`` as this process wrote them: the queued changes applied over the store's copy.

        A change the writer stored just before this read may be applied a second time: only
        idempotent ones are kept here (``AccountUpdate.idempotent``), and this copy is never written.
        """
        if not self._unstored:
            return states
        with self._counts_lock:
            pending = {i: tuple(self._unstored[i]) for i in account_ids if i in self._unstored}
        for account_id, updates in pending.items():
            base = states.get(account_id)
            places = tuple(place for place, _ in updates)
            last = self._overlaid.get(account_id)
            if last is not None and last[0] is base and last[1] == places:
                # The same stored state under the same queued changes: the same result, shared
                # (each request holds the states it loaded while it streams).
                states[account_id] = last[2]
                continue
            state = AccountState() if base is None else base
            for _, persist in updates:
                assert persist.update is not None
                state = persist.update.apply(state)
            self._overlaid[account_id] = (base, places, state)
            states[account_id] = state
        return states

    async def execute(self, decision: Decision, machine: Machine) -> bool:
        """Carry out ``decision`` if it is one of the shared kinds; False if it is not."""
        if isinstance(decision, LoadState):
            await self._written()
            states = await self._load(decision.account_ids)
            machine.state_loaded(states, self.clock(), self._in_flight_for(machine))
        elif isinstance(decision, AcquireLease):
            await self._written()
            acquired = await self._store(self.store.try_lease, decision.account_id, decision.owner, decision.ttl)
            machine.lease_result(acquired, self.clock())
        elif isinstance(decision, Wait):
            if decision.line:
                await self._wait_in_line(machine, decision.seconds)
            else:
                await anyio.sleep(decision.seconds)
            machine.waited(self.clock())
        elif isinstance(decision, Refresh):
            try:
                response = await self.upstream.send(
                    decision.request, account=decision.account.account_id, timeout=SMALL_CALL_TIMEOUT
                )
            except UpstreamConnectionError as exc:
                log.warning("token refresh of account %s failed: %s", decision.account.label, exc.failure.message)
                machine.refresh_failed(exc.failure.message, self.clock())
            else:
                if response.status != 200:
                    log.warning("token refresh of account %s answered HTTP %d", decision.account.label, response.status)
                machine.refresh_answered(response, self.clock())
        elif isinstance(decision, Persist):
            await self.persist(decision)
        elif isinstance(decision, Retry):
            log.info("account %s: %s; trying %s", decision.account.label, decision.reason,
                     "it again" if decision.same_account else "another account")
        else:
            return False
        return True

    def _in_flight_for(self, machine: object) -> Mapping[str, int] | None:
        """The in-flight counts ``machine`` is shown: each request ahead of it in line counts as
        one more call on every account, so a freed slot goes to the longest waiter."""
        with self._counts_lock:
            ahead = self._line.index(machine) if machine in self._line else len(self._line)
            if not ahead:
                return dict(self._in_flight) if self._in_flight else None
            return {a.account_id: self._in_flight.get(a.account_id, 0) + ahead for a in self.accounts}

    async def _wait_in_line(self, machine: object, seconds: float) -> None:
        with self._counts_lock:
            if machine not in self._line:
                self._line.append(machine)
        # Short naps rather than an event with a timeout: the synchronous twin has no
        # cancellable timed wait, and a waiter must notice a freed slot soon.
        moves = self._line_moves
        deadline = anyio.current_time() + seconds
        while self._line_moves == moves:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return
            await anyio.sleep(min(remaining, _LINE_NAP))

    def leave_line(self, machine: object) -> None:
        """``machine`` stopped waiting for an account (it sends, answered, or its client left)."""
        with self._counts_lock:
            if machine in self._line:
                self._line.remove(machine)
                self._line_moves += 1

    @property
    def open_calls(self) -> int:
        """Upstream generate calls in flight now, on every account (a metrics gauge)."""
        return sum(self._in_flight.values())

    @property
    def waiting(self) -> int:
        """Requests waiting in line for an account now (a metrics gauge)."""
        return len(self._line)

    def call_opened(self, account_id: str) -> None:
        """An upstream generate call of ``account_id`` is in flight."""
        with self._counts_lock:
            self._in_flight[account_id] = self._in_flight.get(account_id, 0) + 1

    def call_closed(self, account_id: str) -> None:
        """That call is over: its slot is free."""
        with self._counts_lock:
            left = self._in_flight.get(account_id, 0) - 1
            if left > 0:
                self._in_flight[account_id] = left
            else:
                self._in_flight.pop(account_id, None)
            if self._line:
                self._line_moves += 1

    async def persist(self, decision: Persist) -> None:
        """Apply a ``Persist``: queued for the writer task when it runs, else now (shielded).

        A ``Persist`` needs no answer and the machine already applied it to its own copy, so a
        request does not wait for the store's write (a SQLite commit sits on no client's path).
        Queued writes are applied in order by one task.
        """
        if self._inline:
            # The memory store never blocks (and so never queues): write now.
            apply_persist(self.store, decision)
            return
        if self._writer_running:
            self._queued += 1
            if decision.update is not None and decision.update.idempotent:
                with self._counts_lock:
                    self._unstored.setdefault(decision.account_id, []).append((self._queued, decision))
            self._persist_send.send_nowait(decision)
            return
        with anyio.CancelScope(shield=True):
            await self._store(apply_persist, self.store, decision)

    def _apply_all(self, decisions: Sequence[Persist]) -> list[Persist]:
        """Apply ``decisions`` in order, a step at a time; the steps left when the store became
        unavailable (kept for the next attempt: no state change or counter is lost, and none is
        applied twice)."""
        steps = [step for decision in decisions for step in _steps(decision)]
        for index, step in enumerate(steps):
            try:
                apply_persist(self.store, step)
            except StoreUnavailable:
                return steps[index:]
            except Exception:
                log.exception("could not store the state of account %s", step.account_id)
        return []

    async def run_persist_writer(self) -> None:
        """Apply queued ``Persist`` decisions in order until ``stop_persist_writer()`` and the queue is empty."""
        self._writer_running = True
        try:
            async with self._persist_receive:
                async for decision in self._persist_receive:
                    # Everything queued meanwhile goes in the same store call: under load one
                    # write per event-loop turn fell behind, and every read waits for the queue.
                    batch = [decision]
                    with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                        while True:
                            batch.append(self._persist_receive.receive_nowait())
                    with anyio.CancelScope(shield=True):
                        await self._write_until_stored(batch)
                        self._applied += len(batch)
                        self._forget_stored()
                        changed, self._applied_changed = self._applied_changed, anyio.Event()
                        changed.set()
        finally:
            self._writer_running = False

    def _forget_stored(self) -> None:
        """Drop the queued changes the writer is done with (stored, or failed and logged)."""
        if not self._unstored:
            return
        applied = self._applied
        with self._counts_lock:
            for account_id in list(self._unstored):
                left = [entry for entry in self._unstored[account_id] if entry[0] > applied]
                if left:
                    self._unstored[account_id] = left
                else:
                    del self._unstored[account_id]

    async def _write_until_stored(self, batch: list[Persist]) -> None:
        """Write ``batch``; while the store is unavailable, keep what is left and try again
        (requests meanwhile get 503 from ``_written``), until it is back or the service stops."""
        left = await self._store(self._apply_all, batch)
        while left:
            if self._store_fault is None:
                self._store_fault = StoreUnavailable("the state store is unavailable")
                # Wake the reads waiting for these writes: they answer 503 now.
                changed, self._applied_changed = self._applied_changed, anyio.Event()
                changed.set()
                log.warning("state store unavailable: %d state write(s) held, retrying every %.1f s",
                            len(left), STORE_RETRY_INTERVAL)
            if self._closing:
                log.warning("state store unavailable at shutdown: %d state write(s) were not stored", len(left))
                break
            await anyio.sleep(STORE_RETRY_INTERVAL)
            # Writes queued meanwhile follow the held ones, in order.
            with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                while True:
                    queued = self._persist_receive.receive_nowait()
                    left.append(queued)
                    batch.append(queued)
            left = await self._store(self._apply_all, left)
        if self._store_fault is not None:
            self._store_fault = None
            if not left:
                log.warning("state store available again: the held state writes are stored")

    async def _written(self) -> None:
        """Wait until every write queued so far is in the store (a machine reads what it wrote)."""
        target = self._queued
        while self._writer_running and self._applied < target:
            if self._store_fault is not None:
                # The writes this read must see are held by an outage: answer now (503), not
                # once the store is back.
                raise self._store_fault
            await self._applied_changed.wait()

    def stop_persist_writer(self) -> None:
        """Let the writer finish the queued writes and return (held ones get one more try)."""
        self._closing = True
        self._persist_send.close()

    async def run_check(self, account: AccountConfig) -> None:
        """One background ``AccountCheck`` (refresh ahead, usage limits) of ``account``."""
        check = AccountCheck(account=account, settings=self.settings, new_id=self.new_id, random=self.random)
        while True:
            decision = check.next_decision(self.clock())
            if isinstance(decision, Done):
                return
            if isinstance(decision, (CheckUsage, CheckModels)):
                usage = isinstance(decision, CheckUsage)
                try:
                    response = await self.upstream.send(
                        decision.request, account=account.account_id, timeout=SMALL_CALL_TIMEOUT
                    )
                except UpstreamConnectionError as exc:
                    (check.usage_failed if usage else check.models_failed)(exc.failure.message, self.clock())
                else:
                    (check.usage_answered if usage else check.models_answered)(response, self.clock())
                continue
            if not await self.execute(decision, check):
                raise RuntimeError(f"AccountCheck asked for an unexpected {type(decision).__name__}")

    async def run_background_checks(self, *, interval: float = 5.0) -> None:
        """Forever: every ``interval`` seconds, check the accounts that are due, one at a time."""
        while True:
            await anyio.sleep(interval)
            try:
                ids = tuple(a.account_id for a in self.accounts)
                states = await self._load(ids)
                for account in checks_due(self.accounts, states, self.clock(), self.settings):
                    await self.run_check(account)
            except StoreUnavailable as exc:
                log.warning("background account checks skipped: %s", exc)
            except Exception:
                log.exception("background account check failed")

    async def account_counts(self) -> dict[str, int]:
        """How many accounts are configured, usable now, out for a while, or disabled (for /health)."""
        ids = tuple(a.account_id for a in self.accounts)
        states = await self._load(ids)
        now = self.clock()
        counts = {"configured": len(self.accounts), "usable": 0, "unavailable": 0, "disabled": 0}
        for account in self.accounts:
            state = states.get(account.account_id, AccountState())
            if account.disabled or state.disabled_reason:
                counts["disabled"] += 1
            elif unavailable_reason(account, state, now) is None:
                counts["usable"] += 1
            else:
                counts["unavailable"] += 1
        return counts


def _steps(decision: Persist) -> list[Persist]:
    """``decision`` as one ``Persist`` per store call, so a write cut short by an outage resumes
    at the step that failed (an update applied twice could count a throttle twice)."""
    parts = [
        dataclasses.replace(decision, counters=(), release_lease=None) if decision.update is not None else None,
        dataclasses.replace(decision, update=None, release_lease=None) if decision.counters else None,
        dataclasses.replace(decision, update=None, counters=()) if decision.release_lease is not None else None,
    ]
    steps = [part for part in parts if part is not None]
    return steps if len(steps) > 1 else [decision]
