"""One model request as usage accounting keeps it: who, which account and model, what it cost.

The runtime builds a ``UsageRecord`` when a model request ends (from what its access-log line
says) and the state store keeps it for the retention period. The record holds names, never
secrets: the client key's name, the account's masked label.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

__all__ = ["UsageRecord", "USAGE_FIELDS", "clip_label"]

#: The latest time a record may have (the year 3000): any day of it can be named.
_LAST_TIME = 32503680000.0
#: Longest stored label (model names come from clients: an absurd one is cut, not kept whole).
_MAX_LABEL = 120


def clip_label(value: str | None) -> str | None:
    """``value`` as it may be stored or shown: at most 120 characters, no control characters."""
    if value is None:
        return None
    if len(value) > _MAX_LABEL or not value.isprintable():
        value = "".join(c if c.isprintable() else "?" for c in value[:_MAX_LABEL])
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """One finished model request (``/v1/messages``, ``/v1/chat/completions``, ``/v1/responses``)."""

    #: When the request arrived, Unix seconds (wall clock).
    time: float
    #: The request id (``request-id`` of the answer).
    request_id: str
    #: The client key's name (``default`` for ``KIRO_CLIENT_TOKEN``), None if none was accepted.
    key: str | None
    #: The masked label of the account that served it (or was last tried), None if none was.
    account: str | None
    #: The model the client asked for, None if the body was not understood.
    model: str | None
    #: The client's dialect: ``anthropic``, ``openai`` or ``responses``.
    dialect: str
    #: Whether the client asked for a stream.
    stream: bool
    #: The HTTP status answered (499: the client left before any answer).
    status: int
    #: The error class of a failed request (an ``ErrorKind`` or failure class value), else None.
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    #: Kiro credits metered for the answer.
    credits: float = 0.0
    #: Seconds from the request head to the first byte of the answer, if one was sent.
    ttfb: float | None = None
    #: Seconds from the request head to the last byte.
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        """An error answer, or an answer that ended with an error after it started."""
        return self.status >= 400 or self.error is not None

    def to_json(self) -> str:
        """The record as one compact JSON object (the Redis store's member, exports)."""
        return json.dumps(
            [
                self.time, self.request_id, self.key, self.account, self.model, self.dialect, self.stream,
                self.status, self.error, self.input_tokens, self.output_tokens, self.credits, self.ttfb,
                self.duration,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> UsageRecord:
        """The record ``to_json`` wrote.

        Raises:
            ValueError: not a record (a corrupt or foreign value).
        """
        try:
            row = json.loads(text)
            return cls.from_row(row)
        except (TypeError, IndexError, OverflowError) as exc:
            raise ValueError(f"not a usage record: {exc}") from None

    @classmethod
    def from_row(cls, row: list[object] | tuple[object, ...]) -> UsageRecord:
        """A record from its fields in ``USAGE_FIELDS`` order (a SQL row, a JSON array).

        Raises:
            ValueError: not 14 fields, or a number that is not a finite one (a corrupt value;
                a time of infinity would break every sum by day).
        """
        (time, request_id, key, account, model, dialect, stream, status, error,
         input_tokens, output_tokens, credits, ttfb, duration) = row
        numbers = (time, credits, duration) if ttfb is None else (time, credits, duration, ttfb)
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            raise ValueError("not a usage record: a time, credit or duration is not a finite number")
        if not 0 <= time <= _LAST_TIME:  # type: ignore[operator]
            raise ValueError("not a usage record: its time is not between 1970 and 3000")
        return cls(
            time=float(time),  # type: ignore[arg-type]
            request_id=str(request_id),
            key=None if key is None else str(key),
            account=None if account is None else str(account),
            model=None if model is None else str(model),
            dialect=str(dialect),
            stream=bool(stream),
            status=int(status),  # type: ignore[call-overload]
            error=None if error is None else str(error),
            input_tokens=int(input_tokens),  # type: ignore[call-overload]
            output_tokens=int(output_tokens),  # type: ignore[call-overload]
            credits=float(credits),  # type: ignore[arg-type]
            ttfb=None if ttfb is None else float(ttfb),  # type: ignore[arg-type]
            duration=float(duration),  # type: ignore[arg-type]
        )

    def row(self) -> tuple[object, ...]:
        """The fields in ``USAGE_FIELDS`` order (a SQL row)."""
        return (
            self.time, self.request_id, self.key, self.account, self.model, self.dialect, int(self.stream),
            self.status, self.error, self.input_tokens, self.output_tokens, self.credits, self.ttfb, self.duration,
        )


#: The record's fields, in the order of ``row()`` and ``from_row``.
USAGE_FIELDS: tuple[str, ...] = (
    "time", "request_id", "key", "account", "model", "dialect", "stream", "status", "error",
    "input_tokens", "output_tokens", "credits", "ttfb", "duration",
)
