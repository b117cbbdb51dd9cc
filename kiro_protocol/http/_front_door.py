"""The front door: one decision per request head, taken before any body is read.

An adapter hands in what it knows once the head has arrived (method, target, headers, the
declared length), how clients authenticate, and the server's state; it gets back either a
complete answer to write (a preflight, 401, 404, 405, 413, 529) or the endpoint to serve with
everything the runtime needs to serve it. The order of the checks is fixed here and only here:
preflight and routing, then authentication, then the body limit, then (model endpoints only)
shutdown and the session limit. Answers found later, outside the endpoints (a body over the
limit while reading, a malformed request, a handler that failed), are also made here, so that no
adapter picks a status code or an error kind.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .._errors import ErrorKind, LocalProtocolError, ProtocolError
from ..keys import BUILTIN_KEY_NAME, ClientKey, format_time, key_digest
from ._admin import AdminCall, admin_call, authenticate_admin
from ._messages import Reply
from ._routing import (
    CORS_HEADERS,
    REQUEST_ID_HEADER,
    Dialect,
    Endpoint,
    Route,
    authenticate,
    dialect_for_path,
    extract_client_token,
    error_answer,
    format_request_id,
    preflight_headers,
    route_request,
    sane_request_id,
    split_target,
)

__all__ = [
    "RequestHead",
    "ClientAuth",
    "BUILTIN_KEY",
    "ServerState",
    "ReplyNow",
    "Serve",
    "BodyProblem",
    "front_door",
    "endpoint_error",
    "body_refused",
    "malformed_request",
    "not_started",
    "no_response",
    "internal_error",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestHead:
    """A request as known before its body: what every serving mode can say about it."""

    #: ``GET``, ``POST``... as received.
    method: str
    #: The request target: path and query string.
    target: str
    #: Header pairs, names lower-cased, in arrival order.
    headers: tuple[tuple[str, str], ...]
    #: ``1.1``, ``1.0`` or ``2`` (for the access log).
    http_version: str = "1.1"
    #: The peer address, ``host:port``.
    client: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (give it lower-cased), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def declared_length(self) -> int | None:
        """The body length the client announced (``content-length``), or None if it did not
        (a chunked or bodiless request) or announced nonsense."""
        value = self.header("content-length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return None
        return length if length >= 0 else None

    @property
    def ambiguous_framing(self) -> bool:
        """Whether the head announces its body twice, by ``content-length`` and by
        ``transfer-encoding``. RFC 9112 §6.1: such a request is answered and its connection
        closed, since two parsers reading it differently is how requests are smuggled."""
        has_length = has_coding = False
        for key, _ in self.headers:
            has_length = has_length or key == "content-length"
            has_coding = has_coding or key == "transfer-encoding"
        return has_length and has_coding


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How clients prove who they are: the built-in client token (``KIRO_CLIENT_TOKEN``, the key
    named ``default``) and the named keys of the state store."""

    token: str
    #: Named keys by the SHA-256 hex digest of the key (``ClientKey.digest``).
    keys: Mapping[str, ClientKey] = field(default_factory=dict)
    #: ``KIRO_ADMIN_TOKEN``: opens ``/admin`` (None: the admin API and dashboard are off, 404).
    admin_token: str | None = None


#: What ``Serve.key`` holds for a client that presented ``KIRO_CLIENT_TOKEN``: no limits.
BUILTIN_KEY = ClientKey(name=BUILTIN_KEY_NAME, digest="")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerState:
    """What the front door needs to know about the server at the moment a head arrives."""

    #: A graceful shutdown began: model requests are refused, running ones go on.
    shutting_down: bool = False
    #: Model requests being served now.
    sessions_in_use: int = 0
    #: At most this many model requests at once (0: no limit).
    session_limit: int = 0
    #: The largest request body accepted, in bytes.
    body_limit: int = 20 * 1024 * 1024
    #: The wall clock (epoch seconds), for the expiry of client keys.
    now: float = 0.0
    #: ``/metrics`` is served (METRICS_ENABLED); off, it is 404 whatever the token.
    metrics: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyNow:
    """The front door answers by itself: write ``reply``; read no body."""

    reply: Reply
    request_id: str
    #: The routed path (query string dropped), for the access log.
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Serve:
    """Serve ``route``'s endpoint: read the body (at most ``body_limit`` bytes), then run it."""

    route: Route
    request_id: str
    #: Added to every answer of this request (request id, CORS), unless the answer sets them.
    headers: tuple[tuple[str, str], ...]
    #: Counts against the session limit while it runs.
    session: bool
    body_limit: int
    #: A HEAD request: answers keep their headers (and length) but send no body.
    omit_body: bool
    #: The client key that opened the route (``BUILTIN_KEY`` for ``KIRO_CLIENT_TOKEN``); None
    #: on routes without authentication.
    key: ClientKey | None = None
    #: The admin action of an ``/admin`` route (its token was checked for the API).
    admin: AdminCall | None = None

    @property
    def dialect(self) -> Dialect:
        return self.route.dialect

    @property
    def key_counted(self) -> bool:
        """Whether the key's shared counters decide this request (``key_admission``): a model
        call with a key that has a rate, concurrency or token limit."""
        return self.key is not None and self.key.limits.counted and self.route.endpoint in _KEY_COUNTED_ENDPOINTS


class BodyProblem(enum.Enum):
    """Why reading a request body stopped short (as an adapter's body reader reports it)."""

    #: More than the body limit arrived; the rest is left unread.
    TOO_LARGE = "too_large"
    #: The client went silent for longer than the read timeout.
    TIMED_OUT = "timed_out"
    #: The body broke the framing rules (a bad chunk): no more requests on this connection.
    MALFORMED = "malformed"
    #: The client left: there is nobody to answer.
    CLIENT_GONE = "client_gone"


_SESSION_ENDPOINTS = frozenset({Endpoint.MESSAGES, Endpoint.CHAT_COMPLETIONS, Endpoint.RESPONSES, Endpoint.COUNT_TOKENS})


_KEY_COUNTED_ENDPOINTS = frozenset({Endpoint.MESSAGES, Endpoint.CHAT_COMPLETIONS, Endpoint.RESPONSES})


def front_door(head: RequestHead, auth: ClientAuth, state: ServerState, random_hex: str) -> ReplyNow | Serve:
    """Decide what to do with a request from its head alone.

    Args:
        head: the request head.
        auth: how clients authenticate.
        state: the server's state now.
        random_hex: randomness for the request id, used when the client sent no usable one.
    """
    request_id = sane_request_id(head.header(REQUEST_ID_HEADER)) or format_request_id(random_hex)
    common = ((REQUEST_ID_HEADER, request_id),) + CORS_HEADERS
    if head.ambiguous_framing:
        # Checked before anything else: where this body ends is unknown, so nothing after it on
        # the connection can be trusted. ``connection: close`` makes every HTTP/1.1 server close.
        path = split_target(head.target)
        error = LocalProtocolError(
            "Malformed HTTP request: both Content-Length and Transfer-Encoding are set.", kind=ErrorKind.INVALID_REQUEST
        )
        reply = _error_reply(error, dialect_for_path(path), common + (_CLOSE,))
        return ReplyNow(reply=_bodiless(reply) if head.method == "HEAD" else reply, request_id=request_id, path=path)
    try:
        route = route_request(head.method, head.target)
        if route.endpoint is Endpoint.PREFLIGHT:
            headers = preflight_headers(head.header("access-control-request-headers"))
            reply = Reply(status=200, headers=headers + ((REQUEST_ID_HEADER, request_id),), body=b"")
            return ReplyNow(reply=reply, request_id=request_id, path=route.path)
        key = _client_key(head.headers, auth, state.now) if route.requires_auth else None
        admin = _admin(head, route, auth) if route.endpoint in _ADMIN_ENDPOINTS else None
        if route.endpoint is Endpoint.METRICS:
            _metrics(head, route, auth, enabled=state.metrics)
        declared = head.declared_length
        if declared is not None and declared > state.body_limit:
            raise _too_large(state.body_limit)
        session = route.endpoint in _SESSION_ENDPOINTS
        if session and state.shutting_down:
            raise LocalProtocolError("The server is shutting down; retry shortly.", kind=ErrorKind.OVERLOADED)
        if session and state.session_limit and state.sessions_in_use >= state.session_limit:
            raise LocalProtocolError(
                f"Too many concurrent requests (limit {state.session_limit}); retry shortly.",
                kind=ErrorKind.OVERLOADED,
            )
    except ProtocolError as error:
        path = split_target(head.target)
        reply = _error_reply(error, dialect_for_path(path), common)
        if head.method == "HEAD":
            reply = _bodiless(reply)
        return ReplyNow(reply=reply, request_id=request_id, path=path)
    return Serve(
        route=route,
        request_id=request_id,
        headers=common,
        session=session,
        body_limit=state.body_limit,
        omit_body=head.method == "HEAD",
        key=key,
        admin=admin,
    )


_ADMIN_ENDPOINTS = frozenset({Endpoint.ADMIN_API, Endpoint.DASHBOARD})

#: On an answer after which the connection must not serve another request.
_CLOSE = ("connection", "close")


def _admin(head: RequestHead, route: Route, auth: ClientAuth) -> AdminCall:
    """The admin action, once the admin door is on and (for the API) the admin token shown."""
    if not auth.admin_token:
        raise LocalProtocolError(
            f"Not found: {head.method} {route.path} (the admin API is off: set KIRO_ADMIN_TOKEN).",
            kind=ErrorKind.NOT_FOUND,
        )
    if route.endpoint is Endpoint.ADMIN_API:
        authenticate_admin(head.headers, auth.admin_token)
    return admin_call(head.method, head.target)


def _metrics(head: RequestHead, route: Route, auth: ClientAuth, *, enabled: bool) -> None:
    """``/metrics`` tells about every key and account: the admin's, like the admin API. Off (404)
    with METRICS_ENABLED=false or without an admin token; a client key never opens it."""
    if not enabled:
        raise LocalProtocolError(
            f"Not found: {head.method} {route.path} (metrics are off: METRICS_ENABLED=false).", kind=ErrorKind.NOT_FOUND
        )
    if not auth.admin_token:
        raise LocalProtocolError(
            f"Not found: {head.method} {route.path} (metrics are off: set KIRO_ADMIN_TOKEN).", kind=ErrorKind.NOT_FOUND
        )
    authenticate_admin(head.headers, auth.admin_token)


def _client_key(headers: tuple[tuple[str, str], ...], auth: ClientAuth, now: float) -> ClientKey:
    """The key a client presented, or the 401 to answer."""
    named: ClientKey | None = None
    if auth.keys:
        # A dict lookup by digest leaks nothing useful through timing: nobody can pick a key
        # for a digest prefix.
        for candidate in extract_client_token(headers):
            if candidate is not None:
                named = auth.keys.get(key_digest(candidate))
                if named is not None and not named.disabled and not named.expired(now):
                    return named
    try:
        authenticate(headers, auth.token)
    except LocalProtocolError:
        if named is None:
            raise
        if named.disabled:
            raise LocalProtocolError(f"API key {named.name!r} is disabled.", kind=ErrorKind.AUTHENTICATION) from None
        assert named.expires_at is not None
        raise LocalProtocolError(
            f"API key {named.name!r} expired at {format_time(named.expires_at)}.", kind=ErrorKind.AUTHENTICATION
        ) from None
    return BUILTIN_KEY


def endpoint_error(serve: Serve, error: ProtocolError) -> Reply:
    """The answer to an endpoint that raised ``error`` before it answered."""
    return _error_reply(error, serve.dialect, serve.headers)


def body_refused(problem: BodyProblem, limit: int, serve: Serve | None = None) -> Reply | None:
    """The answer to a body that could not be read whole (``limit``: the body limit); None when
    the client left. ``serve`` is None for a handler that reads bodies without the front door
    (the simulator)."""
    if problem is BodyProblem.CLIENT_GONE:
        return None
    if problem is BodyProblem.TOO_LARGE:
        error = _too_large(limit)
    elif problem is BodyProblem.TIMED_OUT:
        error = LocalProtocolError("Timed out reading the request body.", kind=ErrorKind.INVALID_REQUEST, status_hint=408)
    else:
        error = LocalProtocolError("Malformed request body.", kind=ErrorKind.INVALID_REQUEST)
    return _error_reply(error, *_shape(serve))


def malformed_request(status_hint: int, detail: str) -> Reply:
    """The answer to bytes that are not an HTTP request (``status_hint`` as the parser suggests).

    ``detail`` is the parser's explanation; a Python repr in it (``bytearray(b'...')``) is cut off,
    as it means nothing to a client.
    """
    kind = ErrorKind.INVALID_REQUEST if 400 <= status_hint < 500 else ErrorKind.API
    detail = _REPR.split(detail, 1)[0].rstrip(" :,")
    if status_hint == 431:
        message = "Request header fields too large."
    else:
        message = f"Malformed HTTP request: {detail}." if detail else "Malformed HTTP request."
    return _error_reply(LocalProtocolError(message, kind=kind, status_hint=status_hint), Dialect.ANTHROPIC, CORS_HEADERS)


def not_started(hint: str) -> Reply:
    """The answer while the gateway is not running yet (or any more); ``hint`` says what to do."""
    error = LocalProtocolError(f"kiro2api has not been started: {hint}", kind=ErrorKind.OVERLOADED, status_hint=503)
    return _error_reply(error, Dialect.ANTHROPIC, CORS_HEADERS)


def no_response(serve: Serve | None = None) -> Reply:
    """The answer when a handler returned without answering (a bug)."""
    error = LocalProtocolError("The request handler returned no response.", kind=ErrorKind.API, status_hint=500)
    return _error_reply(error, *_shape(serve))


def internal_error(serve: Serve | None = None) -> Reply:
    """The answer when a handler failed unexpectedly; the details go to the log, not the client."""
    error = LocalProtocolError("Internal server error.", kind=ErrorKind.API, status_hint=500)
    return _error_reply(error, *_shape(serve))


def store_unavailable(serve: Serve | None = None) -> Reply:
    """The answer when the state store (Redis, the SQLite file) cannot be used right now.

    503 with ``retry-after``: the fault is transient (the store is restarting, or another
    process holds the file's lock) and the gateway recovers by itself, so clients that retry
    (the Anthropic and OpenAI SDKs do on 503) succeed once it is back.
    """
    error = LocalProtocolError(
        "The gateway's state store is unavailable right now; retry shortly.", kind=ErrorKind.OVERLOADED, status_hint=503
    )
    error.retry_after = _STORE_RETRY_AFTER
    return _error_reply(error, *_shape(serve))


#: Seconds a client is asked to wait after a store fault: about how long a Redis restart takes.
_STORE_RETRY_AFTER = 2.0


# A repr of bytes in a parser's message, e.g. ``bytearray(b'GARBAGE')`` or ``b'\x00'``.
_REPR = re.compile(r"""(?:bytearray\(|bytes\()?b['"]""")


def _too_large(limit: int) -> LocalProtocolError:
    return LocalProtocolError(
        f"Request body exceeds the limit of {limit} bytes.", kind=ErrorKind.REQUEST_TOO_LARGE, status_hint=413
    )


def _shape(serve: Serve | None) -> tuple[Dialect, tuple[tuple[str, str], ...]]:
    if serve is None:
        return Dialect.ANTHROPIC, CORS_HEADERS
    return serve.dialect, serve.headers


def _error_reply(error: ProtocolError, dialect: Dialect, common: tuple[tuple[str, str], ...]) -> Reply:
    reply = error_answer(error, dialect)
    return replace(reply, headers=reply.headers + common)


def _bodiless(reply: Reply) -> Reply:
    # RFC 9110 §9.3.2: a HEAD answer has the headers a GET would get, length included.
    return replace(reply, headers=reply.headers + (("content-length", str(len(reply.body))),), body=b"")
