"""What the admin can see and do, shared by the JSON API and the dashboard: accounts, client
keys, usage, recent requests and the audit log, read from and written to the state store.

Every change is written to the audit log (who, what, when, from which address, the outcome;
never a secret). Nothing returned here holds a refresh token, a client secret, an access token
or a client key: accounts are shown through the core's safe ``account_status``, keys by name,
hint and limits (a new key's value is returned once, by ``add_key``).

Synchronous, like the stores; the async runtime calls it through a worker thread.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kiro_protocol import (
    AccountState,
    ClientKey,
    ConfigurationError,
    ErrorKind,
    KeyLimits,
    LocalProtocolError,
    UsageRecord,
    account_status,
    format_time,
    make_client_key,
    parse_expiry,
    parse_models,
    parse_since,
    summarize_usage,
    USAGE_GROUPINGS,
)

from .account_registry import AccountConflict, AccountRegistry, UnknownAccount
from .stores import StateStore

__all__ = ["AdminConsole", "AuditEntry", "AUDIT_KEEP"]

log = logging.getLogger("kiro2api.admin")

#: Audit entries kept (the oldest go first).
AUDIT_KEEP = 10_000
#: Recent requests shown at most.
_RECENT = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One admin action, as the audit log keeps it."""

    time: float
    #: ``admin-api`` or ``dashboard:<session>`` (the session's public nonce prefix).
    actor: str
    #: The action (``accounts.add``...).
    action: str
    #: The account id or key name it was about.
    target: str | None
    #: The peer address it came from.
    address: str | None
    #: The HTTP status it was answered with.
    status: int
    #: What changed, in words (never a value of a secret).
    detail: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, object]:
        return {
            "time": format_time(self.time),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "status": self.status,
            "detail": self.detail,
        }


def _bad(message: str, param: str | None = None) -> LocalProtocolError:
    return LocalProtocolError(message, kind=ErrorKind.INVALID_REQUEST, param=param)


def _not_found(message: str) -> LocalProtocolError:
    return LocalProtocolError(message, kind=ErrorKind.NOT_FOUND)


def _conflict(message: str) -> LocalProtocolError:
    return LocalProtocolError(message, kind=ErrorKind.INVALID_REQUEST, status_hint=409)


def _whole(value: object, name: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _bad(f"{name} must be a whole number >= 0.", name)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _bad(f"{name} must be a whole number >= 0.", name) from None
    if number < 0:
        raise _bad(f"{name} must be a whole number >= 0.", name)
    return number


class AdminConsole:
    """The admin's view of and hold on the gateway.

    Args:
        registry: the live account list.
        store: the state store.
        clock: wall-clock seconds.
        random_bytes: cryptographic randomness (new client keys).
    """

    def __init__(
        self,
        *,
        registry: AccountRegistry,
        store: StateStore,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self._random_bytes = random_bytes

    # -- the audit log ---------------------------------------------------------------------------

    def audit(self, entry: AuditEntry) -> None:
        """Record one action; a store failure is logged, never hidden from the log."""
        try:
            self.store.add_audit(entry.to_json(), keep=AUDIT_KEEP)
        except Exception:
            log.exception("could not write the audit entry of %s", entry.action)
        log.info("admin %s by %s from %s: %s %s", entry.action, entry.actor, entry.address, entry.status,
                 entry.target or "")

    def audit_log(self, limit: int = 100) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        for text in self.store.audit(max(1, min(limit, AUDIT_KEEP))):
            try:
                entry = json.loads(text)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    # -- accounts --------------------------------------------------------------------------------

    def accounts(self) -> list[dict[str, object]]:
        """Every account with its state, credits, cooldown, last error and request counters."""
        self.registry.reload()
        accounts = self.registry.accounts
        states = self.store.load_many([a.account_id for a in accounts])
        now = self.clock()
        views = []
        for account in accounts:
            view = account_status(account, states.get(account.account_id, AccountState()), now,
                                  self.store.counters(account.account_id))
            view["source"] = "configured" if self.registry.is_configured(account.account_id) else "added"
            views.append(view)
        return views

    def add_account(self, entry: object) -> dict[str, object]:
        if not isinstance(entry, dict):
            raise _bad("An account is a JSON object in KIRO_AUTH_TOKEN's entry shape (docs/accounts.md).")
        try:
            account = self.registry.add(entry)
        except ConfigurationError as exc:
            raise _bad(str(exc)) from None
        except AccountConflict as exc:
            raise _conflict(f"The account exists already ({exc}).") from None
        return self._view(account.account_id)

    def set_account_disabled(self, account_id: str, disabled: bool) -> dict[str, object]:
        try:
            self.registry.set_disabled(account_id, disabled)
        except UnknownAccount:
            raise _not_found(f"No account {account_id}.") from None
        if not disabled:
            # Enabling is the operator's "try it again": a refresh token the pool gave up on
            # (invalid_grant) gets another chance too.
            self.store.update(account_id, _clear_disabled_reason)
        return self._view(account_id)

    def remove_account(self, account_id: str) -> dict[str, object]:
        try:
            account = self.registry.remove(account_id)
        except UnknownAccount:
            raise _not_found(f"No account {account_id}.") from None
        except AccountConflict as exc:
            raise _conflict(f"Cannot remove: {exc}.") from None
        return {"id": account.account_id, "removed": True}

    def _view(self, account_id: str) -> dict[str, object]:
        for view in self.accounts():
            if view["id"] == account_id:
                return view
        raise _not_found(f"No account {account_id}.")

    # -- client keys -----------------------------------------------------------------------------

    def keys(self) -> list[dict[str, object]]:
        """Every named key (never its value) with today's and this month's usage."""
        now = self.clock()
        since = now - 30 * 86400
        totals = {t.group[0]: t for t in summarize_usage(self.store.usage(since=since), ("key",))}
        views = []
        for key in self.store.list_keys():
            view = key.to_dict()
            view.pop("digest", None)
            view["created_at"] = format_time(key.created_at) if key.created_at else None
            view["expires_at"] = format_time(key.expires_at) if key.expires_at is not None else None
            view["expired"] = key.expired(now)
            total = totals.get(key.name)
            view["usage_30d"] = {
                "requests": total.requests if total else 0,
                "errors": total.errors if total else 0,
                "input_tokens": total.input_tokens if total else 0,
                "output_tokens": total.output_tokens if total else 0,
                "credits": total.credits if total else 0.0,
            }
            views.append(view)
        return views

    def add_key(self, fields: Mapping[str, Any]) -> tuple[dict[str, object], str]:
        """Make a key from ``fields`` (name, rpm, concurrency, tokens_per_day, tokens_per_month,
        models, expires): its view and the key itself, to be shown once."""
        name = str(fields.get("name") or "").strip()
        now = self.clock()
        models = fields.get("models") or ()
        if not isinstance(models, (str, list, tuple)):
            raise _bad("models must be a list of model ids or a comma-separated text.", "models")
        limits = KeyLimits(
            rpm=_whole(fields.get("rpm"), "rpm"),
            concurrency=_whole(fields.get("concurrency"), "concurrency"),
            tokens_per_day=_whole(fields.get("tokens_per_day"), "tokens_per_day"),
            tokens_per_month=_whole(fields.get("tokens_per_month"), "tokens_per_month"),
            models=parse_models(models if isinstance(models, str) else [str(m) for m in models]),
        )
        expires = str(fields.get("expires") or "").strip()
        expires_at = parse_expiry(expires, now) if expires else None
        record, secret = make_client_key(name, random_bytes=self._random_bytes(32), now=now, limits=limits,
                                         expires_at=expires_at)
        if not self.store.add_key(record):
            raise _conflict(f"A key named {name!r} exists already.")
        return self._key_view(record), secret

    def set_key_disabled(self, name: str, disabled: bool) -> dict[str, object]:
        if not self.store.set_key_disabled(name, disabled):
            raise _not_found(f"No key named {name!r}.")
        for key in self.store.list_keys():
            if key.name == name:
                return self._key_view(key)
        raise _not_found(f"No key named {name!r}.")

    def remove_key(self, name: str) -> dict[str, object]:
        if not self.store.remove_key(name):
            raise _not_found(f"No key named {name!r}.")
        return {"name": name, "removed": True}

    @staticmethod
    def _key_view(key: ClientKey) -> dict[str, object]:
        view = key.to_dict()
        view.pop("digest", None)
        view["created_at"] = format_time(key.created_at) if key.created_at else None
        view["expires_at"] = format_time(key.expires_at) if key.expires_at is not None else None
        return view

    # -- usage and requests ----------------------------------------------------------------------

    def usage(self, by: str = "key", since: str = "7d") -> dict[str, object]:
        """Totals grouped by ``by`` (comma-separated ``USAGE_GROUPINGS``) since ``since``."""
        groups = tuple(g.strip() for g in by.split(",") if g.strip())
        unknown = [g for g in groups if g not in USAGE_GROUPINGS]
        if unknown:
            raise _bad(f"by must name one or more of {', '.join(USAGE_GROUPINGS)}.", "by")
        now = self.clock()
        try:
            start = parse_since(since, now)
        except ValueError as exc:
            raise _bad(str(exc), "since") from None
        totals = summarize_usage(self.store.usage(since=start), groups)
        return {
            "by": list(groups),
            "since": format_time(start),
            "totals": [
                {
                    **dict(zip(groups, t.group)),
                    "requests": t.requests,
                    "errors": t.errors,
                    "input_tokens": t.input_tokens,
                    "output_tokens": t.output_tokens,
                    "credits": t.credits,
                    "mean_ttfb": t.mean_ttfb,
                    "mean_duration": t.mean_duration,
                }
                for t in totals
            ],
        }

    def records(self, since: float) -> list[UsageRecord]:
        return self.store.usage(since=since)

    def recent_requests(self, limit: int = 50) -> list[dict[str, object]]:
        """The latest requests of the last day, errors first, newest first within each."""
        limit = max(1, min(limit, _RECENT))
        records = self.store.usage(since=self.clock() - 86400, limit=_RECENT)
        ordered = sorted(records, key=lambda r: (r.error is None and r.status < 400, -r.time))[:limit]
        return [_request_view(r) for r in ordered]


def _clear_disabled_reason(state: AccountState) -> AccountState:
    return replace(state, disabled_reason=None) if state.disabled_reason else state


def _request_view(record: UsageRecord) -> dict[str, object]:
    return {
        "time": format_time(record.time),
        "request_id": record.request_id,
        "key": record.key,
        "account": record.account,
        "model": record.model,
        "dialect": record.dialect,
        "stream": record.stream,
        "status": record.status,
        "error": record.error,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "credits": record.credits,
        "ttfb": record.ttfb,
        "duration": record.duration,
    }
