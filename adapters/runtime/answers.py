"""HTTP framing every serving mode writes the same way: reason phrases, content-length, which
headers a streamed answer drops, and the progress of one response.

What to answer is never decided here: the core's front door and its answers (``Reply``) do that.
"""

from __future__ import annotations

import http
from collections.abc import Sequence

__all__ = ["reason_phrase", "status_line", "with_content_length", "stream_headers", "ResponseProgress"]

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


def stream_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` for a streamed answer: its length is unknown, and the framing is the server's."""
    return [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]


class ResponseProgress:
    """Where a responder is in its one response: ``idle``, ``streaming`` or ``done``.

    A handler that answers twice, or streams without a head, is a bug: it raises here rather
    than corrupt the connection.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = "idle"

    def advance(self, expected: str, to: str) -> None:
        if self.state != expected:
            raise RuntimeError(f"response is {self.state}, expected {expected}")
        self.state = to
