"""Usage records in the memory store: a list in time order, under the store's lock."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

from kiro_protocol import UsageRecord

__all__ = ["MemoryUsage"]


class MemoryUsage:
    """The usage part of ``MemoryStore`` (mixed in; it owns ``_lock``)."""

    _lock: threading.Lock
    _usage: list[UsageRecord]

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        with self._lock:
            rows = self._usage
            for record in records:
                if rows and rows[-1].time > record.time:
                    bisect.insort(rows, record, key=lambda r: r.time)
                else:
                    rows.append(record)

    def usage(
        self, *, since: float = 0.0, until: float | None = None, key: str | None = None, limit: int | None = None
    ) -> list[UsageRecord]:
        with self._lock:
            start = bisect.bisect_left(self._usage, since, key=lambda r: r.time)
            end = len(self._usage) if until is None else bisect.bisect_left(self._usage, until, key=lambda r: r.time)
            chosen = [r for r in reversed(self._usage[start:end]) if key is None or r.key == key]
        return chosen if limit is None else chosen[:limit]

    def prune_usage(self, before: float) -> int:
        with self._lock:
            cut = bisect.bisect_left(self._usage, before, key=lambda r: r.time)
            del self._usage[:cut]
            return cut
