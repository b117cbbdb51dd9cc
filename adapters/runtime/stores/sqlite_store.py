"""The SQLite store (``sqlite:///path``, the default): survives restarts, shareable on one host.

Every read-modify-write runs inside ``BEGIN IMMEDIATE`` (the write lock is taken first), so two
processes using one file serialise instead of losing an update; WAL mode keeps readers unblocked.
The file holds refresh tokens: it is created readable by its owner only, and with
``KIRO_STATE_KEY`` the records holding them are sealed (``state_cipher``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Callable, Iterable, Mapping, Sequence

from kiro_protocol import AccountState

from ..state_cipher import NO_CIPHER, StateCipher
from .decoded_states import DecodedStates
from . import faults_as_unavailable
from .usage_sqlite import USAGE_SCHEMA, SQLiteUsage
from .keys_sqlite import KEYS_SCHEMA, SQLiteKeys

from .admin_sqlite import ADMIN_SCHEMA, SQLiteAdmin

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account_state (
    account_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_lease (
    account_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_counter (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (account_id, name)
);
"""

# The columns holding secrets (table, id column, value column, cipher context kind).
_SECRET_COLUMNS = (
    ("account_state", "account_id", "state", "state"),
    ("admin_account", "account_id", "record", "admin"),
)


# How long a write waits for another process's lock before the store counts as unavailable (a
# request then gets a 503 rather than hanging): writes take milliseconds, so only a stuck
# holder (a backup, a sqlite3 shell in a transaction) ever waits this long.
BUSY_TIMEOUT = 3.0


def _fault(exc: Exception) -> bool:
    # Locked past the busy timeout, or the file cannot be opened or written; an SQL error is a bug.
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in ("locked", "busy", "disk", "unable to open", "readonly")
    )


@faults_as_unavailable("SQLite", _fault)
class SQLiteStore(SQLiteUsage, SQLiteKeys, SQLiteAdmin):
    """A ``StateStore`` in one SQLite file. ``clock`` is injectable for lease tests."""

    def __init__(
        self, path: str, *, clock: Callable[[], float] = time.time, cipher: StateCipher = NO_CIPHER
    ) -> None:
        self.path = path
        self._clock = clock
        self._cipher = cipher
        self._decoded = DecodedStates(cipher)
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            if not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One connection guarded by a lock: calls come from worker threads (anyio.to_thread).
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA + USAGE_SCHEMA + KEYS_SCHEMA + ADMIN_SCHEMA)
        # Reads have their own connection and lock: a write waiting for another process's lock
        # (up to BUSY_TIMEOUT) holds ``_lock``, and reads (some run on the event loop) must not
        # queue behind it; in WAL mode a reader never waits for a writer.
        if path == ":memory:":
            self._reader, self._read_lock = self._db, self._lock
        else:
            self._reader = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            self._read_lock = threading.Lock()

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> object:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def load_many(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        ids = list(account_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT account_id, state FROM account_state WHERE account_id IN ({marks})", ids
            ).fetchall()
        decoded = self._decoded.state
        return {account_id: decoded(account_id, text) for account_id, text in rows}

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        def work(db: sqlite3.Connection) -> AccountState:
            row = db.execute("SELECT state FROM account_state WHERE account_id = ?", (account_id,)).fetchone()
            context = f"state:{account_id}"
            new = change(AccountState.from_json(self._cipher.open(row[0], context) if row else None))
            db.execute(
                "INSERT INTO account_state (account_id, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(account_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (account_id, self._cipher.seal(new.to_json(), context), self._clock()),
            )
            return new

        result = self._write(work)
        assert isinstance(result, AccountState)
        return result

    def try_lease(self, account_id: str, owner: str, ttl: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            now = self._clock()
            row = db.execute(
                "SELECT owner, expires_at FROM refresh_lease WHERE account_id = ?", (account_id,)
            ).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute(
                "INSERT INTO refresh_lease (account_id, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                (account_id, owner, now + ttl),
            )
            return True

        return bool(self._write(work))

    def release_lease(self, account_id: str, owner: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM refresh_lease WHERE account_id = ? AND owner = ?", (account_id, owner))

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        pairs = [(account_id, name, amount) for name, amount in counters]
        if not pairs:
            return

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO usage_counter (account_id, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT(account_id, name) DO UPDATE SET value = value + excluded.value",
                pairs,
            )

        self._write(work)

    def counters(self, account_id: str) -> Mapping[str, float]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT name, value FROM usage_counter WHERE account_id = ?", (account_id,)
            ).fetchall()
        return {name: value for name, value in rows}

    def reseal_secrets(self) -> int:
        """Rewrite every secret-bearing record not sealed with the current key (one transaction)."""

        def work(db: sqlite3.Connection) -> int:
            changed = 0
            for table, id_column, value_column, kind in _SECRET_COLUMNS:
                rows = db.execute(f"SELECT {id_column}, {value_column} FROM {table}").fetchall()
                for record_id, stored in rows:
                    new = self._cipher.reseal(stored, f"{kind}:{record_id}")
                    if new is not None:
                        db.execute(f"UPDATE {table} SET {value_column} = ? WHERE {id_column} = ?", (new, record_id))
                        changed += 1
            return changed

        result = self._write(work)
        assert isinstance(result, int)
        return result

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._reader is not self._db:
            with self._read_lock:
                self._reader.close()
