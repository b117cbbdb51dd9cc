"""The one request handler shared by every adapter (the anyio server's h11 and h2 pumps, ASGI...).

Adapters turn wire events into a ``Request`` and drive a ``Responder``; they know nothing about
routes. ``App`` is the handler the server runs: request id, CORS, routing, auth, the session
limit, error rendering and the access log, then the endpoint itself from an ``ApiService``.
A client disconnect cancels the task running ``App.__call__`` (and therefore any upstream call
beneath it).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from .logging import access_log, request_context
from kiro_protocol import (
    authenticate,
    CORS_HEADERS,
    Dialect,
    dialect_for_path,
    Endpoint,
    error_answer,
    ErrorKind,
    format_request_id,
    LocalProtocolError,
    preflight_headers,
    ProtocolError,
    REQUEST_ID_HEADER,
    Route,
    route_request,
    sane_request_id,
    split_target,
)

__all__ = [
    "Request",
    "Responder",
    "Handler",
    "Lifecycle",
    "RequestContext",
    "RequestLog",
    "ApiService",
    "App",
    "ResponseAlreadyStarted",
]

log = logging.getLogger("kiro2api.server")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A complete request as a pump received it (the body is read before the handler runs)."""

    #: ``GET``, ``POST``...
    method: str
    #: The request target: path and query string.
    target: str
    #: Header pairs, names lower-cased, in arrival order.
    headers: tuple[tuple[str, str], ...]
    #: The whole body (bounded by MAX_REQUEST_BODY_BYTES).
    body: bytes = b""
    #: ``1.1``, ``1.0`` or ``2``.
    http_version: str = "1.1"
    #: The peer address, for the access log.
    client: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (give it lower-cased), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class ResponseAlreadyStarted(RuntimeError):
    """A second response, or a complete response after a stream started."""


class Responder(Protocol):
    """How a handler answers: one complete response, or a status line then a stream of chunks."""

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send a complete response (the pump adds content-length)."""

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        """Send the head of a streamed response (chunked in HTTP/1.1, DATA frames in HTTP/2).

        ``body``: the first bytes of the stream, sent with the head (one write where the
        protocol allows: the first event then reaches the client without a second round).
        """

    async def send_chunk(self, data: bytes) -> None:
        """Send one piece of a streamed body; waits for flow control and the socket."""

    async def end_stream(self) -> None:
        """Finish a streamed response."""


class Handler(Protocol):
    """What the pumps call for each request."""

    async def __call__(self, request: Request, respond: Responder) -> None: ...


@dataclass(slots=True)
class Lifecycle:
    """Server-wide shutdown signals, readable by handlers.

    ``shutting_down`` is set on SIGTERM/SIGINT: nothing new is accepted, running requests go on.
    ``terminating`` is set when the shutdown deadline passes: a streaming handler must now end
    its stream (the translator's ``error`` event) and return; it is cancelled soon after.
    """

    shutting_down: anyio.Event = field(default_factory=anyio.Event)
    terminating: anyio.Event = field(default_factory=anyio.Event)
    _watchers: set[Callable[[], None]] = field(default_factory=set, init=False, repr=False)

    def terminate(self) -> None:
        """The shutdown deadline passed: set ``terminating`` and call every watcher, once."""
        self.terminating.set()
        watchers, self._watchers = self._watchers, set()
        for callback in watchers:
            callback()

    def on_terminate(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Have ``callback`` called by ``terminate()`` (now, if it already ran); returns the way
        to stop watching. A streaming response watches this way instead of keeping a task
        waiting on ``terminating``. ``callback`` must not block and may be called twice."""
        self._watchers.add(callback)
        if self.terminating.is_set():  # checked after registering: a terminate() in between still reaches it
            self._watchers.discard(callback)
            callback()
        return lambda: self._watchers.discard(callback)


@dataclass(slots=True)
class RequestLog:
    """What an endpoint learnt about a request, for its access-log line."""

    model: str | None = None
    #: A masked account label or description, never a token.
    account: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None


@dataclass(slots=True, kw_only=True)
class RequestContext:
    """Everything an endpoint needs besides the request and the responder."""

    request_id: str
    route: Route
    lifecycle: Lifecycle
    log: RequestLog


class ApiService(Protocol):
    """The endpoints behind the routes (the runtime's service; a placeholder until the glue lands).

    Each method answers through ``respond`` and may raise ``ProtocolError`` before the response
    started, which ``App`` renders in the route's dialect.
    """

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def count_tokens(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def chat_completions(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def models(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def health(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def root(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...


class _Tracking:
    """Wraps a pump's responder: adds the common headers, drops HEAD bodies, records timings."""

    def __init__(self, inner: Responder, *, extra: tuple[tuple[str, str], ...], head: bool, t0: float) -> None:
        self._inner = inner
        self._extra = extra
        self._head = head
        self._t0 = t0
        self.status: int | None = None
        self.ttfb: float | None = None
        self.streaming = False
        self.finished = False

    def _headers(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        names = {k.lower() for k, _ in headers}
        return list(headers) + [(k, v) for k, v in self._extra if k not in names]

    def _begin(self, status: int) -> None:
        if self.status is not None:
            raise ResponseAlreadyStarted("a response was already started for this request")
        self.status = status

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self._begin(status)
        all_headers = self._headers(headers)
        if self._head:
            # RFC 9110 §9.3.2: the same headers as GET, no content.
            all_headers.append(("content-length", str(len(body))))
            body = b""
        self.ttfb = time.monotonic() - self._t0
        await self._inner.send_response(status, all_headers, body)
        self.finished = True

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        self._begin(status)
        self.streaming = True
        if self._head:
            body = b""
        elif body:
            self.ttfb = time.monotonic() - self._t0
        await self._inner.start_stream(status, self._headers(headers), body)

    async def send_chunk(self, data: bytes) -> None:
        if not self.streaming:
            raise ResponseAlreadyStarted("send_chunk() before start_stream()")
        if self.ttfb is None and data:
            self.ttfb = time.monotonic() - self._t0
        if not self._head:
            await self._inner.send_chunk(data)

    async def end_stream(self) -> None:
        await self._inner.end_stream()
        self.finished = True


_SESSION_ENDPOINTS = frozenset({Endpoint.MESSAGES, Endpoint.CHAT_COMPLETIONS, Endpoint.COUNT_TOKENS})


class App:
    """The shared handler: everything between a parsed request and an endpoint.

    Args:
        service: the endpoints.
        client_token: the token clients must present.
        lifecycle: the server's shutdown signals.
        max_concurrent_sessions: requests to model endpoints served at once (0: no limit).
        new_id: a source of random hex for generated request ids.
    """

    def __init__(
        self,
        *,
        service: ApiService,
        client_token: str,
        lifecycle: Lifecycle,
        max_concurrent_sessions: int = 0,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._service = service
        self._client_token = client_token
        self.lifecycle = lifecycle
        self._max_sessions = max_concurrent_sessions
        self._new_id = new_id
        self.active_sessions = 0

    async def __call__(self, request: Request, respond: Responder) -> None:
        t0 = time.monotonic()
        request_id = sane_request_id(request.header(REQUEST_ID_HEADER)) or format_request_id(self._new_id())
        extra = ((REQUEST_ID_HEADER, request_id),) + CORS_HEADERS
        tracking = _Tracking(respond, extra=extra, head=request.method == "HEAD", t0=t0)
        path = split_target(request.target)
        record = RequestLog()
        with request_context(request_id):
            try:
                await self._dispatch(request, tracking, request_id, record)
            except ProtocolError as exc:
                record.error = exc.kind.value
                await self._answer_error(tracking, exc, dialect_for_path(path))
            except Exception as exc:
                # A bug or an unmapped failure: the client gets a clean 500, the log the traceback.
                log.exception("unhandled error while serving %s %s", request.method, path)
                record.error = type(exc).__name__
                if tracking.status is not None:
                    raise
                error = LocalProtocolError("Internal server error.", kind=ErrorKind.API, status_hint=500)
                await self._answer_error(tracking, error, dialect_for_path(path))
            finally:
                access_log(
                    method=request.method,
                    path=path,
                    status=tracking.status if tracking.status is not None else 499,
                    duration=time.monotonic() - t0,
                    protocol=f"HTTP/{request.http_version}",
                    ttfb=tracking.ttfb,
                    account=record.account,
                    model=record.model,
                    input_tokens=record.input_tokens,
                    output_tokens=record.output_tokens,
                    client=request.client,
                    error=record.error,
                )

    async def _answer_error(self, tracking: _Tracking, error: ProtocolError, dialect: Dialect) -> None:
        if tracking.status is not None:
            raise error
        answer = error_answer(error, dialect)
        await tracking.send_response(answer.status, answer.headers, answer.body)

    async def _dispatch(self, request: Request, respond: _Tracking, request_id: str, record: RequestLog) -> None:
        route = route_request(request.method, request.target)
        if route.endpoint is Endpoint.PREFLIGHT:
            headers = preflight_headers(request.header("access-control-request-headers"))
            await respond.send_response(200, headers, b"")
            return
        if route.requires_auth:
            authenticate(request.headers, self._client_token)
        ctx = RequestContext(request_id=request_id, route=route, lifecycle=self.lifecycle, log=record)
        if route.endpoint not in _SESSION_ENDPOINTS:
            await self._endpoint(route.endpoint)(request, respond, ctx)
            return
        if self.lifecycle.shutting_down.is_set():
            raise LocalProtocolError("The server is shutting down; retry shortly.", kind=ErrorKind.OVERLOADED)
        if self._max_sessions and self.active_sessions >= self._max_sessions:
            raise LocalProtocolError(
                f"Too many concurrent requests (limit {self._max_sessions}); retry shortly.",
                kind=ErrorKind.OVERLOADED,
            )
        self.active_sessions += 1
        try:
            await self._endpoint(route.endpoint)(request, respond, ctx)
        finally:
            self.active_sessions -= 1

    def _endpoint(self, endpoint: Endpoint) -> Callable[[Request, Responder, RequestContext], Awaitable[None]]:
        service = self._service
        table = {
            Endpoint.MESSAGES: service.messages,
            Endpoint.COUNT_TOKENS: service.count_tokens,
            Endpoint.CHAT_COMPLETIONS: service.chat_completions,
            Endpoint.MODELS: service.models,
            Endpoint.HEALTH: service.health,
            Endpoint.ROOT: service.root,
        }
        return table[endpoint]
