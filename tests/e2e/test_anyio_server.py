"""The anyio server through real sockets on 127.0.0.1: h11 and h2 clients, limits, TLS, shutdown."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.settings
import h11
import pytest
from anyio.streams.tls import TLSAttribute

from adapters.anyio_server import App, BasicService, ConnectionLimits, Lifecycle, Request, RequestContext, Responder, Server
from adapters.runtime.app import Handler, RequestBody, RequestHead
from adapters.runtime.aio import AioStream

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TOKEN = "test-client-token-0123456789"
AUTH = [("x-api-key", TOKEN)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- clients -------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: (arrival time, data) of every body piece.
    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    http_version: bytes = b""

    def json(self) -> object:
        return json.loads(self.body)


class H11Client:
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, port: int, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[H11Client]:
        stream: anyio.abc.ByteStream
        if ssl_context is not None:
            stream = await anyio.connect_tcp("127.0.0.1", port, tls=True, ssl_context=ssl_context, tls_hostname="localhost", tls_standard_compatible=False
            )
        else:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            yield cls(stream)

    async def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            await self.stream.send(data)

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        hdrs = [("host", "localhost"), *headers]
        if body or method == "POST":
            hdrs.append(("content-length", str(len(body))))
        await self.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
        return await self.response()

    async def response(self) -> Response:
        result: Response | None = None
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
                self.conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                result = Response(
                    status=event.status_code,
                    reason=event.reason,
                    headers={k.decode(): v.decode() for k, v in event.headers},
                    http_version=event.http_version,
                )
            elif isinstance(event, h11.Data):
                assert result is not None
                result.body += event.data
                result.pieces.append((time.monotonic(), bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                assert result is not None
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                return result
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before the response ended")


class H2Client:
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.responses: dict[int, Response] = {}
        self.ended: set[int] = set()
        self.reset: set[int] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, port: int, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[H2Client]:
        stream: anyio.abc.ByteStream
        if ssl_context is not None:
            stream = await anyio.connect_tcp("127.0.0.1", port, tls=True, ssl_context=ssl_context, tls_hostname="localhost", tls_standard_compatible=False
            )
        else:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            client = cls(stream)
            client.conn.initiate_connection()
            await client.flush()
            yield client

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)

    async def start(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"", *, more: bool = False
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost"), *headers]
        self.conn.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in hdrs], end_stream=not body and not more)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)
        await self.flush()
        return stream_id

    async def wait(self, stream_id: int, *, ack: bool = True) -> Response:
        while stream_id not in self.ended and stream_id not in self.reset:
            data = await self.stream.receive()
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = {bytes(k).decode(): bytes(v).decode() for k, v in event.headers or ()}
                    self.responses[event.stream_id or 0] = Response(status=int(headers.pop(":status")), headers=headers)
                elif isinstance(event, h2.events.DataReceived):
                    response = self.responses[event.stream_id or 0]
                    if event.data:
                        response.body += event.data
                        response.pieces.append((time.monotonic(), event.data))
                    if ack:
                        self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.add(event.stream_id or 0)
                elif isinstance(event, h2.events.StreamReset):
                    self.reset.add(event.stream_id or 0)
            await self.flush()
        return self.responses[stream_id]

    async def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Response:
        return await self.wait(await self.start(method, path, headers, body))


# --- servers -------------------------------------------------------------------------------------


class ScriptedService(BasicService):
    """BasicService plus scripted model endpoints for the tests."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()
        self.cancelled_at: list[float] = []
        self.started = anyio.Event()

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        mode = request.header("x-mode") or "slow"
        if mode == "block":
            self.started.set()
            await self.release.wait()
            await respond.send_response(200, [("content-type", "application/json")], b"{}")
            return
        if mode == "boom":
            raise RuntimeError("scripted failure")
        if mode == "first":
            await respond.start_stream(200, [("content-type", "text/event-stream")], b"event: hello\ndata: 1\n\n")
            await anyio.sleep(0.3)
            await respond.send_chunk(b"event: bye\ndata: 2\n\n")
            await respond.end_stream()
            return
        await respond.start_stream(200, [("content-type", "text/event-stream")])
        count = 5 if mode == "slow" else 10**9
        try:
            for i in range(count):
                if ctx.lifecycle.terminating.is_set():
                    await respond.send_chunk(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n')
                    break
                await respond.send_chunk(f"event: ping\ndata: {i}\n\n".encode())
                self.started.set()
                await anyio.sleep(0.1 if mode == "slow" else 0.02)
        except anyio.get_cancelled_exc_class():
            self.cancelled_at.append(time.monotonic())
            raise
        await respond.end_stream()


@dataclass
class Running:
    server: Server
    service: ScriptedService
    app: App

    @property
    def port(self) -> int:
        return self.server.port


@contextlib.asynccontextmanager
async def running(
    *,
    limits: ConnectionLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 5.0,
    max_sessions: int = 0,
    handler: Handler | None = None,
) -> AsyncIterator[Running]:
    lifecycle = Lifecycle()
    service = ScriptedService()
    app = App(service=service, client_token=TOKEN, lifecycle=lifecycle, max_concurrent_sessions=max_sessions)
    server = Server(
        handler=handler or app,
        lifecycle=lifecycle,
        host="127.0.0.1",
        port=0,
        limits=limits,
        ssl_context=ssl_context,
        shutdown_timeout=shutdown_timeout,
        terminate_grace=1.0,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        yield Running(server, service, app)
        server.shutdown()
        with anyio.fail_after(10):
            while server.connections:
                await anyio.sleep(0.02)


# --- HTTP/1.1 ------------------------------------------------------------------------------------


async def test_health_without_auth_with_request_id_and_cors() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        response = await client.request("GET", "/health")
    assert response.status == 200 and response.reason == b"OK"
    body = response.json()
    assert isinstance(body, dict) and body["status"] == "ok" and "version" in body
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"] == "application/json"


async def test_request_id_echoed_when_sane() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        good = await client.request("GET", "/health", [("x-request-id", "trace-42")])
        bad = await client.request("GET", "/health", [("x-request-id", "has space")])
    assert good.headers["x-request-id"] == "trace-42"
    assert bad.headers["x-request-id"].startswith("req_")


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        for _ in range(5):
            assert (await client.request("GET", "/health")).status == 200
        assert srv.server.connections == 1


async def test_status_line_has_a_reason_phrase() -> None:
    async with running() as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            await stream.send(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
            data = await stream.receive()
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")


async def test_auth() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        missing = await client.request("GET", "/v1/models")
        wrong = await client.request("GET", "/v1/models", [("x-api-key", "nope")])
        bearer = await client.request("GET", "/v1/models", [("authorization", f"Bearer {TOKEN}")])
        key = await client.request("GET", "/v1/models", AUTH)
        openai = await client.request("POST", "/v1/chat/completions", [("authorization", "Bearer nope")], b"{}")
    for response in (missing, wrong):
        assert response.status == 401
        assert response.json() == {"type": "error", "error": {"type": "authentication_error", "message": response.json()["error"]["message"]}}  # type: ignore[index]
        assert TOKEN not in response.body.decode()
    assert bearer.status == key.status == 200
    models = key.json()
    assert isinstance(models, dict) and models["data"][0]["type"] == "model" and models["object"] == "list"
    assert openai.status == 401 and openai.json()["error"]["code"] == "invalid_api_key"  # type: ignore[index]


async def test_404_405_and_query_strings() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        not_found = await client.request("GET", "/v2/whatever", AUTH)
        wrong_method = await client.request("GET", "/v1/messages", AUTH)
        streamed = await client.request("POST", "/v1/messages?beta=true", AUTH, b"{}")
    assert not_found.status == 404 and not_found.json()["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert wrong_method.status == 405 and "POST" in wrong_method.headers["allow"]
    # The query string is ignored: the scripted service answered.
    assert streamed.status == 200


async def test_basic_service_answers_501_for_model_endpoints() -> None:
    lifecycle = Lifecycle()
    app = App(service=BasicService(), client_token=TOKEN, lifecycle=lifecycle)
    async with running(handler=app) as srv, H11Client.connect(srv.port) as client:
        response = await client.request("POST", "/v1/messages/count_tokens", AUTH, b"{}")
        chat = await client.request("POST", "/v1/chat/completions", AUTH, b"{}")
    assert response.status == 501 and response.json()["error"]["type"] == "api_error"  # type: ignore[index]
    assert chat.status == 501 and "error" in chat.json() and "type" not in chat.json()  # type: ignore[operator]


async def test_cors_preflight_before_auth() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        response = await client.request(
            "OPTIONS", "/v1/messages", [("origin", "http://app"), ("access-control-request-headers", "anthropic-version")]
        )
    assert response.status == 200 and response.body == b""
    assert response.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert "anthropic-version" in response.headers["access-control-allow-headers"]


async def test_head_root() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        head = await client.request("HEAD", "/")
        get = await client.request("GET", "/")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(get.body) > 0


async def test_chunked_streaming_arrives_piece_by_piece() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        response = await client.request("POST", "/v1/messages", AUTH, b"{}")
    assert response.status == 200 and response.headers["transfer-encoding"] == "chunked"
    assert response.body == b"".join(f"event: ping\ndata: {i}\n\n".encode() for i in range(5))
    times = [t for t, _ in response.pieces]
    assert len(times) == 5 and times[-1] - times[0] > 0.3  # not buffered until the end


async def test_first_bytes_given_with_the_head_are_sent_at_once() -> None:
    async with running() as srv:
        async with H11Client.connect(srv.port) as client:
            via_h11 = await client.request("POST", "/v1/messages", [*AUTH, ("x-mode", "first")], b"{}")
        async with H2Client.connect(srv.port) as h2_client:
            via_h2 = await h2_client.request("POST", "/v1/messages", [*AUTH, ("x-mode", "first")], b"{}")
    for response in (via_h11, via_h2):
        assert response.status == 200
        assert [piece for _, piece in response.pieces] == [b"event: hello\ndata: 1\n\n", b"event: bye\ndata: 2\n\n"]
        # The first piece did not wait for the handler's next write.
        assert response.pieces[1][0] - response.pieces[0][0] > 0.2


async def test_handler_failure_is_a_clean_500() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        response = await client.request("POST", "/v1/messages", AUTH + [("x-mode", "boom")], b"{}")
        after = await client.request("GET", "/health")
    assert response.status == 500 and response.json()["error"]["type"] == "api_error"  # type: ignore[index]
    assert "scripted" not in response.body.decode()
    assert after.status == 200


async def test_413_for_a_25_mb_body_then_still_healthy() -> None:
    size = 25 * 1024 * 1024
    async with running() as srv:
        async with H11Client.connect(srv.port) as client:
            head = h11.Request(method="POST", target="/v1/messages", headers=[("host", "x"), ("content-length", str(size)), *AUTH])
            await client.send(head)

            async def upload() -> None:
                with contextlib.suppress(Exception):
                    piece = b"x" * (1024 * 1024)
                    for _ in range(25):
                        await client.stream.send(piece)

            async with anyio.create_task_group() as tg:
                tg.start_soon(upload)
                with anyio.fail_after(10):
                    response = await client.response()
                tg.cancel_scope.cancel()
        assert response.status == 413 and response.reason in (b"Request Entity Too Large", b"Content Too Large")
        assert response.json()["error"]["type"] == "request_too_large"  # type: ignore[index]
        async with H11Client.connect(srv.port) as client:
            assert (await client.request("GET", "/health")).status == 200


async def test_413_for_a_chunked_body_over_the_limit() -> None:
    async with running(limits=ConnectionLimits(max_body=100_000)) as srv:
        async with H11Client.connect(srv.port) as client:
            await client.send(h11.Request(method="POST", target="/v1/messages", headers=[("host", "x"), *AUTH, ("transfer-encoding", "chunked")]))

            async def upload() -> None:
                with contextlib.suppress(Exception):
                    for _ in range(20):
                        await client.send(h11.Data(data=b"y" * 10_000))

            async with anyio.create_task_group() as tg:
                tg.start_soon(upload)
                with anyio.fail_after(10):
                    response = await client.response()
                tg.cancel_scope.cancel()
        assert response.status == 413


async def test_read_timeout_on_a_stalled_body() -> None:
    limits = ConnectionLimits(read_timeout=0.3, header_timeout=5)
    async with running(limits=limits) as srv, H11Client.connect(srv.port) as client:
        # Authenticated: the front door answers a stranger's request (401) without reading its body.
        head = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: " + TOKEN.encode() + b"\r\ncontent-length: 10\r\n\r\n"
        await client.stream.send(head + b"abc")
        t0 = time.monotonic()
        with anyio.fail_after(3):
            response = await client.response()
    assert response.status == 408 and time.monotonic() - t0 < 2


async def test_header_timeout_closes_a_silent_connection() -> None:
    async with running(limits=ConnectionLimits(header_timeout=0.3)) as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            t0 = time.monotonic()
            with anyio.fail_after(3), contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                data = await stream.receive()
                assert data == b""
        assert time.monotonic() - t0 < 2
        with anyio.fail_after(3):
            while srv.server.connections:
                await anyio.sleep(0.02)


async def test_malformed_request_gets_400() -> None:
    async with running() as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            await stream.send(b"GARBAGE\r\n\r\n")
            data = await stream.receive()
    assert data.startswith(b"HTTP/1.1 400 ")


async def test_client_disconnect_cancels_the_handler() -> None:
    async with running() as srv:
        async with H11Client.connect(srv.port) as client:
            await client.send(h11.Request(method="POST", target="/v1/messages", headers=[("host", "x"), ("content-length", "2"), ("x-mode", "forever"), *AUTH]))
            await client.send(h11.Data(data=b"{}"))
            await client.send(h11.EndOfMessage())
            with anyio.fail_after(3):
                await srv.service.started.wait()
        closed_at = time.monotonic()
        with anyio.fail_after(3):
            while not srv.service.cancelled_at:
                await anyio.sleep(0.01)
        assert srv.service.cancelled_at[0] - closed_at < 1.0


async def test_max_concurrent_sessions_gives_529() -> None:
    async with running(max_sessions=1) as srv:
        async with H11Client.connect(srv.port) as first, H11Client.connect(srv.port) as second:
            async with anyio.create_task_group() as tg:
                results: list[Response] = []

                async def blocked() -> None:
                    results.append(await first.request("POST", "/v1/messages", AUTH + [("x-mode", "block")], b"{}"))

                tg.start_soon(blocked)
                with anyio.fail_after(3):
                    await srv.service.started.wait()
                overloaded = await second.request("POST", "/v1/messages", AUTH, b"{}")
                health = await second.request("GET", "/health")
                srv.service.release.set()
        assert overloaded.status == 529 and overloaded.reason == b"Overloaded"
        assert overloaded.json()["error"]["type"] == "overloaded_error"  # type: ignore[index]
        assert health.status == 200 and results[0].status == 200


# --- HTTP/2 --------------------------------------------------------------------------------------


async def test_h2_prior_knowledge() -> None:
    async with running() as srv, H2Client.connect(srv.port) as client:
        health = await client.request("GET", "/health")
        denied = await client.request("POST", "/v1/messages", [("x-api-key", "nope")], b"{}")
        missing = await client.request("GET", "/missing")
    assert health.status == 200 and health.json()["status"] == "ok"  # type: ignore[index]
    assert health.headers["x-request-id"].startswith("req_")
    assert denied.status == 401 and denied.json()["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert missing.status == 404


async def test_h2_concurrent_streams_are_streamed() -> None:
    async with running() as srv, H2Client.connect(srv.port) as client:
        ids = [await client.start("POST", "/v1/messages", AUTH, b"{}") for _ in range(3)]
        t0 = time.monotonic()
        responses = [await client.wait(i) for i in ids]
        elapsed = time.monotonic() - t0
    expected = b"".join(f"event: ping\ndata: {i}\n\n".encode() for i in range(5))
    for response in responses:
        assert response.status == 200 and response.body == expected
        assert len(response.pieces) == 5
    assert elapsed < 1.2  # three 0.5 s streams ran in parallel


class BigBody:
    """A raw handler answering with a body larger than the default flow-control window."""

    size = 3 * 1024 * 1024

    async def __call__(self, head: RequestHead, body: RequestBody, respond: Responder) -> None:
        await respond.send_response(200, [("content-type", "application/octet-stream")], b"z" * self.size)


async def test_h2_flow_control_for_large_bodies() -> None:
    async with running(handler=BigBody()) as srv, H2Client.connect(srv.port) as client:
        with anyio.fail_after(10):
            response = await client.request("GET", "/")
    assert response.status == 200 and len(response.body) == BigBody.size


async def test_h2_reset_cancels_the_handler() -> None:
    async with running() as srv, H2Client.connect(srv.port) as client:
        stream_id = await client.start("POST", "/v1/messages", AUTH + [("x-mode", "forever")], b"{}")
        with anyio.fail_after(3):
            await srv.service.started.wait()
        client.conn.reset_stream(stream_id)
        await client.flush()
        reset_at = time.monotonic()
        with anyio.fail_after(3):
            while not srv.service.cancelled_at:
                await anyio.sleep(0.01)
        assert srv.service.cancelled_at[0] - reset_at < 1.0
        assert (await client.request("GET", "/health")).status == 200


async def test_h2_413() -> None:
    async with running(limits=ConnectionLimits(max_body=50_000)) as srv, H2Client.connect(srv.port) as client:
        declared = await client.request("POST", "/v1/messages", AUTH + [("content-length", "60000")], b"")
        assert declared.status == 413
        stream_id = await client.start("POST", "/v1/messages", AUTH, more=True)
        for _ in range(4):
            client.conn.send_data(stream_id, b"q" * 16_000)
        client.conn.end_stream(stream_id)
        await client.flush()
        with anyio.fail_after(5):
            streamed = await client.wait(stream_id)
        assert streamed.status == 413
        assert (await client.request("GET", "/health")).status == 200


# --- TLS + ALPN ----------------------------------------------------------------------------------


def client_context(cert: Path, protocols: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(protocols)
    return context


async def test_tls_alpn_h2_and_http11(certificate: tuple[Path, Path]) -> None:
    from adapters.anyio_server import make_ssl_context

    cert, key = certificate
    async with running(ssl_context=make_ssl_context(str(cert), str(key))) as srv:
        async with H2Client.connect(srv.port, ssl_context=client_context(cert, ["h2"])) as h2_client:
            assert h2_client.stream.extra(TLSAttribute.alpn_protocol) == "h2"
            assert (await h2_client.request("GET", "/health")).status == 200
        async with H11Client.connect(srv.port, ssl_context=client_context(cert, ["http/1.1"])) as h11_client:
            assert h11_client.stream.extra(TLSAttribute.alpn_protocol) == "http/1.1"
            response = await h11_client.request("GET", "/v1/models", AUTH)
            assert response.status == 200
            # Streaming over TLS: the disconnect watcher reads while the handler writes.
            streamed = await h11_client.request("POST", "/v1/messages", AUTH, b"{}")
            assert streamed.status == 200 and streamed.body.count(b"event: ping") == 5
        async with H2Client.connect(srv.port, ssl_context=client_context(cert, ["h2"])) as h2_client:
            ids = [await h2_client.start("POST", "/v1/messages", AUTH, b"{}") for _ in range(2)]
            for stream_id in ids:
                assert (await h2_client.wait(stream_id)).body.count(b"event: ping") == 5


# --- shutdown ------------------------------------------------------------------------------------


async def test_graceful_shutdown_lets_streams_finish() -> None:
    async with running() as srv:
        async with H11Client.connect(srv.port) as client:
            async with anyio.create_task_group() as tg:
                results: list[Response] = []

                async def stream() -> None:
                    results.append(await client.request("POST", "/v1/messages", AUTH, b"{}"))

                tg.start_soon(stream)
                with anyio.fail_after(3):
                    await srv.service.started.wait()
                srv.server.shutdown()
                await anyio.sleep(0.05)
                with pytest.raises(OSError):
                    await anyio.connect_tcp("127.0.0.1", srv.port)
        assert results[0].status == 200 and results[0].body.count(b"event: ping") == 5


async def test_shutdown_deadline_ends_streams_with_an_error_event() -> None:
    async with running(shutdown_timeout=0.3) as srv, H11Client.connect(srv.port) as client:
        async with anyio.create_task_group() as tg:
            results: list[Response] = []

            async def stream() -> None:
                results.append(await client.request("POST", "/v1/messages", AUTH + [("x-mode", "forever")], b"{}"))

            tg.start_soon(stream)
            with anyio.fail_after(3):
                await srv.service.started.wait()
            t0 = time.monotonic()
            srv.server.shutdown()
        assert time.monotonic() - t0 < 3
        assert results[0].status == 200
        assert results[0].body.endswith(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n')


async def test_shutdown_closes_idle_keep_alive_connections() -> None:
    async with running() as srv, H11Client.connect(srv.port) as client:
        assert (await client.request("GET", "/health")).status == 200
        srv.server.shutdown()
        with anyio.fail_after(2):
            while srv.server.connections:
                await anyio.sleep(0.02)


async def test_tcp_nodelay_is_set_on_accepted_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    values: list[int] = []
    original = Server._connection

    async def spy(self: Server, stream: AioStream) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(original, self, stream)
            await anyio.sleep(0)
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            values.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(Server, "_connection", spy)
    async with running() as srv, H11Client.connect(srv.port) as client:
        assert (await client.request("GET", "/health")).status == 200
    assert values and values[0] != 0


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with running() as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            await stream.send(
                b"GET /health HTTP/1.1\r\nhost: x\r\nx-request-id: first\r\n\r\n"
                b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-request-id: second\r\nconnection: close\r\n"
                b"x-api-key: " + TOKEN.encode() + b"\r\n\r\n"
            )
            raw = b""
            with anyio.fail_after(5), contextlib.suppress(anyio.EndOfStream):
                while True:
                    raw += await stream.receive()
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert raw.index(b"x-request-id: first") < raw.index(b"x-request-id: second")
    assert b'"object":"list"' in raw


class Firehose:
    """A raw handler streaming 1 MiB chunks until cancelled."""

    def __init__(self) -> None:
        self.cancelled_at: list[float] = []

    async def __call__(self, head: RequestHead, body: RequestBody, respond: Responder) -> None:
        await respond.start_stream(200, [("content-type", "application/octet-stream")])
        try:
            while True:
                await respond.send_chunk(b"f" * (1 << 20))
        except anyio.get_cancelled_exc_class():
            self.cancelled_at.append(time.monotonic())
            raise


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    handler = Firehose()
    async with running(handler=handler, limits=ConnectionLimits(write_timeout=0.3)) as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            await stream.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            t0 = time.monotonic()
            with anyio.fail_after(5):
                while not handler.cancelled_at:
                    await anyio.sleep(0.02)
        assert handler.cancelled_at[0] - t0 < 3


def test_write_watch_fires_between_one_and_one_and_a_quarter_timeouts() -> None:
    from adapters.anyio_server._common import WriteWatch

    watch = WriteWatch(4.0)  # checked every second
    assert watch.period == 1.0
    checks = 0
    watch.begin()
    while not watch.check():
        checks += 1
    assert checks == 4  # fired at the fifth check: 4 to 5 periods after the write began
    # Writes that finish, or a new write each period, never fire it.
    fresh = WriteWatch(4.0)
    for _ in range(20):
        fresh.begin()
        assert not fresh.check()
        fresh.end()
        assert not fresh.check()


async def test_an_h2_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    handler = Firehose()
    async with running(handler=handler, limits=ConnectionLimits(write_timeout=0.3)) as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            # Windows wide open: flow control never stops the server, only the full socket does.
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
            conn.increment_flow_control_window(2**31 - 1 - 65535)
            conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")], end_stream=True)
            await stream.send(conn.data_to_send())
            t0 = time.monotonic()
            with anyio.fail_after(5):
                while not handler.cancelled_at:
                    await anyio.sleep(0.02)
        assert handler.cancelled_at[0] - t0 < 3


async def test_h2_graceful_shutdown_lets_streams_finish() -> None:
    async with running() as srv, H2Client.connect(srv.port) as client:
        stream_id = await client.start("POST", "/v1/messages", AUTH, b"{}")
        with anyio.fail_after(3):
            await srv.service.started.wait()
        srv.server.shutdown()
        with anyio.fail_after(5):
            response = await client.wait(stream_id)
    assert response.status == 200 and response.body.count(b"event: ping") == 5
