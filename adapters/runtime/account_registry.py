"""The live account list: the accounts of ``KIRO_AUTH_TOKEN`` plus those the admin API added,
with the admin's disable and enable switches, kept in the state store.

Every replica builds the same list from the same store: the admin records are read again every
second (``reload``), so an account added, disabled or removed through one replica is served or
left alone by all of them without a restart. An account of ``KIRO_AUTH_TOKEN`` can be disabled
and enabled here but not removed (it would come back at the next start); an added account's
record holds its refresh token and client secret, which never leave the store.

Synchronous: the stores are; the async runtime calls it through a worker thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiro_protocol import AccountConfig, ConfigurationError, parse_account

from .stores import StateStore

__all__ = ["AccountRegistry", "AccountRecord", "UnknownAccount", "AccountConflict"]

log = logging.getLogger("kiro2api.accounts")


class UnknownAccount(LookupError):
    """No account has this id."""


class AccountConflict(ValueError):
    """The change contradicts what exists (a duplicate, or removing a configured account)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    """What the store keeps about one account for the admin: the entry of an added account (None
    for a configured one) and the admin's switch (None: as configured)."""

    entry: Mapping[str, Any] | None = None
    disabled: bool | None = None
    added_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"entry": dict(self.entry) if self.entry is not None else None, "disabled": self.disabled,
                           "added_at": self.added_at}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AccountRecord:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("an account record must be an object")
        entry = raw.get("entry")
        disabled = raw.get("disabled")
        added_at = raw.get("added_at", 0.0)
        return cls(
            entry=entry if isinstance(entry, dict) else None,
            disabled=disabled if isinstance(disabled, bool) else None,
            added_at=float(added_at) if isinstance(added_at, (int, float)) else 0.0,
        )


class AccountRegistry:
    """The accounts to serve, rebuilt from the configuration and the store's admin records.

    Args:
        configured: the accounts of ``KIRO_AUTH_TOKEN`` (maybe none).
        store: the state store.
        clock: wall-clock seconds (when an account was added).
    """

    def __init__(self, configured: Sequence[AccountConfig], store: StateStore, clock: Callable[[], float]) -> None:
        self._configured = tuple(configured)
        self._configured_ids = frozenset(a.account_id for a in self._configured)
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, AccountRecord] = {}
        self.accounts: tuple[AccountConfig, ...] = self._configured
        #: Bumped whenever ``accounts`` changes: readers compare it to rebuild what they derived.
        self.version = 0

    def is_configured(self, account_id: str) -> bool:
        """Whether the account comes from ``KIRO_AUTH_TOKEN`` (else the admin API added it)."""
        return account_id in self._configured_ids

    def reload(self) -> bool:
        """Read the admin records again; True when the account list changed."""
        raw = self._store.admin_accounts()
        records: dict[str, AccountRecord] = {}
        for account_id, text in raw.items():
            try:
                records[account_id] = AccountRecord.from_json(text)
            except ValueError:
                log.warning("ignoring an unreadable admin record of account %s", account_id)
        with self._lock:
            accounts = self._build(records)
            self._records = records
            if accounts == self.accounts:
                return False
            self.accounts = accounts
            self.version += 1
            return True

    def _build(self, records: Mapping[str, AccountRecord]) -> tuple[AccountConfig, ...]:
        built: list[AccountConfig] = []
        for account in self._configured:
            record = records.get(account.account_id)
            if record is not None and record.disabled is not None:
                account = dataclasses.replace(account, disabled=record.disabled)
            built.append(account)
        added = sorted(
            ((i, r) for i, r in records.items() if r.entry is not None and i not in self._configured_ids),
            key=lambda item: (item[1].added_at, item[0]),
        )
        for account_id, record in added:
            assert record.entry is not None
            try:
                account = parse_account(dict(record.entry), index=len(built))
            except ConfigurationError as exc:
                log.warning("ignoring stored account %s: %s", account_id, exc)
                continue
            if record.disabled is not None:
                account = dataclasses.replace(account, disabled=record.disabled)
            built.append(account)
        return tuple(built)

    def find(self, account_id: str) -> AccountConfig:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise UnknownAccount(account_id)

    def add(self, entry: Mapping[str, Any]) -> AccountConfig:
        """Add an account (``KIRO_AUTH_TOKEN``'s entry shape) and serve it at once.

        Raises:
            ConfigurationError: the entry is invalid (the message names fields, never values).
            AccountConflict: the same account (same refresh token) exists already.
        """
        self.reload()
        account = parse_account(dict(entry), index=len(self.accounts))
        if any(a.account_id == account.account_id for a in self.accounts):
            raise AccountConflict(f"account {account.account_id} exists already")
        record = AccountRecord(entry=dict(entry), disabled=None, added_at=self._clock())
        self._store.put_admin_account(account.account_id, record.to_json())
        self.reload()
        return self.find(account.account_id)

    def set_disabled(self, account_id: str, disabled: bool) -> AccountConfig:
        """Switch an account off or on (persisted; every replica follows within a second)."""
        self.reload()
        self.find(account_id)
        with self._lock:
            current = self._records.get(account_id, AccountRecord())
        self._store.put_admin_account(account_id, dataclasses.replace(current, disabled=disabled).to_json())
        self.reload()
        return self.find(account_id)

    def remove(self, account_id: str) -> AccountConfig:
        """Forget an account the admin API added.

        Raises:
            UnknownAccount: no such account.
            AccountConflict: it comes from ``KIRO_AUTH_TOKEN`` (disable it, or edit the setting).
        """
        self.reload()
        account = self.find(account_id)
        if self.is_configured(account_id):
            raise AccountConflict(
                f"account {account.label} comes from KIRO_AUTH_TOKEN: disable it, or remove it there"
            )
        self._store.remove_admin_account(account_id)
        self.reload()
        return account
