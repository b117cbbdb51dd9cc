"""A tiny HTTP server on 127.0.0.1 for SDK tests: the official SDKs bring their own HTTP stack,
so they are pointed at this server, which answers through a test-supplied function.

    def app(request: LoopbackRequest) -> LoopbackResponse: ...
    with LoopbackServer(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)

The body is written in small pieces with a flush after each, so clients see a stream arrive in
several reads (as from a real gateway). Nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["LoopbackRequest", "LoopbackResponse", "LoopbackServer"]


@dataclass(frozen=True)
class LoopbackRequest:
    method: str
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class LoopbackResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())


App = Callable[[LoopbackRequest], LoopbackResponse]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def _answer(self) -> None:
        length = int(self.headers.get("content-length", "0") or "0")
        request = LoopbackRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        self.server.owner.requests.append(request)
        try:
            response = self.server.owner.app(request)
        except Exception as exc:  # a test bug: make it visible to the test, not just a hang
            self.server.owner.errors.append(exc)
            response = LoopbackResponse(status=599, body=repr(exc).encode(), content_type="text/plain")
        self.send_response(response.status)
        self.send_header("content-type", response.content_type)
        self.send_header("content-length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        step = self.server.owner.write_size
        for i in range(0, len(response.body), step):
            self.wfile.write(response.body[i : i + step])
            self.wfile.flush()

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer


class LoopbackServer:
    """Serve ``app`` on an ephemeral loopback port in a background thread (a context manager)."""

    def __init__(self, app: App, *, write_size: int = 97) -> None:
        self.app = app
        self.write_size = write_size
        #: Every request received, in order.
        self.requests: list[LoopbackRequest] = []
        #: Exceptions raised by ``app`` (answered with status 599).
        self.errors: list[BaseException] = []
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
