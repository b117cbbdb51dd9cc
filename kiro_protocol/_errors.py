"""The error vocabulary of the core.

Errors are split by whose fault they are (h11's rule):

* ``LocalProtocolError``: our caller asked for something invalid. For a gateway that means the
  client's request (a malformed Anthropic/OpenAI body), or an adapter misusing an API.
* ``RemoteProtocolError``: the peer (Kiro) sent something invalid: bad EventStream bytes,
  payloads that are not the JSON their event type requires.

Both carry a dialect-independent ``kind`` (what the client is told: invalid request, rate
limited, ...) and a ``status_hint`` (the HTTP status to answer with when nothing has been sent
yet). Rendering into the Anthropic or OpenAI error shape is done by ``_error_bodies``.
"""

from __future__ import annotations

import enum

__all__ = [
    "ErrorKind",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
]


class ErrorKind(enum.Enum):
    """What kind of failure the client is told about; values are Anthropic's error types."""

    #: The request is malformed or violates a limit (400).
    INVALID_REQUEST = "invalid_request_error"
    #: Missing or wrong client credentials (401).
    AUTHENTICATION = "authentication_error"
    #: Authenticated but not allowed (403).
    PERMISSION = "permission_error"
    #: Unknown route or model (404).
    NOT_FOUND = "not_found_error"
    #: The request body exceeds the size limit (413).
    REQUEST_TOO_LARGE = "request_too_large"
    #: Too many requests, or every account is throttled (429).
    RATE_LIMIT = "rate_limit_error"
    #: Anything that went wrong on our side or upstream without a better class (500).
    API = "api_error"
    #: Upstream or we are temporarily overloaded (529).
    OVERLOADED = "overloaded_error"

    @property
    def default_status(self) -> int:
        return _DEFAULT_STATUS[self]


_DEFAULT_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.API: 500,
    ErrorKind.OVERLOADED: 529,
}


class ProtocolError(Exception):
    """Abstract base of every error the core raises on purpose.

    Attributes:
        message: human-readable text, safe to show to the client (never holds a secret).
        kind: the dialect-independent error class shown to the client.
        status_hint: the HTTP status to answer with if no response has started yet.
        param: the offending field path, when there is one (``messages.3.content.0``).
    """

    default_kind: ErrorKind = ErrorKind.API
    default_status: int | None = None
    #: Seconds after which asking again may succeed; the answer's ``retry-after`` header.
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        status_hint: int | None = None,
        param: str | None = None,
    ) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise LocalProtocolError or RemoteProtocolError")
        super().__init__(message)
        self.message = message
        self.kind = kind if kind is not None else self.default_kind
        if status_hint is None:
            status_hint = self.default_status if self.default_status is not None else self.kind.default_status
        self.status_hint = status_hint
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, kind={self.kind.name}, status_hint={self.status_hint})"


class LocalProtocolError(ProtocolError):
    """The caller's fault: an invalid client request, or misuse of a core API."""

    default_kind = ErrorKind.INVALID_REQUEST


class RemoteProtocolError(ProtocolError):
    """The peer's fault: upstream sent bytes or JSON that break the protocol.

    Reported to the client as an ``api_error``; before the response started, with status 502.
    """

    default_kind = ErrorKind.API
    default_status = 502
