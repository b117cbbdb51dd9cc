"""The one request handler shared by every serving mode (the h11 and h2 pumps, ASGI, WSGI).

A serving mode hands ``App`` a request head, a ``RequestBody`` to read the body from, and a
``Responder``. ``App`` asks the core's front door what to do with the head (answer at once, or
serve an endpoint; the order of the checks is the core's), reads the body only for an endpoint,
runs it from an ``ApiService``, counts sessions and writes the access log. A client disconnect
cancels the task running ``App.__call__`` (and therefore any upstream call beneath it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio

from .ids import random_hex
from .client_keys import KeyRing
from .logging import access_log, request_context
from .metrics import METRICS_CONTENT_TYPE
from .stores import StoreUnavailable
from .telemetry import Telemetry
from kiro_protocol import (
    AdminCall,
    body_refused,
    BodyProblem,
    ClientAuth,
    ClientKey,
    Endpoint,
    endpoint_error,
    front_door,
    internal_error,
    ProtocolError,
    store_unavailable,
    Reply,
    ReplyNow,
    RequestHead,
    Route,
    Serve,
    ServerState,
)

__all__ = [
    "Request",
    "RequestHead",
    "RequestBody",
    "Responder",
    "Handler",
    "Lifecycle",
    "RequestContext",
    "RequestLog",
    "ApiService",
    "App",
    "ResponseAlreadyStarted",
    "send_reply",
    "whole_request",
    "log_rejection",
]

log = logging.getLogger("kiro2api.server")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(RequestHead):
    """A complete request, as an endpoint sees it (the body was read before the endpoint runs)."""

    #: The whole body (bounded by MAX_REQUEST_BODY_BYTES).
    body: bytes = b""


class RequestBody(Protocol):
    """Where a serving mode's request body comes from."""

    #: The body limit of this server (bytes); the front door refuses a longer declared body.
    limit: int

    async def read(self) -> bytes | BodyProblem:
        """The whole body, at most ``limit`` bytes; or why it could not be had (the rest is then
        left unread). Called at most once, and never when the front door answered by itself."""


class ResponseAlreadyStarted(RuntimeError):
    """A second response, or a complete response after a stream started."""


class Responder(Protocol):
    """How a handler answers: one complete response, or a status line then a stream of chunks."""

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send a complete response (the serving mode adds content-length)."""

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        """Send the head of a streamed response (chunked in HTTP/1.1, DATA frames in HTTP/2).

        ``body``: the first bytes of the stream, sent with the head (one write where the
        protocol allows: the first event then reaches the client without a second round).
        ``end``: they are also the last (a short answer that arrived whole): the stream ends
        in the same write.
        """

    async def send_chunk(self, data: bytes) -> None:
        """Send one piece of a streamed body; waits for flow control and the socket."""

    async def end_stream(self, data: bytes = b"") -> None:
        """Finish a streamed response; ``data``: its last bytes, sent with the end (one write
        where the protocol allows)."""


class Handler(Protocol):
    """What a serving mode calls for each request head."""

    async def __call__(self, head: RequestHead, body: RequestBody, respond: Responder) -> None: ...


async def send_reply(respond: Responder, reply: Reply) -> None:
    """Write one of the core's complete answers."""
    await respond.send_response(reply.status, reply.headers, reply.body)


async def whole_request(head: RequestHead, body: RequestBody, respond: Responder) -> Request | None:
    """The request with its body, for a handler that wants it whole without the front door (the
    simulator); None once a body that could not be read has been answered."""
    data = await body.read()
    if isinstance(data, BodyProblem):
        reply = body_refused(data, body.limit)
        if reply is not None:
            await send_reply(respond, reply)
        return None
    return _request(head, data)


def log_rejection(
    reply: Reply, *, client: str | None, started: float, method: str = "-", path: str = "-", protocol: str = "HTTP/1.1"
) -> None:
    """The access line of an answer a serving mode gave by itself, to bytes that never became a
    request for the handler (a bad request line, headers over the limit): the docs promise one
    line per request, and these are the ones an operator looks for. ``started``: the
    ``time.monotonic()`` at which the request began to arrive."""
    elapsed = time.monotonic() - started
    access_log(
        method=method,
        path=path,
        status=reply.status,
        duration=elapsed,
        protocol=protocol,
        ttfb=elapsed,
        client=client,
        error=reply.error.value if reply.error is not None else None,
    )


def _request(head: RequestHead, body: bytes) -> Request:
    return Request(
        method=head.method,
        target=head.target,
        headers=head.headers,
        body=body,
        http_version=head.http_version,
        client=head.client,
    )


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
    #: The Kiro model id the request was converted for (a bounded metrics label).
    model_id: str | None = None
    #: Whether the client asked for a stream.
    stream: bool | None = None
    #: Kiro credits metered.
    credits: float = 0.0
    #: Cut tool calls asked again.
    recoveries: int = 0
    #: One (account label, outcome) per upstream call: the HTTP status, or ``error``.
    upstream: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RequestContext:
    """Everything an endpoint needs besides the request and the responder."""

    request_id: str
    route: Route
    lifecycle: Lifecycle
    log: RequestLog
    #: The client key that opened the route (its name, limits and models); None without auth.
    key: ClientKey | None = None
    #: The admin action of an ``/admin`` route, as the front door routed it.
    admin: AdminCall | None = None


class ApiService(Protocol):
    """The endpoints behind the routes (``adapters.runtime.service`` in production).

    Each method answers through ``respond`` and may raise ``ProtocolError`` before the response
    started, which ``App`` answers in the route's dialect (through the core).
    """

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def count_tokens(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def chat_completions(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def responses(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def models(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def health(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def root(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def admin_api(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...

    async def dashboard(self, request: Request, respond: Responder, ctx: RequestContext) -> None: ...


class _Tracking:
    """Wraps a serving mode's responder: adds the common headers, drops HEAD bodies, records timings."""

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

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        self._begin(status)
        self.streaming = True
        if self._head:
            body = b""
        elif body:
            self.ttfb = time.monotonic() - self._t0
        await self._inner.start_stream(status, self._headers(headers), body, end=end)
        if end:
            self.finished = True

    async def send_chunk(self, data: bytes) -> None:
        if not self.streaming:
            raise ResponseAlreadyStarted("send_chunk() before start_stream()")
        if self.ttfb is None and data:
            self.ttfb = time.monotonic() - self._t0
        if not self._head:
            await self._inner.send_chunk(data)

    async def end_stream(self, data: bytes = b"") -> None:
        if self.ttfb is None and data:
            self.ttfb = time.monotonic() - self._t0
        await self._inner.end_stream(b"" if self._head else data)
        self.finished = True


class App:
    """The shared handler: everything between a request head and an endpoint.

    Args:
        service: the endpoints.
        client_token: the token clients must present.
        lifecycle: the server's shutdown signals.
        max_concurrent_sessions: requests to model endpoints served at once (0: no limit).
        new_id: a source of random hex for generated request ids.
        telemetry: where finished requests are reported (usage records, metrics); by default
            the service's ``telemetry`` attribute, else metrics alone.
    """

    def __init__(
        self,
        *,
        service: ApiService,
        client_token: str,
        lifecycle: Lifecycle,
        max_concurrent_sessions: int = 0,
        new_id: Callable[[], str] = random_hex,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._service = service
        self.telemetry: Telemetry = telemetry or getattr(service, "telemetry", None) or Telemetry()
        # The admin door opens when the service has an admin face (KIRO_ADMIN_TOKEN; docs/admin.md).
        self._auth = ClientAuth(client_token, admin_token=getattr(service, "admin_token", None))
        # The named keys of the service's state store; without one, KIRO_CLIENT_TOKEN alone.
        self._key_ring: KeyRing | None = getattr(service, "client_keys", None)
        self.lifecycle = lifecycle
        self._max_sessions = max_concurrent_sessions
        # METRICS_ENABLED, as the service was configured (a service without settings: on).
        self._metrics_enabled: bool = getattr(service, "metrics_enabled", True)
        self._new_id = new_id
        self.active_sessions = 0
        self._endpoints: dict[Endpoint, Callable[[Request, Responder, RequestContext], Awaitable[None]]] = {
            Endpoint.MESSAGES: service.messages,
            Endpoint.COUNT_TOKENS: service.count_tokens,
            Endpoint.CHAT_COMPLETIONS: service.chat_completions,
            Endpoint.RESPONSES: service.responses,
            Endpoint.MODELS: service.models,
            Endpoint.HEALTH: service.health,
            Endpoint.ROOT: service.root,
            Endpoint.METRICS: self._metrics,
            Endpoint.ADMIN_API: service.admin_api,
            Endpoint.DASHBOARD: service.dashboard,
        }

    async def __call__(self, head: RequestHead, body: RequestBody, respond: Responder) -> None:
        t0 = time.monotonic()
        if self._key_ring is not None:
            keys = await self._key_ring.keys()
            if keys is not self._auth.keys:
                self._auth = replace(self._auth, keys=keys)
        state = ServerState(
            shutting_down=self.lifecycle.shutting_down.is_set(),
            sessions_in_use=self.active_sessions,
            session_limit=self._max_sessions,
            body_limit=body.limit,
            now=time.time(),
            metrics=self._metrics_enabled,
        )
        decision = front_door(head, self._auth, state, self._new_id())
        record = RequestLog()
        status: int | None = None
        ttfb: float | None = None
        with request_context(decision.request_id):
            try:
                if isinstance(decision, ReplyNow):
                    record.error = decision.reply.error.value if decision.reply.error is not None else None
                    status, ttfb = decision.reply.status, time.monotonic() - t0
                    await send_reply(respond, decision.reply)
                else:
                    tracking = _Tracking(respond, extra=decision.headers, head=decision.omit_body, t0=t0)
                    try:
                        await self._serve(decision, head, body, tracking, record)
                    finally:
                        status, ttfb = tracking.status, tracking.ttfb
            finally:
                access_log(
                    method=head.method,
                    path=decision.path if isinstance(decision, ReplyNow) else decision.route.path,
                    status=status if status is not None else 499,
                    duration=time.monotonic() - t0,
                    protocol=f"HTTP/{head.http_version}",
                    ttfb=ttfb,
                    account=record.account,
                    model=record.model,
                    input_tokens=record.input_tokens,
                    output_tokens=record.output_tokens,
                    client=head.client,
                    error=record.error,
                    key=decision.key.name if isinstance(decision, Serve) and decision.key is not None else None,
                )
                self._report(head, decision, status, ttfb, time.monotonic() - t0, record)

    async def _metrics(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        body = await self.telemetry.metrics_body(active_requests=self.active_sessions)
        await respond.send_response(200, (("content-type", METRICS_CONTENT_TYPE),), body)

    def _report(
        self, head: RequestHead, decision: ReplyNow | Serve, status: int | None, ttfb: float | None, duration: float,
        record: RequestLog,
    ) -> None:
        key = decision.key if isinstance(decision, Serve) else None
        try:
            self.telemetry.request_finished(
                method=head.method,
                path=decision.path if isinstance(decision, ReplyNow) else decision.route.path,
                route=None if isinstance(decision, ReplyNow) else decision.route,
                key=None if key is None else key.name,
                request_id=decision.request_id,
                status=status if status is not None else 499,
                ttfb=ttfb,
                duration=duration,
                call=record,
            )
        except Exception:
            log.exception("could not record the request's usage and metrics")

    async def _serve(self, serve: Serve, head: RequestHead, body: RequestBody, respond: _Tracking, record: RequestLog) -> None:
        if serve.session:
            self.active_sessions += 1  # counted from the head on: a body being read holds its place
        try:
            data = await body.read()
            if isinstance(data, BodyProblem):
                reply = body_refused(data, serve.body_limit, serve)
                if reply is not None:
                    record.error = reply.error.value if reply.error is not None else None
                    await send_reply(respond, reply)
                return
            ctx = RequestContext(
                request_id=serve.request_id, route=serve.route, lifecycle=self.lifecycle, log=record, key=serve.key,
                admin=serve.admin,
            )
            ring = self._key_ring
            slot = None if ring is None else await ring.admit(serve)
            try:
                await self._endpoints[serve.route.endpoint](_request(head, data), respond, ctx)
            finally:
                if ring is not None and slot is not None:
                    await ring.release(slot, (record.input_tokens or 0) + (record.output_tokens or 0))
        except ProtocolError as exc:
            record.error = exc.kind.value
            if respond.status is not None:
                raise
            await send_reply(respond, endpoint_error(serve, exc))
        except StoreUnavailable as exc:
            # Redis down or the SQLite file locked: expected weather, one line (no traceback);
            # the client gets the core's 503 and the next request tries the store again.
            log.warning("%s: %s %s answered 503", exc, head.method, serve.route.path)
            record.error = "store_unavailable"
            if respond.status is not None:
                raise
            await send_reply(respond, store_unavailable(serve))
        except Exception as exc:
            # A bug or an unmapped failure: the client gets a clean 500, the log the traceback.
            log.exception("unhandled error while serving %s %s", head.method, serve.route.path)
            record.error = type(exc).__name__
            if respond.status is not None:
                raise
            await send_reply(respond, internal_error(serve))
        finally:
            if serve.session:
                self.active_sessions -= 1
