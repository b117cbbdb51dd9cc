"""Usage records in the SQLite store: one row per request, indexed by time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence

from kiro_protocol import UsageRecord

__all__ = ["SQLiteUsage", "USAGE_SCHEMA"]

USAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_record (
    time REAL NOT NULL,
    request_id TEXT NOT NULL,
    key TEXT,
    account TEXT,
    model TEXT,
    dialect TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    credits REAL NOT NULL,
    ttfb REAL,
    duration REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_record_time ON usage_record (time);
"""

_COLUMNS = ("time, request_id, key, account, model, dialect, stream, status, error, "
            "input_tokens, output_tokens, credits, ttfb, duration")


class SQLiteUsage:
    """The usage part of ``SQLiteStore`` (mixed in; it owns the connection and its lock)."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _reader: sqlite3.Connection
    _read_lock: threading.Lock
    _write: Callable[[Callable[[sqlite3.Connection], object]], object]

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        rows = [r.row() for r in records]
        if rows:
            self._write(lambda db: db.executemany(f"INSERT INTO usage_record ({_COLUMNS}) VALUES ({','.join('?' * 14)})", rows))

    def usage(
        self, *, since: float = 0.0, until: float | None = None, key: str | None = None, limit: int | None = None
    ) -> list[UsageRecord]:
        where, args = ["time >= ?"], [since]
        if until is not None:
            where.append("time < ?")
            args.append(until)
        query = f"SELECT {_COLUMNS} FROM usage_record WHERE {' AND '.join(where)}"
        params: list[object] = list(args)
        if key is not None:
            query += " AND key = ?"
            params.append(key)
        query += " ORDER BY time DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._read_lock:
            rows = self._reader.execute(query, params).fetchall()
        return [UsageRecord.from_row(row) for row in rows]

    def prune_usage(self, before: float) -> int:
        result = self._write(lambda db: db.execute("DELETE FROM usage_record WHERE time < ?", (before,)).rowcount)
        assert isinstance(result, int)
        return result
