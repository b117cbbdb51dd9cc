"""Admin records in the SQLite store: runtime accounts (one row each) and the audit log."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

from ..state_cipher import StateCipher

__all__ = ["SQLiteAdmin", "ADMIN_SCHEMA"]

ADMIN_SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_account (
    account_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry TEXT NOT NULL
);
"""


class SQLiteAdmin:
    """The admin part of ``SQLiteStore`` (mixed in; it owns the connection and its lock)."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _reader: sqlite3.Connection
    _read_lock: threading.Lock
    _cipher: StateCipher
    _write: Callable[[Callable[[sqlite3.Connection], object]], object]

    def put_admin_account(self, account_id: str, record: str) -> None:
        self._write(lambda db: db.execute(
            "INSERT INTO admin_account (account_id, record) VALUES (?, ?) "
            "ON CONFLICT(account_id) DO UPDATE SET record = excluded.record",
            (account_id, self._cipher.seal(record, f"admin:{account_id}")),
        ))

    def remove_admin_account(self, account_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM admin_account WHERE account_id = ?", (account_id,)).rowcount > 0

        return bool(self._write(work))

    def admin_accounts(self) -> dict[str, str]:
        with self._read_lock:
            rows = self._reader.execute("SELECT account_id, record FROM admin_account").fetchall()
        return {account_id: self._cipher.open(record, f"admin:{account_id}") for account_id, record in rows}

    def add_audit(self, entry: str, *, keep: int) -> None:
        def work(db: sqlite3.Connection) -> None:
            cursor = db.execute("INSERT INTO audit_log (entry) VALUES (?)", (entry,))
            db.execute("DELETE FROM audit_log WHERE seq <= ?", ((cursor.lastrowid or 0) - keep,))

        self._write(work)

    def audit(self, limit: int) -> list[str]:
        with self._read_lock:
            rows = self._reader.execute("SELECT entry FROM audit_log ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [entry for (entry,) in rows]
