"""The ASGI 3 shapes this adapter reads and writes (the subset of the spec it uses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypedDict

__all__ = ["Scope", "Message", "Receive", "Send", "ASGIApp", "HTTPScope"]

# Mappings rather than TypedDicts at the call boundary, so the app fits Starlette's ``Mount`` and
# every server's type hints; ``HTTPScope`` documents what is read from an HTTP scope.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HTTPScope(TypedDict, total=False):
    """The keys of an ``http`` scope the adapter uses."""

    type: str
    http_version: str
    method: str
    path: str
    root_path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None
