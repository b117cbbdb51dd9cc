"""What a key's limits decide: admit a model request or refuse it (429), and which models it may
ask for (403).

The counters behind the decision are shared through the state store, so that replicas on one
Redis share a key's limits. The runtime records the request in them first (one atomic step:
``KeyCounts`` is what the store saw, this request included), then asks ``key_admission``; a
refused request is taken back out of the counters, so refusals never use up the rate.

* rate: a rolling window of ``KEY_RATE_WINDOW`` seconds (not fixed minutes: no double burst at a
  minute's edge); the answer's ``retry-after`` is when the oldest request leaves the window;
* concurrency: requests running now, each held until it ends (or, after a crash, until its hold
  lapses);
* tokens: input plus output tokens of finished requests per UTC day and per UTC calendar month.
  A request is admitted while the total is under the quota, so the last one may go over it.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from .._errors import ErrorKind, LocalProtocolError
from ._record import ClientKey, format_time

__all__ = [
    "KEY_RATE_WINDOW",
    "KeyCounts",
    "QuotaPeriods",
    "KeyLimitError",
    "quota_periods",
    "key_admission",
    "model_refusal",
    "model_allowed",
]

#: Seconds of the rolling window ``rpm`` counts in.
KEY_RATE_WINDOW = 60.0
# A concurrency refusal cannot know when a running request ends: ask again soon.
_CONCURRENCY_RETRY = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaPeriods:
    """The token-quota periods a moment falls in (UTC), and when each ends."""

    #: ``2026-01-31``: the day's counter.
    day: str
    #: ``2026-01``: the month's counter.
    month: str
    day_ends: float
    month_ends: float


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyCounts:
    """A key's shared counters as the store saw them when it recorded this request."""

    #: Requests in the rate window, this one included.
    requests_in_window: int = 0
    #: When the oldest of them started (epoch seconds), if any.
    oldest_in_window: float | None = None
    #: Requests running now, this one included.
    in_flight: int = 0
    #: Tokens used today and this month (``QuotaPeriods``).
    tokens_today: int = 0
    tokens_this_month: int = 0


class KeyLimitError(LocalProtocolError):
    """A key's limit refuses the request: 429 ``rate_limit_error`` with ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, kind=ErrorKind.RATE_LIMIT)
        self.retry_after = retry_after


def quota_periods(now: float) -> QuotaPeriods:
    """The UTC day and month ``now`` falls in."""
    moment = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    next_day = day_start + datetime.timedelta(days=1)
    month_start = day_start.replace(day=1)
    next_month = (month_start + datetime.timedelta(days=32)).replace(day=1)
    return QuotaPeriods(
        day=day_start.strftime("%Y-%m-%d"),
        month=month_start.strftime("%Y-%m"),
        day_ends=next_day.timestamp(),
        month_ends=next_month.timestamp(),
    )


def key_admission(key: ClientKey, counts: KeyCounts, now: float) -> KeyLimitError | None:
    """None to admit the request ``counts`` describes, or the error to answer (and to take the
    request back out of the counters). Token quotas come first: their wait is the longest, and
    a client told to retry in a second would be refused again until the reset."""
    limits = key.limits
    periods: QuotaPeriods | None = None
    if limits.tokens_per_month and counts.tokens_this_month >= limits.tokens_per_month:
        periods = quota_periods(now)
        return _quota_error(key.name, "monthly", limits.tokens_per_month, periods.month_ends, now)
    if limits.tokens_per_day and counts.tokens_today >= limits.tokens_per_day:
        periods = quota_periods(now)
        return _quota_error(key.name, "daily", limits.tokens_per_day, periods.day_ends, now)
    if limits.rpm and counts.requests_in_window > limits.rpm:
        oldest = counts.oldest_in_window if counts.oldest_in_window is not None else now
        wait = max(1.0, oldest + KEY_RATE_WINDOW - now)
        return KeyLimitError(
            f"Rate limit of key {key.name!r} reached: {_requests(limits.rpm)} per minute; "
            f"retry in {math.ceil(wait)} s.",
            retry_after=wait,
        )
    if limits.concurrency and counts.in_flight > limits.concurrency:
        return KeyLimitError(
            f"Concurrency limit of key {key.name!r} reached: {_requests(limits.concurrency)} at once; "
            "retry when one has finished.",
            retry_after=_CONCURRENCY_RETRY,
        )
    return None


def _requests(n: int) -> str:
    return "1 request" if n == 1 else f"{n} requests"


def _quota_error(name: str, which: str, quota: int, resets: float, now: float) -> KeyLimitError:
    return KeyLimitError(
        f"The {which} token quota of key {name!r} ({quota} tokens) is used up; "
        f"it resets at {format_time(resets)}.",
        retry_after=max(1.0, resets - now),
    )


def model_allowed(key: ClientKey, model: str) -> bool:
    """Whether ``key`` may ask for ``model`` (as the client named it)."""
    patterns = key.limits.models
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.endswith("*"):
            if model.startswith(pattern[:-1]):
                return True
        elif model == pattern:
            return True
    return False


def model_refusal(key: ClientKey | None, model: str) -> LocalProtocolError | None:
    """None when ``key`` may use ``model``, else the 403 ``permission_error`` to answer."""
    if key is None or model_allowed(key, model):
        return None
    allowed = ", ".join(key.limits.models)
    return LocalProtocolError(
        f"Key {key.name!r} may not use model {model!r}; it may use: {allowed}.",
        kind=ErrorKind.PERMISSION,
        param="model",
    )
