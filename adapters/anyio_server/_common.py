"""What both pumps share: connection limits, reason phrases, pump-level error answers."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.runtime.answers import error_response, reason_phrase, with_content_length
from kiro_protocol import ErrorKind

__all__ = ["ConnectionLimits", "reason_phrase", "pump_error", "with_content_length", "READ_SIZE"]

#: Bytes asked of the socket per read.
READ_SIZE = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Per-connection limits, from the settings (seconds and bytes)."""

    #: The largest request body; beyond it 413 without buffering the rest.
    max_body: int = 20 * 1024 * 1024
    #: Time for a complete request head; also how long an idle kept-alive connection lives.
    header_timeout: float = 60.0
    #: Longest silence from the client while a request body is being read.
    read_timeout: float = 60.0
    #: Longest a single write to the client may block.
    write_timeout: float = 300.0
    #: After a 413, how long we keep discarding the client's body so it can read the answer.
    discard_timeout: float = 2.0


def pump_error(status: int, message: str, kind: ErrorKind) -> tuple[int, list[tuple[str, str]], bytes]:
    """A complete error answer produced by a pump itself (before any handler ran)."""
    return error_response(status, message, kind)
