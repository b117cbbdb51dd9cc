"""``KeyRing``: the named client keys of the state store as the front door sees them, and the IO
their limits need (the decisions are the core's: ``front_door``, ``key_admission``).

Keys are read from the store at most once a second, on the request path of the first request
after that second: a ``kiro2api keys add`` on the same ``KIRO_STATE`` opens the gateway within a
second, and an idle server reads nothing. A store that cannot be read keeps the last keys (and
says so in the log) rather than locking every named key out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anyio
import anyio.to_thread

from kiro_protocol import KEY_RATE_WINDOW, ClientKey, KeyCounts, Serve, key_admission, quota_periods

from .stores import StateStore

__all__ = ["KeyRing", "KeySlot", "REFRESH_SECONDS"]

log = logging.getLogger("kiro2api.keys")

#: How old the key list may get before a request reads it again.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class KeySlot:
    """A model request the key's counters hold: released when the request ends."""

    key: ClientKey
    ticket: str
    day: str
    month: str


class KeyRing:
    """The store's client keys, cached for ``REFRESH_SECONDS``, and their counters.

    Args:
        store: the state store the keys live in.
        hold: seconds a request's concurrency slot lasts at most (longer than any request may
            run), so that a crashed replica's slots free themselves.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        hold: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        new_ticket: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._hold = hold
        self._monotonic = monotonic
        self._wall = wall
        self._new_ticket = new_ticket
        self._keys: Mapping[str, ClientKey] = {}
        self._loaded_at: float | None = None
        self._loading = anyio.Lock()
        self._failing = False

    async def keys(self) -> Mapping[str, ClientKey]:
        """The keys by digest (the same object until they are read again)."""
        if self._loaded_at is None or self._monotonic() - self._loaded_at >= REFRESH_SECONDS:
            async with self._loading:
                # Another request may have read them while this one waited.
                if self._loaded_at is None or self._monotonic() - self._loaded_at >= REFRESH_SECONDS:
                    await self._load()
        return self._keys

    async def _load(self) -> None:
        try:
            records = await anyio.to_thread.run_sync(self._store.list_keys)
        except Exception as exc:
            if not self._failing:
                log.warning("cannot read the client keys from the state store (keeping the last ones): %s", type(exc).__name__)
            self._failing = True
        else:
            if self._failing:
                log.warning("client keys readable again")
            self._failing = False
            fresh = {record.digest: record for record in records}
            if fresh != self._keys:
                self._keys = fresh
        # A failed read waits its second too: a dead store is not asked once per request.
        self._loaded_at = self._monotonic()

    async def admit(self, serve: Serve) -> KeySlot | None:
        """Count the request against its key's limits (when ``serve.key_counted``): the slot to
        release when it ends, or None when nothing is counted.

        Raises:
            ProtocolError: the 429 of a limit the request is over (the request is taken back out
                of the counters first).
        """
        key = serve.key
        if key is None or not serve.key_counted:
            return None
        now = self._wall()
        periods = quota_periods(now)
        slot = KeySlot(key=key, ticket=self._new_ticket(), day=periods.day, month=periods.month)
        counts = await anyio.to_thread.run_sync(self._acquire, slot, now)
        refusal = key_admission(key, counts, now)
        if refusal is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._release, slot, True, 0)
            raise refusal
        return slot

    async def release(self, slot: KeySlot, tokens: int) -> None:
        """The request ended having used ``tokens`` (input plus output): free its slot and count
        the tokens against the key's quotas (only a key with a quota is counted)."""
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(self._release, slot, False, tokens)
            except Exception as exc:
                # The slot lapses by itself after its hold; the request itself went well.
                log.warning("cannot release a client key's slot in the state store: %s", type(exc).__name__)

    def _acquire(self, slot: KeySlot, now: float) -> KeyCounts:
        return self._store.acquire_key_slot(
            slot.key.name, slot.ticket, now=now, window=KEY_RATE_WINDOW, hold=self._hold, day=slot.day, month=slot.month
        )

    def _release(self, slot: KeySlot, refund: bool, tokens: int) -> None:
        self._store.release_key_slot(slot.key.name, slot.ticket, refund=refund)
        if tokens > 0 and slot.key.limits.token_quota:
            self._store.add_key_tokens(slot.key.name, tokens, day=slot.day, month=slot.month)
