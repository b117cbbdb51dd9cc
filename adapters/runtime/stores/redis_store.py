"""The Redis store (``redis://host:port/db``): state shared by every replica.

* states: one JSON string per account, changed with WATCH/MULTI/EXEC (optimistic, retried), so
  concurrent updates from several replicas merge through ``AccountUpdate.apply``;
* refresh leases: ``SET NX PX`` with expiry on the server's clock (a crashed replica's lease
  lapses by itself), extended or released only by their owner (compare-and-set scripts);
* counters: one hash per account, ``HINCRBYFLOAT``.

A shared Redis is not private to kiro2api: with ``KIRO_STATE_KEY`` the states and admin records
(they hold tokens) are sealed (``state_cipher``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import redis

from kiro_protocol import AccountState

from ..state_cipher import NO_CIPHER, StateCipher
from .decoded_states import DecodedStates
from . import faults_as_unavailable

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

# Replace a value only if it is still the one read (start-up resealing racing a live write).
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_HSWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


def _fault(exc: Exception) -> bool:
    # Down, unreachable, slow past the socket timeout, loading its data, or a read-only replica.
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError))


@faults_as_unavailable("Redis", _fault)
class RedisStore(RedisUsage, RedisKeys, RedisAdmin):
    """A ``StateStore`` on Redis; keys start with ``prefix``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "kiro2api", cipher: StateCipher = NO_CIPHER) -> None:
        self._redis = client
        self._prefix = prefix
        self._cipher = cipher
        self._decoded = DecodedStates(cipher)
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)
        self._swap: Any = client.register_script(_SWAP)
        self._hswap: Any = client.register_script(_HSWAP)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "kiro2api", cipher: StateCipher = NO_CIPHER) -> RedisStore:
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, prefix=prefix, cipher=cipher)

    def _key(self, kind: str, account_id: str) -> str:
        return f"{self._prefix}:{kind}:{account_id}"

    def load_many(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        ids = list(account_ids)
        if not ids:
            return {}
        values = self._redis.mget([self._key("state", i) for i in ids])
        decoded = self._decoded.state
        return {i: decoded(i, v) for i, v in zip(ids, values) if v is not None}

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        key = self._key("state", account_id)
        with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_OPTIMISTIC_TRIES):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    stored = pipe.get(key)
                    context = f"state:{account_id}"
                    current = AccountState.from_json(self._cipher.open(stored, context) if stored else None)
                    new = change(current)
                    pipe.multi()
                    pipe.set(key, self._cipher.seal(new.to_json(), context))
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

    def reseal_secrets(self) -> int:
        """Rewrite every state and admin record not sealed with the current key; each swap only
        lands if the record is unchanged (a replica writing meanwhile seals its own write)."""
        changed = 0
        head = f"{self._prefix}:state:"
        for key in self._redis.scan_iter(match=head + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            stored = self._redis.get(name)
            if stored is None or not isinstance(stored, (bytes, str)):
                continue
            new = self._cipher.reseal(stored, f"state:{name[len(head):]}")
            if new is not None:
                changed += int(self._swap(keys=[name], args=[stored, new]))
        admin = f"{self._prefix}:admin:accounts"
        for field, stored in self._redis.hgetall(admin).items():
            account_id = field.decode() if isinstance(field, bytes) else field
            new = self._cipher.reseal(stored, f"admin:{account_id}")
            if new is not None:
                changed += int(self._hswap(keys=[admin], args=[field, stored, new]))
        return changed

    def close(self) -> None:
        self._redis.close()
