"""A plain value for an HTTP request the core wants sent (refresh, usage, generate).

The core decides *what* to send; an adapter's upstream client decides *how*.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpRequest", "HttpResponse"]


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
