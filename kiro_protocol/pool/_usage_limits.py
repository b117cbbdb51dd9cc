"""``getUsageLimits``: the request, the answer, and the remaining credits
(docs/kiro-protocol.md, Usage limits).

The pool calls it off the request path, at most every few minutes per account (the Go reference
calls it for every account on a timer while holding the pool lock, and on every status-page view).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..http._messages import HttpRequest
from ._credentials import AccountConfig
from ._kiro_identity import ClientVersions, Endpoints, api_region, usage_limits_headers

__all__ = ["UsageLimits", "UsageLimitsError", "build_usage_limits_request", "parse_usage_limits", "remaining_credits"]


class UsageLimitsError(ValueError):
    """The usage answer is not the JSON object it should be."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageLimits:
    """What the pool keeps from a usage answer."""

    #: Credits left (base + active free trial + active bonuses, never negative).
    remaining: float
    #: Total limit and current usage over the same sources.
    limit: float
    used: float
    #: When the quota resets (seconds since the epoch), if known.
    next_reset_at: float | None
    subscription_title: str | None


def build_usage_limits_request(
    account: AccountConfig,
    *,
    access_token: str,
    profile_arn: str | None,
    versions: ClientVersions,
    endpoints: Endpoints,
    invocation_id: str,
) -> HttpRequest:
    """The ``getUsageLimits`` GET for ``account`` (in the region of its profileArn)."""
    arn = profile_arn or account.profile_arn
    url = endpoints.usage_limits_url(api_region(account, arn, endpoints.default_region), arn)
    headers = usage_limits_headers(
        account=account, access_token=access_token, url=url, invocation_id=invocation_id, versions=versions
    )
    return HttpRequest(method="GET", url=url, headers=headers)


def _number(obj: dict[str, Any], *keys: str) -> float:
    """The first finite number among ``keys`` (precise fields first), else 0."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return 0.0


def _active(obj: object) -> dict[str, Any] | None:
    if isinstance(obj, dict) and obj.get("freeTrialStatus", obj.get("status")) == "ACTIVE":
        return obj
    return None


def remaining_credits(document: object) -> tuple[float, float, float]:
    """(remaining, limit, used) of a usage answer (docs/kiro-protocol.md, Usage limits).

    The first ``CREDIT`` breakdown counts, plus its free trial when ``ACTIVE``, plus its
    ``ACTIVE`` bonuses ([PY]); no CREDIT breakdown means nothing is left; never negative.
    """
    if not isinstance(document, dict):
        return 0.0, 0.0, 0.0
    breakdowns = document.get("usageBreakdownList")
    if not isinstance(breakdowns, list):
        return 0.0, 0.0, 0.0
    credit = next((b for b in breakdowns if isinstance(b, dict) and b.get("resourceType") == "CREDIT"), None)
    if credit is None:
        return 0.0, 0.0, 0.0
    limit = _number(credit, "usageLimitWithPrecision", "usageLimit")
    used = _number(credit, "currentUsageWithPrecision", "currentUsage")
    extras: list[dict[str, Any]] = []
    trial = _active(credit.get("freeTrialInfo"))
    if trial is not None:
        extras.append(trial)
    bonuses = credit.get("bonuses")
    if isinstance(bonuses, list):
        extras.extend(b for b in map(_active, bonuses) if b is not None)
    for extra in extras:
        limit += _number(extra, "usageLimitWithPrecision", "usageLimit")
        used += _number(extra, "currentUsageWithPrecision", "currentUsage")
    remaining = limit - used
    return (remaining if remaining > 0 and math.isfinite(remaining) else 0.0), limit, used


def parse_usage_limits(body: bytes) -> UsageLimits:
    """Parse a 200 answer of ``getUsageLimits``.

    Raises:
        UsageLimitsError: the body is not a JSON object.
    """
    try:
        document = json.loads(body)
    except ValueError:
        raise UsageLimitsError("usage answer is not JSON") from None
    if not isinstance(document, dict):
        raise UsageLimitsError("usage answer is not a JSON object")
    remaining, limit, used = remaining_credits(document)
    reset = _number(document, "nextDateReset") or None
    subscription = document.get("subscriptionInfo")
    title = subscription.get("subscriptionTitle") if isinstance(subscription, dict) else None
    return UsageLimits(
        remaining=remaining,
        limit=limit,
        used=used,
        next_reset_at=reset if reset is not None and reset > 0 else None,
        subscription_title=title if isinstance(title, str) else None,
    )
