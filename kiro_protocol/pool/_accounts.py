"""The account pool's decisions: account state, what makes an account usable, which one to pick.

Pure functions of (configs, states, now). What must outlive a request (tokens, rotated refresh
tokens, cooldowns, marks, credits) is an ``AccountState`` value that the adapters keep in a state
store (memory, SQLite, Redis) as JSON; changes to it are ``AccountUpdate`` values applied by the
store atomically to its freshest copy, so replicas sharing a store merge instead of overwriting.

Rules (issue 5; the peers' failures they avoid: docs/kiro-protocol.md, What peers get wrong):

* 429 cools an account down with exponential back-off and jitter; it never disables it.
* 402 / ``MONTHLY_REQUEST_COUNT`` marks it exhausted until the quota resets.
* a fresh access token rejected with 401/403 marks it invalid, with the reason, for a while.
* a refresh answered ``invalid_grant`` disables it (until the configured token changes).
* a refresh failing otherwise backs off per account; the other accounts keep serving.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from .._errors import ErrorKind, LocalProtocolError, RemoteProtocolError
from ._credentials import AccountConfig, ConfigurationError
from ._kiro_identity import ClientVersions, Endpoints

__all__ = [
    "Strategy",
    "parse_strategy",
    "PoolSettings",
    "AccountState",
    "TokenStatus",
    "token_status",
    "unavailable_reason",
    "comes_back_at",
    "offers_model",
    "choose_account",
    "backoff_delay",
    "NoAccountAvailableError",
    "no_account_error",
    "model_not_offered_error",
]


class Strategy(enum.Enum):
    """``TOKEN_SELECTION_STRATEGY``: which usable account serves the next request."""

    #: The first usable account in configuration order, until it is out (the original's behaviour).
    SEQUENTIAL = "sequential"
    #: The account with the most remaining credits (accounts not yet checked are tried first).
    OPTIMAL = "optimal"
    #: The usable account used least recently (shared through the store across replicas).
    ROUND_ROBIN = "round_robin"


def parse_strategy(text: str) -> Strategy:
    """Parse ``TOKEN_SELECTION_STRATEGY`` (case-insensitive, ``-`` or ``_``)."""
    key = text.strip().lower().replace("-", "_")
    for strategy in Strategy:
        if strategy.value == key:
            return strategy
    choices = ", ".join(s.value for s in Strategy)
    raise ConfigurationError(f"TOKEN_SELECTION_STRATEGY must be one of {choices}, not {text[:30]!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    """Operator knobs of the pool; times in seconds. The adapter builds it from settings."""

    strategy: Strategy = Strategy.OPTIMAL
    #: Refresh this long before expiry (on the request path only when the token is unusable).
    refresh_margin: float = 300.0
    #: A token with less validity than this left is not sent (it could expire in flight).
    min_token_validity: float = 30.0
    #: A refresh lease expires after this long, so a crashed refresher cannot block an account
    #: for good. It must exceed the adapter's timeout for refresh calls (60 s), or a slow
    #: refresh could overlap the next one.
    lease_ttl: float = 90.0
    #: A request waits this long for another request's refresh of an unusable token, then
    #: moves to another account.
    max_refresh_wait: float = 10.0
    #: How soon a request waiting for another refresher first looks again (then less often).
    lease_poll: float = 0.25
    #: 429 back-off: base * 2**level, capped, with jitter (half to full delay).
    throttle_base: float = 5.0
    throttle_cap: float = 300.0
    #: Transient refresh failures back off per account the same way.
    refresh_retry_base: float = 10.0
    refresh_retry_cap: float = 600.0
    #: 402 without a known reset date: look again (usage check) after this long.
    exhausted_recheck: float = 3600.0
    #: A rejected fresh token keeps the account out this long, then it gets another chance.
    invalid_quarantine: float = 3600.0
    #: At most one usage check per account per interval, off the request path.
    usage_check_interval: float = 300.0
    #: Upstream sends per client request (the same-account retry after a refresh counts).
    max_attempts: int = 4
    #: ``KIRO_WAIT_FOR_ACCOUNT_SECONDS``: when every account is only temporarily out (cooling
    #: down, its refresh backing off, at its connection cap), a request waits this long at most
    #: for the first one to come back; past it, 429 with ``retry-after`` (docs/accounts.md).
    max_account_wait: float = 30.0
    #: ``KIRO_MAX_CONNECTIONS_PER_ACCOUNT``: upstream calls in flight per account and process.
    max_connections_per_account: int = 100
    #: How often a request waiting for a connection slot looks again (the driver wakes it
    #: sooner when a slot frees).
    slot_poll: float = 1.0
    versions: ClientVersions = ClientVersions()
    endpoints: Endpoints = Endpoints()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.max_connections_per_account < 1:
            raise ConfigurationError("max_connections_per_account must be at least 1")
        if self.max_account_wait < 0:
            raise ConfigurationError("max_account_wait must not be negative")
        if self.min_token_validity > self.refresh_margin:
            raise ConfigurationError("min_token_validity must not exceed refresh_margin")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountState:
    """Everything about one account that outlives a request. Stored as JSON; secrets masked in repr."""

    access_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0
    #: The newest refresh token when it rotated (wins over the configured one).
    refresh_token: str | None = field(default=None, repr=False)
    profile_arn: str | None = None
    #: Permanent (refresh token dead): the account is out until its configuration changes.
    disabled_reason: str | None = None
    invalid_reason: str | None = None
    invalid_until: float = 0.0
    exhausted_reason: str | None = None
    exhausted_until: float = 0.0
    cooldown_reason: str | None = None
    cooldown_until: float = 0.0
    #: Consecutive throttles: the exponent of the 429 back-off (reset by a success).
    throttle_level: int = 0
    refresh_error: str | None = None
    refresh_failures: int = 0
    refresh_retry_at: float = 0.0
    remaining_credits: float | None = None
    next_reset_at: float | None = None
    subscription_title: str | None = None
    usage_checked_at: float = 0.0
    last_used_at: float = 0.0
    #: The Kiro model ids the account's tier offers (``ListAvailableModels``); None: not known
    #: yet, and then every model is tried.
    models: tuple[str, ...] | None = None

    def to_json(self) -> str:
        """Serialise for a store (compact JSON; holds secrets, so stores must be private)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> AccountState:
        """Read a stored state; unknown keys are ignored and a corrupt record reads as fresh."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(raw, dict):
            return cls()
        values: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            if f.name not in raw:
                continue
            if f.name == "models":
                models = raw["models"]
                if isinstance(models, list) and all(isinstance(m, str) for m in models):
                    values["models"] = tuple(models)
                continue
            value, default = raw[f.name], getattr(defaults, f.name)
            if _same_kind(value, default, f.name):
                values[f.name] = float(value) if isinstance(default, float) else value
        return cls(**values)


_OPTIONAL_FLOATS = {"remaining_credits", "next_reset_at"}


def _same_kind(value: object, default: object, name: str) -> bool:
    if name in _OPTIONAL_FLOATS:
        return value is None or _finite(value)
    if default is None:
        return value is None or isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int) and not isinstance(default, float):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return _finite(value)
    return False


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TokenStatus(enum.Enum):
    #: Valid beyond the refresh margin: send with it.
    FRESH = "fresh"
    #: Inside the refresh margin but still valid: refresh if nobody else is, else send with it.
    EXPIRING = "expiring"
    #: Missing, expired or about to: must refresh before sending.
    UNUSABLE = "unusable"


def token_status(state: AccountState, now: float, settings: PoolSettings) -> TokenStatus:
    """How usable the stored access token is at ``now``."""
    if not state.access_token or state.expires_at - settings.min_token_validity <= now:
        return TokenStatus.UNUSABLE
    if state.expires_at - settings.refresh_margin <= now:
        return TokenStatus.EXPIRING
    return TokenStatus.FRESH


def backoff_delay(level: int, *, base: float, cap: float, jitter: float) -> float:
    """Exponential back-off with "equal jitter": half the delay fixed, half scaled by ``jitter``.

    ``jitter`` is a random float in [0, 1] supplied by the caller (the core draws no randomness);
    out-of-range values are clamped. The result lies in [d/2, d] for d = min(cap, base * 2**level).
    """
    jitter = 0.0 if math.isnan(jitter) else min(1.0, max(0.0, jitter))
    delay = min(cap, base * 2.0 ** min(max(level, 0), 30))
    return delay / 2 + delay / 2 * jitter


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):  # a stored time beyond year 9999
        return "a far future date"


def _for(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def unavailable_reason(account: AccountConfig, state: AccountState, now: float) -> str | None:
    """Why ``account`` cannot serve a request at ``now``, or None when it can."""
    if account.disabled:
        return "disabled in the configuration"
    if state.disabled_reason:
        return f"disabled: {state.disabled_reason}"
    if state.invalid_until > now:
        return f"invalid ({state.invalid_reason or 'token rejected'}); next try in {_for(state.invalid_until - now)}"
    if state.exhausted_until > now:
        return f"quota exhausted ({state.exhausted_reason or 'no credits left'}) until {_when(state.exhausted_until)}"
    if state.cooldown_until > now:
        return f"cooling down for {_for(state.cooldown_until - now)} after {state.cooldown_reason or 'throttling'}"
    if state.refresh_retry_at > now and not (state.access_token and state.expires_at > now):
        error = state.refresh_error or "unknown error"
        return f"token refresh failing ({error}); next try in {_for(state.refresh_retry_at - now)}"
    return None


def _out_until(state: AccountState, now: float) -> float | None:
    """When a temporarily unusable account comes back (None when permanently out or usable)."""
    if state.disabled_reason:
        return None
    ends = (state.invalid_until, state.exhausted_until, state.cooldown_until, state.refresh_retry_at)
    times = [t for t in ends if t > now]
    return max(times) if times else None


def comes_back_at(account: AccountConfig, state: AccountState, now: float) -> float | None:
    """When an account that is only briefly out (cooling down, its refresh backing off) is
    usable again; None when it is usable now or out for long (disabled, invalid, exhausted).

    A request may wait for such an account (``PoolSettings.max_account_wait``); it never waits
    for a quarantine or a monthly quota.
    """
    if account.disabled or state.disabled_reason or state.invalid_until > now or state.exhausted_until > now:
        return None
    until = state.cooldown_until if state.cooldown_until > now else None
    if state.refresh_retry_at > now and not (state.access_token and state.expires_at > now):
        until = max(until or 0.0, state.refresh_retry_at)
    return until


def offers_model(state: AccountState, model_id: str | None) -> bool:
    """Whether the account's tier offers ``model_id`` (true while its catalogue is unknown)."""
    return model_id is None or state.models is None or model_id in state.models


def choose_account(
    accounts: Sequence[AccountConfig],
    states: Mapping[str, AccountState],
    now: float,
    strategy: Strategy,
    *,
    exclude: frozenset[str] = frozenset(),
) -> AccountConfig | None:
    """The usable account ``strategy`` picks, or None when none is usable.

    ``exclude`` holds the account ids that already failed this request.
    """
    usable = [
        a
        for a in accounts
        if a.account_id not in exclude and unavailable_reason(a, states.get(a.account_id, _FRESH), now) is None
    ]
    if not usable:
        return None

    def state(a: AccountConfig) -> AccountState:
        return states.get(a.account_id, _FRESH)

    if strategy is Strategy.SEQUENTIAL:
        return usable[0]
    if strategy is Strategy.ROUND_ROBIN:
        return min(usable, key=lambda a: (state(a).last_used_at, a.index))
    # OPTIMAL: accounts never checked first (one use gives them a token, and the background
    # check then learns their credits), then the most credits; then least recently used.
    return min(
        usable,
        key=lambda a: (
            state(a).remaining_credits is not None,
            -(state(a).remaining_credits or 0.0),
            state(a).last_used_at,
            a.index,
        ),
    )


_FRESH = AccountState()


class NoAccountAvailableError(RemoteProtocolError):
    """No account can serve the request; the message says why each one is out.

    Attributes:
        reasons: ``(account label, why it is out)`` for every configured account.
        retry_after: seconds until the first temporarily unusable account comes back, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        reasons: tuple[tuple[str, str], ...],
        retry_after: float | None,
        kind: ErrorKind,
        status_hint: int,
    ) -> None:
        super().__init__(message, kind=kind, status_hint=status_hint)
        self.reasons = reasons
        self.retry_after = retry_after


def no_account_error(
    accounts: Sequence[AccountConfig],
    states: Mapping[str, AccountState],
    now: float,
    *,
    failed: Mapping[str, str] | None = None,
    last_error: RemoteProtocolError | None = None,
    out_of_wait: tuple[float, float] | None = None,
) -> NoAccountAvailableError:
    """The "no account available" error, listing every account and why it is out.

    Args:
        failed: accounts that failed this very request, with what happened.
        last_error: the last upstream failure of this request; its kind and status are kept
            (a request that met only 5xx answers says "overloaded", not "no account").
        out_of_wait: ``(seconds waited, seconds until the first account is back)`` when the
            request gives up because that is past its wait budget: always 429 with that
            ``retry_after``, whatever the request met on the way.
    """
    failed = failed or {}
    reasons: list[tuple[str, str]] = []
    comebacks: list[float] = []
    for account in accounts:
        state = states.get(account.account_id, _FRESH)
        why = failed.get(account.account_id) or unavailable_reason(account, state, now) or "usable"
        reasons.append((account.label, why))
        until = _out_until(state, now)
        if until is not None and account.account_id not in failed and not account.disabled:
            comebacks.append(until - now)
    retry_after = min(comebacks) if comebacks else None
    detail = "; ".join(f"{label}: {why}" for label, why in reasons)
    message = f"No Kiro account is available. {detail}" if reasons else "No Kiro account is configured."
    if out_of_wait is not None:
        waited, retry_after = out_of_wait
        if waited > 0:
            message = (
                f"No Kiro account is available within the wait budget (waited {waited:.0f} s; the "
                f"first account is back in {_for(retry_after)}). {detail}"
            )
        kind, status = ErrorKind.RATE_LIMIT, 429
    elif last_error is not None:
        kind, status = last_error.kind, last_error.status_hint
    elif retry_after is not None:
        kind, status = ErrorKind.RATE_LIMIT, 429
    else:
        kind, status = ErrorKind.API, 503
    return NoAccountAvailableError(
        message, reasons=tuple(reasons), retry_after=retry_after, kind=kind, status_hint=status
    )



def model_not_offered_error(
    accounts: Sequence[AccountConfig], states: Mapping[str, AccountState], model_id: str
) -> LocalProtocolError:
    """404 ``not_found_error``: no usable account's tier offers ``model_id``.

    404 like Anthropic's and OpenAI's answer for a model the key has no access to: the request
    is valid, but asking again will not help until an account with another tier is configured.
    The message names the model and the tiers (subscription titles) that lack it.
    """
    tiers = sorted(
        {
            states.get(a.account_id, _FRESH).subscription_title or "unknown tier"
            for a in accounts
            if not offers_model(states.get(a.account_id, _FRESH), model_id)
        }
    )
    return LocalProtocolError(
        f"The model {model_id} is not offered by any configured Kiro account: the tier"
        f"{'s' if len(tiers) > 1 else ''} {', '.join(tiers)} lack{'' if len(tiers) > 1 else 's'} it.",
        kind=ErrorKind.NOT_FOUND,
        status_hint=404,
        param="model",
    )
