"""The WSGI pump: environ in, the shared ``App`` (its generated sync twin) in a task, chunks out."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol

from adapters.runtime._sync import _anyio
from adapters.runtime._sync.app import ApiService, App, Lifecycle
from adapters.runtime._sync.service import open_service, prepare
from adapters.runtime.answers import status_line, stream_headers, with_content_length
from adapters.runtime.settings import Settings
from kiro_protocol import BodyProblem, Reply, RequestHead, no_response

__all__ = ["KiroWSGI", "StandIn", "DROPPED_LENGTH_KEY", "CLOSE_KEY", "raw_response"]

log = logging.getLogger("kiro2api.wsgi")

_READ_SIZE = 65536
# PEP 3333: the server owns these; an application must not set them.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                         "transfer-encoding", "upgrade"})

Environ = dict[str, Any]

#: Set by our pywsgi handler to the Content-Length it dropped from a request that also set
#: Transfer-Encoding (the head keeps both, so that the core refuses it).
DROPPED_LENGTH_KEY = "kiro2api.dropped_content_length"
#: Set by the app when the connection must close after its answer: the body was left unread
#: and is too long to drop, or broke its framing. Our pywsgi handler reads it.
CLOSE_KEY = "kiro2api.close"

#: Starts something that answers for Kiro for the app's life; yields the settings pointed at it
#: and the fields it adds to ``/health``. The composition root (``create_app``) picks it.
StandIn = Callable[[Settings], contextlib.AbstractContextManager[tuple[Settings, Callable[[], dict[str, object]]]]]


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = ..., /
    ) -> Callable[[bytes], object]: ...


class KiroWSGI:
    """kiro2api as a WSGI callable.

    The upstream client, state store and background account checks start here; ``close()`` stops
    them. Run it on gevent (``python -m adapters.wsgi_gevent``) so that streams are cooperative.

    Args:
        service: the endpoints (tests); None opens the Kiro service from the settings.
        stand_in: what answers for Kiro instead of the settings' upstream (the simulator, when
            ``create_app`` finds no account); entered here, left by ``close()``.
    """

    def __init__(self, settings: Settings, *, service: ApiService | None = None, stand_in: StandIn | None = None) -> None:
        self.settings = settings
        self.lifecycle = Lifecycle()
        self._resources = contextlib.ExitStack()
        if service is None:
            with contextlib.ExitStack() as starting:  # stops the stand-in if the service cannot open
                details: Callable[[], dict[str, object]] | None = None
                if stand_in is not None:
                    settings, details = starting.enter_context(stand_in(settings))
                service = starting.enter_context(open_service(settings, prepare(settings), health_details=details))
                self._resources = starting.pop_all()
        self._app = App(
            service=service,
            client_token=settings.client_token,
            lifecycle=self.lifecycle,
            max_concurrent_sessions=settings.max_concurrent_sessions,
        )

    def close(self) -> None:
        """End running streams and close the upstream client and the state store."""
        self.lifecycle.shutting_down.set()
        self.lifecycle.terminate()
        self._resources.close()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = _Body(environ, self.settings.max_request_body_bytes)
        call = _Call(self._app, _head(environ), body)
        kind, status, headers, data = call.next()
        if not body.taken and body.too_long_to_drop():
            environ[CLOSE_KEY] = True
        if kind == "response":
            start_response(status_line(status), _wsgi_headers(with_content_length(headers, data)))
            call.join()
            return [data]
        if kind == "start":
            start_response(status_line(status), _wsgi_headers(stream_headers(headers)))
            return _Stream(call, data)
        reply = no_response()
        start_response(status_line(reply.status), _wsgi_headers(with_content_length(reply.headers, reply.body)))
        return [reply.body]


_Event = tuple[str, int, Sequence[tuple[str, str]], bytes]


class _Call:
    """One run of the handler in its own task; the responder's calls come out of ``next()``."""

    def __init__(self, app: App, head: RequestHead, body: _Body) -> None:
        self._events: queue.Queue[_Event] = queue.Queue()
        self.scope = _anyio.CancelScope()
        self.closed = False
        gevent = _anyio._gevent()
        self._greenlet: Any = None
        if gevent is not None:
            self._greenlet = gevent.spawn(self._run, app, head, body)
        else:
            self._thread = threading.Thread(target=self._run, args=(app, head, body), daemon=True, name="kiro2api-request")
            self._thread.start()

    def _run(self, app: App, head: RequestHead, body: _Body) -> None:
        try:
            with self.scope:
                app(head, body, _Responder(self))
        except BaseException as exc:
            if not isinstance(exc, (_anyio.Cancelled, Exception)) and type(exc).__name__ != "GreenletExit":
                raise
        finally:
            self._events.put(("exit", 0, (), b""))

    def put(self, event: _Event) -> None:
        if self.closed:
            raise _anyio.get_cancelled_exc_class()()
        self._events.put(event)

    def next(self) -> _Event:
        return self._events.get()

    def join(self) -> None:
        if self._greenlet is not None:
            self._greenlet.join()
        else:
            self._thread.join()

    def cancel(self) -> None:
        self.closed = True
        self.scope.cancel()
        if self._greenlet is not None:
            self._greenlet.kill(block=True)


class _Responder:
    def __init__(self, call: _Call) -> None:
        self._call = call

    def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self._call.put(("response", status, headers, body))

    def start_stream(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False) -> None:
        self._call.put(("start", status, headers, body))
        if end:
            self.end_stream()

    def send_chunk(self, data: bytes) -> None:
        if data:
            self._call.put(("chunk", 0, (), data))

    def end_stream(self, data: bytes = b"") -> None:
        self.send_chunk(data)
        self._call.put(("end", 0, (), b""))


class _Stream:
    """The body of a streamed response; ``close()`` (the client left) cancels the handler."""

    def __init__(self, call: _Call, first: bytes = b"") -> None:
        self._call = call
        self._first = first
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            first, self._first = self._first, b""
            yield first
        while True:
            kind, _, _, data = self._call.next()
            if kind == "chunk":
                yield data
            elif kind == "end":
                self._done = True
                self._call.join()
                return
            else:
                self._done = True
                # Raising (not returning) makes the server cut the connection, so the client sees
                # an incomplete body instead of a clean end.
                raise RuntimeError("the response stream ended without finishing")

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._call.cancel()


def _head(environ: Environ) -> RequestHead:
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), value))
    dropped = environ.get(DROPPED_LENGTH_KEY)
    if dropped is not None and not environ.get("CONTENT_LENGTH"):
        headers.append(("content-length", dropped))
    query = environ.get("QUERY_STRING", "")
    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    address = environ.get("REMOTE_ADDR")
    return RequestHead(
        method=environ["REQUEST_METHOD"],
        target=(environ.get("PATH_INFO", "") or "/") + ("?" + query if query else ""),
        headers=tuple(headers),
        http_version=protocol.partition("/")[2] or "1.1",
        client=f"{address}:{environ.get('REMOTE_PORT', '0')}" if address else None,
    )


class _Body:
    """``wsgi.input`` as the app's ``RequestBody``: read only if the front door serves the request."""

    def __init__(self, environ: Environ, limit: int) -> None:
        self._environ = environ
        self.limit = limit
        #: Whether the app asked for the body.
        self.taken = False

    def too_long_to_drop(self) -> bool:
        """Whether a body left unread is too long for the server to read and drop (chunked, or
        declared over the limit), or not coming (its client waits for a 100 Continue that an
        answer given without reading never sends): the connection then closes after the answer."""
        if self._environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            return True
        declared = self._environ.get("CONTENT_LENGTH")
        if not declared:
            return "chunked" in self._environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            return int(declared) > self.limit
        except ValueError:
            return True

    def read(self) -> bytes | BodyProblem:
        self.taken = True
        problem = self._read()
        if isinstance(problem, BodyProblem):
            self._environ[CLOSE_KEY] = True
        return problem

    def _read(self) -> bytes | BodyProblem:
        environ = self._environ
        declared = environ.get("CONTENT_LENGTH")
        if declared:
            try:
                remaining = int(declared)
            except ValueError:
                remaining = 0
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            remaining = self.limit + 1  # de-chunked by the server: one byte past the limit tells
        else:
            return b""
        chunked = not declared
        body = bytearray()
        while remaining > 0:
            try:
                piece = environ["wsgi.input"].read(min(_READ_SIZE, remaining))
            except (OSError, ValueError):  # pywsgi's errors for a bad chunk or a cut chunked body
                return BodyProblem.MALFORMED
            if not piece:
                if not chunked:  # the client ended its side before the declared length
                    return BodyProblem.MALFORMED
                break
            body += piece
            remaining -= len(piece)
            if len(body) > self.limit:
                return BodyProblem.TOO_LARGE
        return bytes(body)


def raw_response(reply: Reply) -> bytes:
    """``reply`` as the bytes of a whole HTTP/1.1 response that closes its connection (for
    answers pywsgi writes itself, before any WSGI call)."""
    lines = [f"HTTP/1.1 {status_line(reply.status)}"]
    lines += [f"{k}: {v}" for k, v in with_content_length(reply.headers, reply.body) if k.lower() != "connection"]
    lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


def _wsgi_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
