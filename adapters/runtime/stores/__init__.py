"""State stores: what must outlive a request (tokens, rotated refresh tokens, cooldowns, marks,
credits, counters), behind one small synchronous interface.

``KIRO_STATE`` picks the backend (``open_store``):

* ``memory://``: this process only; a restart forgets everything.
* ``sqlite:///path/to/state.db`` (default ``sqlite:///./kiro2api-state.db``): survives restarts
  (rotated refresh tokens above all); processes on one host may share the file.
* ``redis://host:port/db``: replicas share tokens, cooldowns and counters; one replica at a time
  refreshes an account (a lease with expiry); rotated refresh tokens are seen by all.

The stores are synchronous on purpose: their operations are small and fast, the gevent adapter
calls them directly, and the async adapters through ``anyio.to_thread.run_sync``, so there is
one implementation of each, not two that drift.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

from kiro_protocol import AccountState, Persist, UsageRecord, ClientKey, KeyCounts

if TYPE_CHECKING:
    from ..state_cipher import StateCipher

__all__ = [
    "StateStore", "StoreConfigurationError", "StoreUnavailable", "open_store", "apply_persist", "DEFAULT_STATE_URL",
]

DEFAULT_STATE_URL = "sqlite:///./kiro2api-state.db"


class StoreConfigurationError(ValueError):
    """``KIRO_STATE`` is not a URL of a supported store."""


class StoreUnavailable(Exception):
    """The store cannot be used right now: Redis is down or unreachable, the SQLite file is
    locked by another process past the busy timeout, or it cannot be written.

    Transient by nature: nothing is cached about it, the next call simply tries again, so the
    gateway recovers by itself when the store returns. The message names the backend and the
    fault's class, never a URL (it may hold a password) or a value.
    """


class StateStore(Protocol):
    """The one interface every backend implements. All methods are thread-safe."""

    def load_many(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        """Stored states of these accounts; ids never stored are absent."""
        ...

    def update(self, account_id: str, change: Callable[[AccountState], AccountState]) -> AccountState:
        """Atomically replace the stored state by ``change(current)``; return the new state.

        ``change`` may be called more than once (optimistic retries) and must be pure.
        """
        ...

    def try_lease(self, account_id: str, owner: str, ttl: float) -> bool:
        """Take (or extend, for the same owner) the account's refresh lease for ``ttl`` seconds."""
        ...

    def release_lease(self, account_id: str, owner: str) -> None:
        """Give the lease back if ``owner`` still holds it."""
        ...

    def add_counters(self, account_id: str, counters: Iterable[tuple[str, float]]) -> None:
        """Add to the account's usage counters (requests, failures, tokens, credits)."""
        ...

    def counters(self, account_id: str) -> Mapping[str, float]:
        """The account's usage counters."""
        ...

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        """Keep these usage records (one per finished model request; ``usage_log`` batches them)."""
        ...

    def usage(
        self, *, since: float = 0.0, until: float | None = None, key: str | None = None, limit: int | None = None
    ) -> list[UsageRecord]:
        """The usage records with ``since <= time < until`` (of key ``key`` if given), newest
        first, at most ``limit``. Sum them with ``kiro_protocol.summarize_usage``."""
        ...

    def prune_usage(self, before: float) -> int:
        """Drop the usage records older than ``before`` (Unix seconds); how many were dropped."""
        ...

    # -- named client keys (docs/keys.md); a record holds the key's digest, never the key --------

    def add_key(self, key: ClientKey) -> bool:
        """Store a new key; False (and nothing changed) when its name is taken."""
        ...

    def list_keys(self) -> list[ClientKey]:
        """Every stored key, by name."""
        ...

    def set_key_disabled(self, name: str, disabled: bool) -> bool:
        """Disable or enable a key; False when there is no such key."""
        ...

    def remove_key(self, name: str) -> bool:
        """Forget a key and its counters; False when there was no such key."""
        ...

    def acquire_key_slot(
        self, name: str, ticket: str, *, now: float, window: float, hold: float, day: str, month: str
    ) -> KeyCounts:
        """Record a model request of key ``name`` (``ticket``: unique per request) and read the
        key's counters, atomically: requests started in the last ``window`` seconds, requests
        holding a slot (this one until ``now + hold`` or ``release_key_slot``), tokens of UTC
        ``day`` and ``month`` (``kiro_protocol.quota_periods``), this request included."""
        ...

    def release_key_slot(self, name: str, ticket: str, *, refund: bool) -> None:
        """The request ended: free its concurrency slot; ``refund`` also takes it out of the rate
        window (a request the limits refused)."""
        ...

    def add_key_tokens(self, name: str, tokens: int, *, day: str, month: str) -> None:
        """Count ``tokens`` (input plus output) against the key's ``day`` and ``month``."""
        ...

    def key_tokens(self, name: str, *, day: str, month: str) -> tuple[int, int]:
        """Tokens the key used in ``day`` and ``month``."""
        ...

    # -- admin (docs/admin.md): accounts added or switched at run time, the audit log --------

    def put_admin_account(self, account_id: str, record: str) -> None:
        """Store (or replace) the admin record of an account: a JSON text (it may hold a refresh
        token and a client secret: the store is private, and these never leave it)."""
        ...

    def remove_admin_account(self, account_id: str) -> bool:
        """Forget an account's admin record; False when there was none."""
        ...

    def admin_accounts(self) -> dict[str, str]:
        """Every admin record, by account id."""
        ...

    def add_audit(self, entry: str, *, keep: int) -> None:
        """Append one audit entry (a JSON text), keeping the newest ``keep``."""
        ...

    def audit(self, limit: int) -> list[str]:
        """The newest ``limit`` audit entries, newest first."""
        ...

    def reseal_secrets(self) -> int:
        """Rewrite the stored records that hold secrets (account states, admin records) which are
        not in the form the store's cipher writes: plain ones get sealed once a key is set, ones
        sealed with a previous key get the current one. Run at start-up; how many were rewritten.

        Raises:
            StateKeyError: a sealed record does not open with the configured keys.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


_T = TypeVar("_T")


def faults_as_unavailable(backend: str, is_fault: Callable[[Exception], bool]) -> Callable[[type[_T]], type[_T]]:
    """Class decorator of a backend: every ``StateStore`` operation raises ``StoreUnavailable``
    (from the original) where the backend's client raised a fault ``is_fault`` recognises, so
    callers tell "the store is away" from a bug with one ``except``."""

    def decorate(cls: type[_T]) -> type[_T]:
        for name in _OPERATIONS:
            setattr(cls, name, _guarded(getattr(cls, name), backend, is_fault))
        return cls

    return decorate


def _guarded(method: Callable[..., Any], backend: str, is_fault: Callable[[Exception], bool]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if is_fault(exc):
                raise StoreUnavailable(f"the {backend} state store is unavailable ({type(exc).__name__})") from exc
            raise

    return call


# Every operation of the interface (close excepted: closing an unreachable store is fine).
_OPERATIONS = tuple(
    name for name, value in vars(StateStore).items() if callable(value) and not name.startswith("_") and name != "close"
)


def apply_persist(store: StateStore, decision: Persist) -> None:
    """Execute a ``Persist`` decision of an Exchange or AccountCheck (shared by every driver)."""
    if decision.update is not None:
        store.update(decision.account_id, decision.update.apply)
    if decision.counters:
        store.add_counters(decision.account_id, decision.counters)
    if decision.release_lease is not None:
        store.release_lease(decision.account_id, decision.release_lease)


def open_store(url: str, *, cipher: StateCipher | None = None) -> StateStore:
    """Open the store named by a ``KIRO_STATE`` URL; ``cipher`` seals and opens its secrets
    (``state_cipher``; None: written plain, and a sealed record is an error when read).

    Raises:
        StoreConfigurationError: unknown scheme or malformed URL.
    """
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from .memory_store import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from .sqlite_store import SQLiteStore

        path = url[len("sqlite://"):]
        # sqlite:///relative.db -> "/relative.db" minus the separator; sqlite:////abs -> "/abs".
        if not path.startswith("/") or len(path) < 2:
            raise StoreConfigurationError(
                "KIRO_STATE sqlite URL must look like sqlite:///relative/state.db or sqlite:////abs/state.db"
            )
        return SQLiteStore(path[1:], cipher=_or_plain(cipher))
    if scheme in ("redis", "rediss", "unix"):
        from .redis_store import RedisStore

        return RedisStore.from_url(url, cipher=_or_plain(cipher))
    raise StoreConfigurationError(
        "KIRO_STATE must be memory://, sqlite:///path/to/state.db or redis://host:port/db"
    )


def _or_plain(cipher: StateCipher | None) -> StateCipher:
    from ..state_cipher import NO_CIPHER

    return cipher if cipher is not None else NO_CIPHER
