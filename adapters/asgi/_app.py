"""The ASGI pump: scope/receive/send in, the shared ``App`` in the middle, lifespan around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import anyio.lowlevel
import anyio.to_thread

from adapters.runtime.client_token_file import announce_generated_token
from adapters.runtime.answers import ResponseProgress, stream_headers, with_content_length
from adapters.runtime.app import ApiService, App, Lifecycle
from adapters.runtime.service import open_service, prepare
from adapters.runtime.settings import Settings
from kiro_protocol import BodyProblem, Reply, RequestHead, no_response, not_started

from ._types import HTTPScope, Message, Receive, Scope, Send

__all__ = ["KiroASGI", "StandIn"]

#: Starts something that answers for Kiro for the app's life; yields the settings pointed at it
#: and the fields it adds to ``/health``. The composition root (``create_app``) picks it.
StandIn = Callable[[Settings], contextlib.AbstractAsyncContextManager[tuple[Settings, Callable[[], dict[str, object]]]]]

log = logging.getLogger("kiro2api.asgi")

# As the standalone server: how long the rest of an oversized body is read and dropped.
_DISCARD_SECONDS = 2.0

_NOT_STARTED = (
    "the ASGI server must run the lifespan protocol (when mounting, pass lifespan=kiro.lifespan to the host application)."
)


class _ClientGone(Exception):
    pass


class KiroASGI:
    """kiro2api as an ASGI 3 callable; ``lifespan`` also serves hosts such as Starlette.

    Args:
        service: the endpoints (tests); None opens the Kiro service from the settings at startup.
        stand_in: what answers for Kiro instead of the settings' upstream (the simulator, when
            ``create_app`` finds no account); entered at startup, left at shutdown.
    """

    def __init__(self, settings: Settings, *, service: ApiService | None = None, stand_in: StandIn | None = None) -> None:
        self.settings = settings
        self._service = service
        self._stand_in = stand_in
        self._app: App | None = None
        self.lifecycle: Lifecycle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan_protocol(receive, send)
        else:
            raise RuntimeError(f"kiro2api serves HTTP only, not {scope['type']!r}")

    @contextlib.asynccontextmanager
    async def lifespan(self, host: object = None) -> AsyncIterator[None]:
        """Start the upstream client, state store and background checks; stop them on exit."""
        settings = self.settings
        lifecycle = Lifecycle()
        async with contextlib.AsyncExitStack() as stack:
            service = self._service
            if service is None:
                details: Callable[[], dict[str, object]] | None = None
                if self._stand_in is not None:
                    settings, details = await stack.enter_async_context(self._stand_in(settings))
                prepared = await anyio.to_thread.run_sync(prepare, settings)
                service = await stack.enter_async_context(open_service(settings, prepared, health_details=details))
            self.lifecycle = lifecycle
            self._app = App(
                service=service,
                client_token=settings.client_token,
                lifecycle=lifecycle,
                max_concurrent_sessions=settings.max_concurrent_sessions,
            )
            if settings.tls_enabled:
                log.warning("TLS_CERT_FILE/TLS_KEY_FILE are for kiro2api serve: configure TLS on the ASGI server itself")
            announce_generated_token(settings)
            try:
                yield
            finally:
                lifecycle.shutting_down.set()
                lifecycle.terminate()
                self._app = None

    async def _lifespan_protocol(self, receive: Receive, send: Send) -> None:
        await receive()
        started = False
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()
        except Exception as exc:
            log.exception("kiro2api lifespan failed")
            phase = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{phase}.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            await _send_reply(send, not_started(_NOT_STARTED))
            return
        http: HTTPScope = scope  # type: ignore[assignment]
        head = RequestHead(
            method=http["method"],
            target=_target(http),
            headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in http.get("headers", [])),
            http_version=http.get("http_version", "1.1"),
            client=_client(http.get("client")),
        )
        async with anyio.create_task_group() as tg:
            responder = _Responder(send, receive, tg, self.settings.max_request_body_bytes)
            with responder.scope:
                await app(head, responder, responder)
            tg.cancel_scope.cancel()
        if responder.state == "idle" and not responder.scope.cancel_called:
            await _send_reply(send, no_response())


class _Responder(ResponseProgress):
    """One request's body (the app's ``RequestBody``) and answer."""

    def __init__(self, send: Send, receive: Receive, tg: anyio.abc.TaskGroup, limit: int) -> None:
        super().__init__()
        self._send = send
        self._receive = receive
        self._tg = tg
        self.limit = limit
        self.scope = anyio.CancelScope()
        # Whether the client's body was read to its end (then only a disconnect can follow).
        self._received = False

    async def read(self) -> bytes | BodyProblem:
        body = bytearray()
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.scope.cancel()
                return BodyProblem.CLIENT_GONE
            body += message.get("body", b"")
            if len(body) > self.limit:
                return BodyProblem.TOO_LARGE
            if not message.get("more_body", False):
                break
        self._received = True
        self._tg.start_soon(self._watch_disconnect)
        return bytes(body)

    async def _watch_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.scope.cancel()

    async def _emit(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError:
            # The server could not write: like a disconnect, this cancels the handler.
            self.scope.cancel()
            await anyio.lowlevel.checkpoint()
            raise _ClientGone from None

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.advance("idle", "done")
        await self._emit({"type": "http.response.start", "status": status, "headers": _encode(with_content_length(headers, body))})
        if self._received:
            await self._emit({"type": "http.response.body", "body": body, "more_body": False})
            return
        # Answered with the body unread (a 401, a 413...). A client still uploading loses the
        # answer if the server closes on it (RST), and servers close once the response ends with
        # the body unread (hypercorn). So the whole answer is sent but left open while the rest
        # of the body is read and dropped (never kept), for a short while.
        await self._emit({"type": "http.response.body", "body": body, "more_body": True})
        with anyio.move_on_after(_DISCARD_SECONDS):
            while True:
                received = await self._receive()
                if received["type"] != "http.request" or not received.get("more_body", False):
                    break
        await self._emit({"type": "http.response.body", "body": b"", "more_body": False})

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        self.advance("idle", "done" if end else "streaming")
        await self._emit({"type": "http.response.start", "status": status, "headers": _encode(stream_headers(headers))})
        if body or end:
            await self._emit({"type": "http.response.body", "body": body, "more_body": not end})

    async def send_chunk(self, data: bytes) -> None:
        self.advance("streaming", "streaming")
        if data:
            await self._emit({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, data: bytes = b"") -> None:
        self.advance("streaming", "done")
        await self._emit({"type": "http.response.body", "body": data, "more_body": False})


async def _send_reply(send: Send, reply: Reply) -> None:
    headers = with_content_length(reply.headers, reply.body)
    await send({"type": "http.response.start", "status": reply.status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


def _encode(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _target(scope: HTTPScope) -> str:
    path = scope["path"]
    root = scope.get("root_path", "")
    # ASGI puts the mount prefix in both root_path and path; routes are matched below the mount.
    if root and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root.rstrip("/")):] or "/"
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _client(address: tuple[str, int] | None) -> str | None:
    return f"{address[0]}:{address[1]}" if address else None
