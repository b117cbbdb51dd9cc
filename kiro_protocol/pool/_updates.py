"""Changes to an account's state, as values: what happened, and how it changes ``AccountState``.

A store applies ``update.apply`` to its freshest copy inside one atomic step (a lock, a SQLite
transaction, a Redis WATCH/MULTI), so two replicas recording a 429 on the same account both
raise its back-off level instead of one overwriting the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from ._accounts import AccountState, PoolSettings, backoff_delay
from ._refresh import RefreshedToken, RefreshFailure
from ._usage_limits import UsageLimits

__all__ = [
    "AccountUpdate",
    "TokenRefreshed",
    "RefreshFailed",
    "TokenRejected",
    "MarkedInvalid",
    "QuotaExhausted",
    "Throttled",
    "Picked",
    "Served",
    "UsageChecked",
    "UsageCheckFailed",
    "CreditsUsed",
    "ModelsChecked",
]


class AccountUpdate:
    """Base of the update values. Don't subclass outside this module."""

    __slots__ = ()

    #: Applying it twice gives what applying it once gives. A driver whose store writes lag
    #: (queued for a writer) shows such an update to its other requests before it is stored,
    #: so it may apply it to a copy that already has it; the counting ones wait for the store.
    idempotent: ClassVar[bool] = True

    def apply(self, state: AccountState) -> AccountState:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRefreshed(AccountUpdate):
    """A refresh succeeded: new access token; a rotated refresh token replaces the old one."""

    token: RefreshedToken

    def apply(self, state: AccountState) -> AccountState:
        t = self.token
        return replace(
            state,
            access_token=t.access_token,
            expires_at=t.expires_at,
            refresh_token=t.refresh_token or state.refresh_token,
            profile_arn=t.profile_arn or state.profile_arn,
            refresh_error=None,
            refresh_failures=0,
            refresh_retry_at=0.0,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshFailed(AccountUpdate):
    """A refresh failed: permanent -> disabled; transient -> per-account back-off."""

    failure: RefreshFailure
    now: float
    jitter: float
    settings: PoolSettings = field(repr=False)

    idempotent: ClassVar[bool] = False  # counts the failures in a row

    def apply(self, state: AccountState) -> AccountState:
        if self.failure.permanent:
            return replace(state, disabled_reason=self.failure.message, access_token=None, expires_at=0.0)
        delay = backoff_delay(
            state.refresh_failures,
            base=self.settings.refresh_retry_base,
            cap=self.settings.refresh_retry_cap,
            jitter=self.jitter,
        )
        return replace(
            state,
            refresh_error=self.failure.message,
            refresh_failures=state.refresh_failures + 1,
            refresh_retry_at=self.now + delay,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRejected(AccountUpdate):
    """Upstream rejected this access token (401/403): forget it, so the next user refreshes."""

    access_token: str = field(repr=False)

    def apply(self, state: AccountState) -> AccountState:
        # Only if it is still the token that was rejected: another replica may have refreshed.
        if state.access_token != self.access_token:
            return state
        return replace(state, access_token=None, expires_at=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkedInvalid(AccountUpdate):
    """A just-refreshed token was rejected again: out, with the reason, for a quarantine."""

    reason: str
    until: float

    def apply(self, state: AccountState) -> AccountState:
        return replace(state, invalid_reason=self.reason, invalid_until=self.until, access_token=None, expires_at=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaExhausted(AccountUpdate):
    """402 / MONTHLY_REQUEST_COUNT: out until the reset (known from usage checks) or a recheck."""

    reason: str
    now: float
    settings: PoolSettings = field(repr=False)

    def apply(self, state: AccountState) -> AccountState:
        reset = state.next_reset_at
        until = reset if reset is not None and reset > self.now else self.now + self.settings.exhausted_recheck
        return replace(state, exhausted_reason=self.reason, exhausted_until=until, remaining_credits=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Throttled(AccountUpdate):
    """429: cooldown with exponential back-off and jitter; never a disable.

    ``retry_after`` (seconds, from upstream's header) lengthens the cooldown when it is longer.
    """

    reason: str
    now: float
    jitter: float
    settings: PoolSettings = field(repr=False)
    retry_after: float | None = None

    def apply(self, state: AccountState) -> AccountState:
        s = self.settings
        longest = s.throttle_cap * 12
        if state.throttle_level > 0 and state.cooldown_until > self.now:
            # A cooldown is already running: this 429 answers a request sent in the same burst.
            # One back-off step per burst, or twenty concurrent 429s would push it to the cap.
            until = state.cooldown_until
            if self.retry_after is not None:
                until = max(until, self.now + min(self.retry_after, longest))
            return replace(state, cooldown_reason=self.reason, cooldown_until=until)
        delay = backoff_delay(state.throttle_level, base=s.throttle_base, cap=s.throttle_cap, jitter=self.jitter)
        if self.retry_after is not None and self.retry_after > delay:
            delay = min(self.retry_after, longest)
        return replace(
            state,
            cooldown_reason=self.reason,
            cooldown_until=max(state.cooldown_until, self.now + delay),
            throttle_level=state.throttle_level + 1,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Picked(AccountUpdate):
    """Chosen by round robin at ``now``: recorded before the send, so that concurrent requests
    (and replicas) rotate instead of all picking the same least recently used account."""

    now: float

    def apply(self, state: AccountState) -> AccountState:
        return replace(state, last_used_at=max(state.last_used_at, self.now))


@dataclass(frozen=True, slots=True, kw_only=True)
class Served(AccountUpdate):
    """Upstream accepted a request: the account is healthy again, and was used at ``now``."""

    now: float

    def apply(self, state: AccountState) -> AccountState:
        return replace(
            state,
            throttle_level=0,
            invalid_reason=None,
            invalid_until=0.0,
            last_used_at=max(state.last_used_at, self.now),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageChecked(AccountUpdate):
    """A usage check answered: remaining credits; none left -> exhausted until the reset."""

    limits: UsageLimits
    now: float
    settings: PoolSettings = field(repr=False)

    def apply(self, state: AccountState) -> AccountState:
        u = self.limits
        state = replace(
            state,
            remaining_credits=u.remaining,
            next_reset_at=u.next_reset_at,
            subscription_title=u.subscription_title or state.subscription_title,
            usage_checked_at=self.now,
        )
        if u.remaining > 0:
            return replace(state, exhausted_reason=None, exhausted_until=0.0)
        reset = u.next_reset_at
        until = reset if reset and reset > self.now else self.now + self.settings.exhausted_recheck
        return replace(state, exhausted_reason="no credits left", exhausted_until=until)


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageCheckFailed(AccountUpdate):
    """A usage check failed: keep what we knew (a failed check is not an empty account, unlike
    the Go reference), and do not ask again before the interval."""

    now: float

    def apply(self, state: AccountState) -> AccountState:
        return replace(state, usage_checked_at=self.now)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditsUsed(AccountUpdate):
    """Credits metered by a finished request, subtracted from the last known balance."""

    credits: float

    idempotent: ClassVar[bool] = False  # subtracts

    def apply(self, state: AccountState) -> AccountState:
        if state.remaining_credits is None or not self.credits > 0:
            return state
        return replace(state, remaining_credits=max(0.0, state.remaining_credits - self.credits))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelsChecked(AccountUpdate):
    """The account's tier offers these Kiro model ids (None: the answer was only a first page)."""

    models: tuple[str, ...] | None

    def apply(self, state: AccountState) -> AccountState:
        return replace(state, models=self.models)
