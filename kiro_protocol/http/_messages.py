"""Plain HTTP values: a request the core wants sent (refresh, usage, generate), an upstream
answer fed back, and a complete reply for the client.

The core decides *what* is sent and answered; an adapter decides *how* the bytes move.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import ErrorKind

__all__ = ["HttpRequest", "HttpResponse", "Reply"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    #: ``GET`` or ``POST``.
    method: str
    #: Absolute URL, query string included.
    url: str
    #: Header pairs in the order they are to be sent; names as written.
    headers: tuple[tuple[str, str], ...]
    #: The request body (empty for GET).
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponse:
    """A complete (non-streamed) upstream answer, as fed back into the core."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A complete response for the client, written as it is (the adapter adds only framing)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: The error class, for the access log (None for a success).
    error: ErrorKind | None = None
