"""Admin records in the Redis store, shared by every replica: runtime accounts in one hash,
the audit log in one capped list (newest first)."""

from __future__ import annotations

import redis

from ..state_cipher import StateCipher

__all__ = ["RedisAdmin"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisAdmin:
    """The admin part of ``RedisStore`` (mixed in; it owns the client and the key prefix)."""

    _redis: redis.Redis
    _prefix: str
    _cipher: StateCipher

    def put_admin_account(self, account_id: str, record: str) -> None:
        self._redis.hset(f"{self._prefix}:admin:accounts", account_id, self._cipher.seal(record, f"admin:{account_id}"))

    def remove_admin_account(self, account_id: str) -> bool:
        return bool(self._redis.hdel(f"{self._prefix}:admin:accounts", account_id))

    def admin_accounts(self) -> dict[str, str]:
        raw = self._redis.hgetall(f"{self._prefix}:admin:accounts")
        return {_text(k): self._cipher.open(v, f"admin:{_text(k)}") for k, v in raw.items()}

    def add_audit(self, entry: str, *, keep: int) -> None:
        key = f"{self._prefix}:audit"
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, keep - 1)
            pipe.execute()

    def audit(self, limit: int) -> list[str]:
        return [_text(v) for v in self._redis.lrange(f"{self._prefix}:audit", 0, limit - 1)]
