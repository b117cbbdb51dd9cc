"""What both pumps share: connection limits, reason phrases, pump-level error answers."""

from __future__ import annotations

import http
from collections.abc import Sequence
from dataclasses import dataclass

from kiro_protocol import CORS_HEADERS, Dialect, error_answer, ErrorKind, LocalProtocolError

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


_EXTRA_PHRASES = {529: "Overloaded", 499: "Client Closed Request"}


def reason_phrase(status: int) -> str:
    """The reason phrase for the status line (HTTP/1.1 only; HTTP/2 has none)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_PHRASES.get(status, "Unknown")


def pump_error(status: int, message: str, kind: ErrorKind) -> tuple[int, list[tuple[str, str]], bytes]:
    """A complete error answer produced by a pump itself (before any handler ran)."""
    answer = error_answer(LocalProtocolError(message, kind=kind, status_hint=status), Dialect.ANTHROPIC)
    return answer.status, list(answer.headers) + list(CORS_HEADERS), answer.body


def with_content_length(headers: Sequence[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """``headers`` with content-length set to ``len(body)``; kept as given for a bodiless HEAD answer."""
    if not body and any(k.lower() == "content-length" for k, _ in headers):
        return list(headers)
    return [(k, v) for k, v in headers if k.lower() != "content-length"] + [("content-length", str(len(body)))]
