"""Usage totals: records summed per key, account, model and day; and the time rules around them
(the day of a record, the retention cutoff, what ``--since`` means).

One implementation for every reader (the ``kiro2api usage`` command, the admin API, the
dashboard), so their numbers cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ._usage_record import UsageRecord

__all__ = ["UsageTotals", "GROUPINGS", "summarize_usage", "usage_day", "retention_cutoff", "parse_since"]

_DAY = 86400.0

#: What totals may be grouped by.
GROUPINGS = ("key", "account", "model", "day", "dialect")


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageTotals:
    """The sums of one group of records; ``group`` holds the group's values, in ``by`` order
    (``-`` for a record without one: no account was reached, no key was accepted)."""

    group: tuple[str, ...]
    requests: int = 0
    #: Error answers, and answers that ended with an error after they started.
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    credits: float = 0.0
    #: Mean time to first byte of the answers that sent one (seconds), None if none did.
    mean_ttfb: float | None = None
    #: Mean duration (seconds).
    mean_duration: float = 0.0
    #: The first and last request times of the group (Unix seconds).
    first: float = 0.0
    last: float = 0.0


def usage_day(when: float) -> str:
    """The UTC day of ``when`` (Unix seconds), ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d")


def _value(record: UsageRecord, field: str) -> str:
    if field == "day":
        return usage_day(record.time)
    value = getattr(record, field)
    return "-" if value is None else str(value)


class _Sum:
    __slots__ = ("requests", "errors", "input_tokens", "output_tokens", "credits", "ttfb", "ttfbs", "duration",
                 "first", "last")

    def __init__(self, when: float) -> None:
        self.requests = self.errors = self.input_tokens = self.output_tokens = self.ttfbs = 0
        self.credits = self.ttfb = self.duration = 0.0
        self.first = self.last = when

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        self.errors += record.failed
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.credits += record.credits
        if record.ttfb is not None:
            self.ttfb += record.ttfb
            self.ttfbs += 1
        self.duration += record.duration
        self.first = min(self.first, record.time)
        self.last = max(self.last, record.time)


def summarize_usage(records: Iterable[UsageRecord], by: Sequence[str] = ("key",)) -> list[UsageTotals]:
    """Sum ``records`` per distinct value of the ``by`` fields (each one of ``GROUPINGS``; none:
    one grand total), ordered by group.

    Raises:
        ValueError: a ``by`` field that is not one of ``GROUPINGS``.
    """
    unknown = [f for f in by if f not in GROUPINGS]
    if unknown:
        raise ValueError(f"usage cannot be grouped by {', '.join(unknown)} (choose from {', '.join(GROUPINGS)})")
    sums: dict[tuple[str, ...], _Sum] = {}
    for record in records:
        group = tuple(_value(record, f) for f in by)
        total = sums.get(group)
        if total is None:
            total = sums[group] = _Sum(record.time)
        total.add(record)
    return [
        UsageTotals(
            group=group,
            requests=s.requests,
            errors=s.errors,
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            credits=round(s.credits, 6),
            mean_ttfb=s.ttfb / s.ttfbs if s.ttfbs else None,
            mean_duration=s.duration / s.requests,
            first=s.first,
            last=s.last,
        )
        for group, s in sorted(sums.items())
    ]


def retention_cutoff(now: float, days: float) -> float:
    """Records older than this (Unix seconds) are past a retention of ``days`` days."""
    return now - days * _DAY


_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": _DAY, "w": 7 * _DAY}


def parse_since(text: str, now: float) -> float:
    """The Unix time ``text`` names: a duration back from ``now`` (``90m``, ``24h``, ``7d``,
    ``2w``), ``today`` (UTC midnight), a date (``2025-06-01``, UTC) or an ISO 8601 time
    (``2025-06-01T12:00:00Z``; without a zone, UTC).

    Raises:
        ValueError: none of these.
    """
    value = text.strip()
    match = _RELATIVE.fullmatch(value)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2).lower()]
    if value.lower() == "today":
        return now - now % _DAY
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a duration such as 24h or 7d, today, a date (2025-06-01) "
            "or an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
