"""Usage records on their way to the state store: appended when a request ends, written in
batches by a background task (``Telemetry.run_usage_writer``), never on a request's path.

A request only appends its record to a list; the writer takes the whole list every second and
stores it with one ``add_usage`` call (one SQLite transaction, one Redis command), and prunes
what is past ``KIRO_USAGE_RETENTION_DAYS`` once an hour. Records that cannot be written (the
store is down) are kept for the next round, up to a bound, so a long outage costs the oldest
records rather than the gateway's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kiro_protocol import UsageRecord, retention_cutoff

from .stores import StateStore

__all__ = ["UsageLog"]

log = logging.getLogger("kiro2api.usage")

#: How often the records past retention are pruned.
_PRUNE_EVERY = 3600.0


class UsageLog:
    """The records not yet written, and how they are written.

    Args:
        store: where they go.
        retention_days: how long the store keeps them.
        max_pending: the most records held while the store cannot be written.
        clock: wall-clock seconds (the retention cutoff).
    """

    def __init__(
        self,
        store: StateStore,
        *,
        retention_days: float,
        max_pending: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self._max_pending = max_pending
        self._clock = clock
        self._pending: list[UsageRecord] = []
        # Appends come from request tasks (threads in the synchronous twin), the swap from the writer.
        self._lock = threading.Lock()
        self._dropped = 0
        self._next_prune = 0.0
        #: Records written so far, and ``add_usage`` calls that wrote them (for tests and the log).
        self.written = 0
        self.batches = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, record: UsageRecord) -> None:
        """Queue ``record``; the request's only cost (no store call)."""
        with self._lock:
            self._pending.append(record)
            if len(self._pending) > self._max_pending:
                del self._pending[0]
                self._dropped += 1

    def write_pending(self) -> int:
        """Store every queued record in one call, and prune when due; how many were written.

        Runs in the writer task (a worker thread for SQLite and Redis); never raises: a failed
        write is logged and its records are queued again.
        """
        with self._lock:
            batch, self._pending = self._pending, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("usage: %d records were dropped while the state store could not be written", dropped)
        if batch:
            try:
                self.store.add_usage(batch)
            except Exception as exc:
                log.warning("usage: cannot write %d records to the state store (%s); retrying", len(batch), type(exc).__name__)
                with self._lock:
                    self._pending[:0] = batch[-self._max_pending:]
                    excess = len(self._pending) - self._max_pending
                    if excess > 0:
                        del self._pending[:excess]
                        self._dropped += excess
                return 0
            self.written += len(batch)
            self.batches += 1
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY
            try:
                pruned = self.store.prune_usage(retention_cutoff(now, self.retention_days))
            except Exception as exc:
                log.warning("usage: cannot prune old records (%s)", type(exc).__name__)
            else:
                if pruned:
                    log.info("usage: pruned %d records older than %g days", pruned, self.retention_days)
        return len(batch)
