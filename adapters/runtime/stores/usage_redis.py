"""Usage records in the Redis store: one sorted set, scored by time, of compact JSON records,
so every replica's records land in one place and a time range is one ``ZRANGEBYSCORE``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from kiro_protocol import UsageRecord

__all__ = ["RedisUsage"]

log = logging.getLogger("kiro2api.store")


class RedisUsage:
    """The usage part of ``RedisStore`` (mixed in; it owns the client and the key prefix)."""

    _redis: redis.Redis
    _prefix: str

    @property
    def _usage_key(self) -> str:
        return f"{self._prefix}:usage"

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        if records:
            self._redis.zadd(self._usage_key, {r.to_json(): r.time for r in records})

    def usage(
        self, *, since: float = 0.0, until: float | None = None, key: str | None = None, limit: int | None = None
    ) -> list[UsageRecord]:
        upper: Any = "+inf" if until is None else f"({until!r}"
        raw = self._redis.zrevrangebyscore(self._usage_key, upper, since)
        chosen: list[UsageRecord] = []
        for member in raw:
            if not isinstance(member, (bytes, str)):
                continue
            try:
                record = UsageRecord.from_json(member)
            except ValueError:
                log.warning("skipping a malformed usage record in %s", self._usage_key)
                continue
            if key is None or record.key == key:
                chosen.append(record)
                if limit is not None and len(chosen) >= limit:
                    break
        return chosen

    def prune_usage(self, before: float) -> int:
        return int(self._redis.zremrangebyscore(self._usage_key, "-inf", f"({before!r}"))
