"""Client keys and their counters in the Redis store, shared by every replica.

* the keys: one hash, name -> the stored record (JSON);
* per key, a sorted set of the requests in the rate window (scored by start time), a sorted set
  of the running ones (scored by when their hold lapses, so a crashed replica's slots free
  themselves) and one counter per token period, expiring once the period is over.

One Lua script records a request and reads every counter, so replicas never interleave between
the two.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from kiro_protocol import ClientKey, KeyCounts

__all__ = ["RedisKeys"]

_ACQUIRE = """
local now, window, ticket, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ticket)
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
local hits = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + hold, ticket)
redis.call('PEXPIRE', KEYS[2], math.ceil(hold * 1000) + 1000)
local held = redis.call('ZCARD', KEYS[2])
return {hits, oldest, held, redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[4]) or '0'}
"""
# A day counter outlives its day by a day, a month counter its month by a few days: enough for
# clocks a little apart, and nothing is left behind for long.
_DAY_TTL = 2 * 86400
_MONTH_TTL = 35 * 86400
_MAX_OPTIMISTIC_TRIES = 100


class RedisKeys:
    """The client-key part of ``RedisStore`` (mixed in; the store owns the client)."""

    _redis: redis.Redis
    _prefix: str
    _key_script: Any = None

    def _keys_hash(self) -> str:
        return f"{self._prefix}:client_keys"

    def _key_counter(self, name: str, kind: str) -> str:
        return f"{self._prefix}:client_key:{name}:{kind}"

    def add_key(self, key: ClientKey) -> bool:
        return bool(self._redis.hsetnx(self._keys_hash(), key.name, key.to_json()))

    def list_keys(self) -> list[ClientKey]:
        raw = self._redis.hgetall(self._keys_hash())
        keys = [ClientKey.from_json(value) for value in raw.values()]
        return sorted(keys, key=lambda k: k.name)

    def set_key_disabled(self, name: str, disabled: bool) -> bool:
        table = self._keys_hash()
        with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_OPTIMISTIC_TRIES):
                try:
                    pipe.watch(table)  # type: ignore[no-untyped-call]
                    current = pipe.hget(table, name)
                    if current is None:
                        pipe.unwatch()
                        return False
                    record = dataclasses.replace(ClientKey.from_json(current), disabled=disabled)
                    pipe.multi()
                    pipe.hset(table, name, record.to_json())
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        raise RuntimeError(f"client key {name} kept changing under {_MAX_OPTIMISTIC_TRIES} concurrent updates")

    def remove_key(self, name: str) -> bool:
        # SCAN, not KEYS: removing a key must not stall every replica's Redis calls.
        counters = list(self._redis.scan_iter(match=self._key_counter(name, "*"), count=500))
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys_hash(), name)
            if counters:
                pipe.delete(*counters)
            removed = pipe.execute()[0]
        return bool(removed)

    def acquire_key_slot(
        self, name: str, ticket: str, *, now: float, window: float, hold: float, day: str, month: str
    ) -> KeyCounts:
        if self._key_script is None:
            self._key_script = self._redis.register_script(_ACQUIRE)
        keys = [
            self._key_counter(name, "hits"),
            self._key_counter(name, "holds"),
            self._key_counter(name, f"tokens:d:{day}"),
            self._key_counter(name, f"tokens:m:{month}"),
        ]
        hits, oldest, held, today, this_month = self._key_script(keys=keys, args=[repr(now), repr(window), ticket, repr(hold)])
        return KeyCounts(
            requests_in_window=int(hits),
            oldest_in_window=float(oldest),
            in_flight=int(held),
            tokens_today=int(today),
            tokens_this_month=int(this_month),
        )

    def release_key_slot(self, name: str, ticket: str, *, refund: bool) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key_counter(name, "holds"), ticket)
            if refund:
                pipe.zrem(self._key_counter(name, "hits"), ticket)
            pipe.execute()

    def add_key_tokens(self, name: str, tokens: int, *, day: str, month: str) -> None:
        day_key, month_key = self._key_counter(name, f"tokens:d:{day}"), self._key_counter(name, f"tokens:m:{month}")
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(day_key, tokens)
            pipe.expire(day_key, _DAY_TTL)
            pipe.incrby(month_key, tokens)
            pipe.expire(month_key, _MONTH_TTL)
            pipe.execute()

    def key_tokens(self, name: str, *, day: str, month: str) -> tuple[int, int]:
        values = self._redis.mget([self._key_counter(name, f"tokens:d:{day}"), self._key_counter(name, f"tokens:m:{month}")])
        return int(values[0] or 0), int(values[1] or 0)
