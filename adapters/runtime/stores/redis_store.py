"""The Redis store (``redis://host:port/db``): state shared by every replica.

* states: one JSON string per account, changed with WATCH/MULTI/EXEC (optimistic, retried), so
  concurrent updates from several replicas merge through ``AccountUpdate.apply``;
* refresh leases: ``SET NX PX`` with expiry on the server's clock (a crashed replica's lease
  lapses by itself), extended or released only by their owner (compare-and-set scripts);
* counters: one hash per account, ``HINCRBYFLOAT``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import redis

from kiro_protocol import AccountState

from .usage_redis import RedisUsage
from .keys_redis import RedisKeys

from .admin_redis import RedisAdmin

__all__ = ["RedisStore"]

# Take the lease if free, or extend it if we hold it.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Contention on one account's state is a handful of replicas at most; this bound only turns a
# livelock into an error.
_MAX_OPTIMISTIC_TRIES = 100

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore(RedisUsage, RedisKeys, RedisAdmin):
    """A ``StateStore`` on Redis; keys start with ``prefix``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "kiro2api") -> None:
        self._redis = client
        self._prefix = prefix
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "kiro2api") -> RedisStore:
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, prefix=prefix)

    def _key(self, kind: str, account_id: str) -> str:
        return f"{self._prefix}:{kind}:{account_id}"

    def load_many(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        ids = list(account_ids)
        if not ids:
            return {}
        values = self._redis.mget([self._key("state", i) for i in ids])
        return {i: AccountState.from_json(v) for i, v in zip(ids, values) if v is not None}

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        key = self._key("state", account_id)
        with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_OPTIMISTIC_TRIES):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current = AccountState.from_json(pipe.get(key))
                    new = change(current)
                    pipe.multi()
                    pipe.set(key, new.to_json())
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue  # another replica changed it first: apply ours to theirs
        raise RuntimeError(f"state of {account_id} kept changing under {_MAX_OPTIMISTIC_TRIES} concurrent updates")

    def try_lease(self, account_id: str, owner: str, ttl: float) -> bool:
        ms = max(1, int(ttl * 1000))
        return bool(self._acquire(keys=[self._key("lease", account_id)], args=[owner, ms]))

    def release_lease(self, account_id: str, owner: str) -> None:
        self._release(keys=[self._key("lease", account_id)], args=[owner])

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        key = self._key("counters", account_id)
        with self._redis.pipeline(transaction=True) as pipe:
            for name, amount in counters:
                pipe.hincrbyfloat(key, name, float(amount))
            pipe.execute()

    def counters(self, account_id: str) -> Mapping[str, float]:
        raw = self._redis.hgetall(self._key("counters", account_id))
        return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}

    def close(self) -> None:
        self._redis.close()
