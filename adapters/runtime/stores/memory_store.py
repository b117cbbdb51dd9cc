"""The in-process store (``memory://``): one lock, plain dicts. Forgets everything on restart."""

from __future__ import annotations

import threading
from collections import deque
import time
from typing import Callable, Iterable, Mapping, Sequence

from kiro_protocol import AccountState, ClientKey, UsageRecord

from .usage_memory import MemoryUsage
from .keys_memory import MemoryKeys

from .admin_memory import MemoryAdmin

__all__ = ["MemoryStore"]


class MemoryStore(MemoryUsage, MemoryKeys, MemoryAdmin):
    """A ``StateStore`` for one process. ``clock`` is injectable for lease tests."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, AccountState] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, dict[str, float]] = {}
        self._admin_accounts: dict[str, str] = {}
        self._audit: deque[str] = deque()
        self._client_keys: dict[str, ClientKey] = {}
        self._key_hits: dict[str, dict[str, float]] = {}
        self._key_holds: dict[str, dict[str, float]] = {}
        self._key_tokens: dict[str, dict[str, int]] = {}
        self._usage: list[UsageRecord] = []

    def load_many(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        with self._lock:
            return {i: self._states[i] for i in account_ids if i in self._states}

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        with self._lock:
            new = change(self._states.get(account_id, AccountState()))
            self._states[account_id] = new
            return new

    def try_lease(self, account_id: str, owner: str, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            holder = self._leases.get(account_id)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self._leases[account_id] = (owner, now + ttl)
            return True

    def release_lease(self, account_id: str, owner: str) -> None:
        with self._lock:
            holder = self._leases.get(account_id)
            if holder is not None and holder[0] == owner:
                del self._leases[account_id]

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        with self._lock:
            mine = self._counters.setdefault(account_id, {})
            for name, amount in counters:
                mine[name] = mine.get(name, 0) + amount

    def counters(self, account_id: str) -> Mapping[str, float]:
        with self._lock:
            return dict(self._counters.get(account_id, {}))

    def reseal_secrets(self) -> int:
        return 0  # nothing is at rest

    def close(self) -> None:
        pass
