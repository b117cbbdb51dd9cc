"""Admin records in the memory store: runtime accounts and the audit log, under the store's lock."""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["MemoryAdmin"]


class MemoryAdmin:
    """The admin part of ``MemoryStore`` (mixed in; the store owns ``_lock``)."""

    _lock: threading.Lock
    _admin_accounts: dict[str, str]
    _audit: deque[str]

    def put_admin_account(self, account_id: str, record: str) -> None:
        with self._lock:
            self._admin_accounts[account_id] = record

    def remove_admin_account(self, account_id: str) -> bool:
        with self._lock:
            return self._admin_accounts.pop(account_id, None) is not None

    def admin_accounts(self) -> dict[str, str]:
        with self._lock:
            return dict(self._admin_accounts)

    def add_audit(self, entry: str, *, keep: int) -> None:
        with self._lock:
            self._audit.append(entry)
            while len(self._audit) > keep:
                self._audit.popleft()

    def audit(self, limit: int) -> list[str]:
        with self._lock:
            return list(reversed(self._audit))[:limit]
