"""Client keys and their counters in the SQLite store.

Each counter step runs in one ``BEGIN IMMEDIATE`` transaction, so processes sharing the file
(a server and the ``kiro2api keys`` command, or several workers) count every request once.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable

from kiro_protocol import ClientKey, KeyCounts

__all__ = ["KEYS_SCHEMA", "SQLiteKeys"]

KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS client_key (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS client_key_hit (
    name TEXT NOT NULL,
    ticket TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (name, ticket)
);
CREATE TABLE IF NOT EXISTS client_key_hold (
    name TEXT NOT NULL,
    ticket TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (name, ticket)
);
CREATE TABLE IF NOT EXISTS client_key_tokens (
    name TEXT NOT NULL,
    period TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (name, period)
);
"""


class SQLiteKeys:
    """The client-key part of ``SQLiteStore`` (mixed in; the store owns the connection)."""

    _lock: threading.Lock
    _reader: sqlite3.Connection
    _read_lock: threading.Lock
    _db: sqlite3.Connection
    _write: Callable[[Callable[[sqlite3.Connection], object]], object]

    def add_key(self, key: ClientKey) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO client_key (name, record) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                (key.name, key.to_json()),
            )
            return cursor.rowcount == 1

        return bool(self._write(work))

    def list_keys(self) -> list[ClientKey]:
        with self._read_lock:
            rows = self._reader.execute("SELECT record FROM client_key ORDER BY name").fetchall()
        return [ClientKey.from_json(row[0]) for row in rows]

    def set_key_disabled(self, name: str, disabled: bool) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT record FROM client_key WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            record = dataclasses.replace(ClientKey.from_json(row[0]), disabled=disabled)
            db.execute("UPDATE client_key SET record = ? WHERE name = ?", (record.to_json(), name))
            return True

        return bool(self._write(work))

    def remove_key(self, name: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            for table in ("client_key_hit", "client_key_hold", "client_key_tokens"):
                db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))
            return db.execute("DELETE FROM client_key WHERE name = ?", (name,)).rowcount == 1

        return bool(self._write(work))

    def acquire_key_slot(
        self, name: str, ticket: str, *, now: float, window: float, hold: float, day: str, month: str
    ) -> KeyCounts:
        def work(db: sqlite3.Connection) -> KeyCounts:
            db.execute("DELETE FROM client_key_hit WHERE name = ? AND at <= ?", (name, now - window))
            db.execute("INSERT OR REPLACE INTO client_key_hit (name, ticket, at) VALUES (?, ?, ?)", (name, ticket, now))
            hits, oldest = db.execute("SELECT COUNT(*), MIN(at) FROM client_key_hit WHERE name = ?", (name,)).fetchone()
            db.execute("DELETE FROM client_key_hold WHERE name = ? AND until <= ?", (name, now))
            db.execute(
                "INSERT OR REPLACE INTO client_key_hold (name, ticket, until) VALUES (?, ?, ?)", (name, ticket, now + hold)
            )
            (held,) = db.execute("SELECT COUNT(*) FROM client_key_hold WHERE name = ?", (name,)).fetchone()
            today, month_tokens = _tokens(db, name, day, month)
            return KeyCounts(
                requests_in_window=int(hits),
                oldest_in_window=float(oldest),
                in_flight=int(held),
                tokens_today=today,
                tokens_this_month=month_tokens,
            )

        result = self._write(work)
        assert isinstance(result, KeyCounts)
        return result

    def release_key_slot(self, name: str, ticket: str, *, refund: bool) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM client_key_hold WHERE name = ? AND ticket = ?", (name, ticket))
            if refund:
                db.execute("DELETE FROM client_key_hit WHERE name = ? AND ticket = ?", (name, ticket))

        self._write(work)

    def add_key_tokens(self, name: str, tokens: int, *, day: str, month: str) -> None:
        periods = ("d:" + day, "m:" + month)

        def work(db: sqlite3.Connection) -> None:
            # Only the current day and month are ever read: older periods go as new ones start.
            db.execute("DELETE FROM client_key_tokens WHERE name = ? AND period NOT IN (?, ?)", (name, *periods))
            db.executemany(
                "INSERT INTO client_key_tokens (name, period, tokens) VALUES (?, ?, ?) "
                "ON CONFLICT(name, period) DO UPDATE SET tokens = tokens + excluded.tokens",
                [(name, period, tokens) for period in periods],
            )

        self._write(work)

    def key_tokens(self, name: str, *, day: str, month: str) -> tuple[int, int]:
        with self._read_lock:
            return _tokens(self._reader, name, day, month)


def _tokens(db: sqlite3.Connection, name: str, day: str, month: str) -> tuple[int, int]:
    rows = dict(
        db.execute(
            "SELECT period, tokens FROM client_key_tokens WHERE name = ? AND period IN (?, ?)",
            (name, "d:" + day, "m:" + month),
        ).fetchall()
    )
    return int(rows.get("d:" + day, 0)), int(rows.get("m:" + month, 0))
