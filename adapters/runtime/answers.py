"""Small answers every adapter writes the same way: status lines, content-length, and the error
responses an adapter produces itself before any handler ran (413, 503 before start-up, ...)."""

from __future__ import annotations

import http
from collections.abc import Sequence

from kiro_protocol import CORS_HEADERS, Dialect, ErrorKind, LocalProtocolError, error_answer

__all__ = ["reason_phrase", "status_line", "with_content_length", "error_response"]

_EXTRA_PHRASES = {529: "Overloaded", 499: "Client Closed Request"}


def reason_phrase(status: int) -> str:
    """The reason phrase of ``status`` (HTTP/1.1 status lines; some load tools insist on one)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_PHRASES.get(status, "Unknown")


def status_line(status: int) -> str:
    """``"200 OK"``, as WSGI's ``start_response`` wants it."""
    return f"{status} {reason_phrase(status)}"


def with_content_length(headers: Sequence[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """``headers`` with content-length set to ``len(body)``; kept as given for a bodiless HEAD answer."""
    if not body and any(k.lower() == "content-length" for k, _ in headers):
        return list(headers)  # a HEAD answer carries the GET length
    return [(k, v) for k, v in headers if k.lower() != "content-length"] + [("content-length", str(len(body)))]


def error_response(status: int, message: str, kind: ErrorKind) -> tuple[int, list[tuple[str, str]], bytes]:
    """A complete Anthropic-shaped error answer (status, headers with length and CORS, body)."""
    answer = error_answer(LocalProtocolError(message, kind=kind, status_hint=status), Dialect.ANTHROPIC)
    return answer.status, with_content_length(list(answer.headers) + list(CORS_HEADERS), answer.body), answer.body
