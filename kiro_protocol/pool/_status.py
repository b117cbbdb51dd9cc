"""A status view of the pool that is safe to show (unlike peers': docs/kiro-protocol.md, What
peers get wrong).

No token, no token preview, no client id, no machine id, no e-mail: only what an operator needs
to see why an account is or is not serving. Building it costs no upstream call (the Go
reference refreshes every account on every view of its status page).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping, Sequence

from ._accounts import AccountState, unavailable_reason
from ._credentials import AccountConfig

__all__ = ["account_status", "pool_status"]


def _iso(timestamp: float | None) -> str | None:
    if not timestamp:
        return None
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # a stored time beyond year 9999
        return None


def _status(account: AccountConfig, state: AccountState, now: float) -> str:
    if account.disabled or state.disabled_reason:
        return "disabled"
    if state.invalid_until > now:
        return "invalid"
    if state.exhausted_until > now:
        return "exhausted"
    if state.cooldown_until > now:
        return "cooling_down"
    if unavailable_reason(account, state, now) is not None:
        return "refresh_failing"
    return "usable"


def _last_error(state: AccountState) -> str | None:
    """The latest trouble the state remembers, most lasting first (these are reasons, never
    values: no token is ever in them)."""
    for reason in (state.disabled_reason, state.invalid_reason, state.exhausted_reason, state.refresh_error,
                   state.cooldown_reason):
        if reason:
            return reason
    return None


def account_status(
    account: AccountConfig, state: AccountState, now: float, counters: Mapping[str, float] | None = None
) -> dict[str, object]:
    """One account's public status (JSON-ready)."""
    has_token = bool(state.access_token) and state.expires_at > now
    return {
        "id": account.account_id,
        "index": account.index,
        "description": account.description,
        "auth": account.auth.value,
        "status": _status(account, state, now),
        "reason": unavailable_reason(account, state, now),
        "cooldown_until": _iso(state.cooldown_until) if state.cooldown_until > now else None,
        "last_error": _last_error(state),
        "token_valid_for_seconds": int(state.expires_at - now) if has_token else None,
        "remaining_credits": state.remaining_credits,
        "subscription": state.subscription_title,
        "quota_resets_at": _iso(state.next_reset_at),
        "usage_checked_at": _iso(state.usage_checked_at),
        "last_used_at": _iso(state.last_used_at),
        "counters": dict(counters or {}),
    }


def pool_status(
    accounts: Sequence[AccountConfig],
    states: Mapping[str, AccountState],
    now: float,
    counters: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, object]:
    """The whole pool's public status: totals and one entry per configured account."""
    counters = counters or {}
    entries = [
        account_status(a, states.get(a.account_id, AccountState()), now, counters.get(a.account_id))
        for a in accounts
    ]
    return {
        "total": len(entries),
        "usable": sum(1 for e in entries if e["status"] == "usable"),
        "accounts": entries,
    }
