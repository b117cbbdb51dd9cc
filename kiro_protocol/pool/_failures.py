"""The failure rules of the pool as one pure function: an upstream failure in, a verdict out.

=====================  ==============================================================
failure class          verdict
=====================  ==============================================================
INVALID_TOKEN          first time for this account in this request: forget the token,
(401/403)              refresh, retry the same account; again -> ``MarkedInvalid``
QUOTA_EXHAUSTED        ``QuotaExhausted`` (until the reset), another account
(402, MONTHLY_...)
THROTTLED (429/408)    ``Throttled`` (exponential back-off, jitter), another account;
                       never a disable
SERVER_ERROR (5xx),    another account; no mark (upstream trouble is rarely the
CONNECTION_FAILED      account's)
INPUT_TOO_LONG,        answer the client with the error: another account would fail
MALFORMED_REQUEST,     the same way
BAD_REQUEST (4xx)
TOOL_CALL_CUT          answer with the error, counted as a cut (no failure of the
                       account); ``ModelCall`` asks once more before it comes to this
=====================  ==============================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

from ._accounts import PoolSettings
from ._updates import AccountUpdate, MarkedInvalid, QuotaExhausted, Throttled, TokenRejected
from ._upstream_errors import FailureClass, UpstreamFailure

__all__ = ["Verdict", "FailureVerdict", "judge_failure", "retry_after_seconds"]


class Verdict(enum.Enum):
    #: The client's fault: answer with ``failure.client_error``, no retry.
    RESPOND = "respond"
    #: Refresh the account's token and send again on the same account.
    RETRY_SAME = "retry_same"
    #: Mark (maybe) and move to another account.
    RETRY_ELSEWHERE = "retry_elsewhere"


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureVerdict:
    verdict: Verdict
    #: Why, for the log and the "no account available" error (no secrets).
    reason: str
    #: What happens to the account's stored state.
    update: AccountUpdate | None
    #: Usage counters to add.
    counters: tuple[tuple[str, float], ...]


_FAILED = (("requests", 1.0), ("failures", 1.0))
_CLIENT_ERROR = (("requests", 1.0), ("client_errors", 1.0))
_TOOL_CALL_CUT = (("tool_calls_cut", 1.0),)


def judge_failure(
    failure: UpstreamFailure,
    *,
    sent_token: str,
    auth_retried: bool,
    now: float,
    jitter: float,
    settings: PoolSettings,
    retry_after: float | None = None,
) -> FailureVerdict:
    """Apply the table above.

    Args:
        failure: the classified failure (``classify_upstream_failure`` and friends).
        sent_token: the access token the failed request carried.
        auth_retried: whether this request already refreshed-and-retried this account.
        jitter: a random float in [0, 1] for the back-off.
        retry_after: upstream's ``Retry-After``, in seconds, if any.
    """
    cls = failure.failure_class
    what = f"HTTP {failure.status}: {failure.message}" if failure.status not in (0, 200) else failure.message
    if cls is FailureClass.TOOL_CALL_CUT:
        return FailureVerdict(verdict=Verdict.RESPOND, reason=what, update=None, counters=_TOOL_CALL_CUT)
    if not cls.retry_elsewhere:
        return FailureVerdict(verdict=Verdict.RESPOND, reason=what, update=None, counters=_CLIENT_ERROR)
    if cls is FailureClass.INVALID_TOKEN:
        if not auth_retried:
            return FailureVerdict(
                verdict=Verdict.RETRY_SAME,
                reason=f"token rejected ({what})",
                update=TokenRejected(access_token=sent_token),
                counters=_FAILED,
            )
        reason = f"access token rejected again after a refresh ({what})"
        update: AccountUpdate | None = MarkedInvalid(reason=reason, until=now + settings.invalid_quarantine)
    elif cls is FailureClass.QUOTA_EXHAUSTED:
        reason = f"quota exhausted ({what})"
        update = QuotaExhausted(reason=what, now=now, settings=settings)
    elif cls is FailureClass.THROTTLED:
        reason = f"throttled ({what})"
        update = Throttled(reason=what, now=now, jitter=jitter, settings=settings, retry_after=retry_after)
    else:
        reason = f"upstream failed ({what})"
        update = None
    return FailureVerdict(verdict=Verdict.RETRY_ELSEWHERE, reason=reason, update=update, counters=_FAILED)


def retry_after_seconds(headers: Sequence[tuple[str, str]]) -> float | None:
    """A numeric ``Retry-After`` header, in seconds (HTTP dates are ignored)."""
    for name, value in headers:
        if name.lower() == "retry-after":
            try:
                seconds = float(value.strip())
            except ValueError:
                return None
            return seconds if 0 <= seconds < 86400 else None
    return None
