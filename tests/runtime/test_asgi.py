"""The ASGI adapter called directly with scope/receive/send (no server), over a scripted service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import pytest

from adapters.asgi import KiroASGI, create_app
from adapters.asgi._types import Message
from adapters.runtime.app import Request, RequestContext, Responder
from adapters.runtime.basic_service import BasicService
from adapters.runtime.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

TOKEN = "asgi-test-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ScriptedService(BasicService):
    """``/v1/messages`` streams ``chunks`` pieces, then waits for ever if ``hang``."""

    def __init__(self, *, chunks: int = 3, hang: bool = False) -> None:
        super().__init__()
        self.chunks = chunks
        self.hang = hang
        self.cancelled = anyio.Event()
        self.bodies: list[bytes] = []

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        self.bodies.append(request.body)
        await respond.start_stream(200, [("content-type", "text/event-stream")])
        try:
            for i in range(self.chunks):
                await respond.send_chunk(f"data: {i}\n\n".encode())
            if self.hang:
                await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        await respond.end_stream()


@dataclass
class Exchange:
    """One ASGI call: what the app received and what it sent."""

    inbox: list[Message]
    sent: list[Message] = field(default_factory=list)
    received: int = 0
    disconnect: anyio.Event = field(default_factory=anyio.Event)
    #: How many messages the app had sent when it asked for each message.
    sent_at_receive: list[int] = field(default_factory=list)

    async def receive(self) -> Message:
        self.sent_at_receive.append(len(self.sent))
        if self.received < len(self.inbox):
            self.received += 1
            return self.inbox[self.received - 1]
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return int(starts[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def scope(
    method: str, path: str, headers: Sequence[tuple[str, str]] = (), *, root_path: str = "", query: bytes = b""
) -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


def body_messages(*pieces: bytes) -> list[Message]:
    if not pieces:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    return [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]


def make_app(service: BasicService | None = None, **overrides: object) -> KiroASGI:
    values: dict[str, object] = {"client_token": TOKEN, "max_request_body_bytes": 1000}
    values.update(overrides)
    return create_app(Settings(**values), service=service or ScriptedService())  # type: ignore[arg-type]


async def call(app: KiroASGI, scope_: dict[str, object], inbox: list[Message] | None = None) -> Exchange:
    exchange = Exchange(inbox=body_messages() if inbox is None else inbox)
    await app(scope_, exchange.receive, exchange.send)
    return exchange


async def test_lifespan_protocol_starts_and_stops() -> None:
    app = make_app()
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []
    proceed = anyio.Event()
    seen: list[bool] = []

    async def receive() -> Message:
        if len(sent) == 1:
            seen.append(app.lifecycle is not None and not app.lifecycle.shutting_down.is_set())
            await proceed.wait()
        return events[len(sent)]

    async def send(message: Message) -> None:
        sent.append(message)
        proceed.set()

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen == [True]
    assert app.lifecycle is not None and app.lifecycle.shutting_down.is_set()
    # After shutdown the app refuses requests clearly instead of failing.
    exchange = await call(app, scope("GET", "/health"))
    assert exchange.status == 503


async def test_requests_before_startup_get_a_clear_503() -> None:
    exchange = await call(make_app(), scope("GET", "/health"))
    assert exchange.status == 503
    assert "lifespan" in json.loads(exchange.body)["error"]["message"]


async def test_health_models_auth_and_404_with_request_id_and_cors() -> None:
    app = make_app()
    async with app.lifespan():
        health = await call(app, scope("GET", "/health"))
        assert health.status == 200 and json.loads(health.body)["status"] == "ok"
        assert health.headers["x-request-id"].startswith("req_")
        assert health.headers["access-control-allow-origin"] == "*"
        assert health.headers["content-length"] == str(len(health.body))
        denied = await call(app, scope("GET", "/v1/models"))
        assert denied.status == 401 and json.loads(denied.body)["error"]["type"] == "authentication_error"
        models = await call(app, scope("GET", "/v1/models", [("authorization", f"Bearer {TOKEN}")]))
        assert models.status == 200 and json.loads(models.body)["data"]
        missing = await call(app, scope("GET", "/nowhere", [("x-api-key", TOKEN)]))
        assert missing.status == 404
        echoed = await call(app, scope("GET", "/health", [("x-request-id", "my-id-1")]))
        assert echoed.headers["x-request-id"] == "my-id-1"


async def test_root_path_mounting_routes_below_the_prefix() -> None:
    app = make_app()
    async with app.lifespan():
        models = await call(app, scope("GET", "/v1/models", [("x-api-key", TOKEN)], root_path="/kiro"))
        assert models.status == 200
        # A query string is ignored by routing, as in the standalone server.
        beta = await call(app, scope("GET", "/v1/models", [("x-api-key", TOKEN)], root_path="/kiro", query=b"beta=true"))
        assert beta.status == 200


async def test_head_root_keeps_the_length_and_sends_no_body() -> None:
    app = make_app()
    async with app.lifespan():
        get = await call(app, scope("GET", "/"))
        head = await call(app, scope("HEAD", "/"))
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(get.body)) != "0"


async def test_declared_body_over_the_limit_is_413_without_reading_it() -> None:
    app = make_app()
    async with app.lifespan():
        headers = [("x-api-key", TOKEN), ("content-length", "5000")]
        exchange = await call(app, scope("POST", "/v1/messages", headers), body_messages(b"x" * 600, b"x" * 4400))
    assert exchange.status == 413 and json.loads(exchange.body)["error"]["type"] == "request_too_large"
    # The answer went out before any of the body was read; the rest is then dropped, not kept.
    assert exchange.sent_at_receive[0] == 2


async def test_streamed_body_over_the_limit_stops_reading_at_the_limit() -> None:
    app = make_app()
    async with app.lifespan():
        pieces = [b"x" * 600, b"x" * 600, b"x" * 600]
        exchange = await call(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]), body_messages(*pieces))
    assert exchange.status == 413
    # Answered as soon as the limit was passed (after the second piece), before reading the third.
    assert exchange.sent_at_receive[:3] == [0, 0, 2]


async def test_body_in_pieces_is_joined() -> None:
    service = ScriptedService()
    app = make_app(service)
    async with app.lifespan():
        exchange = await call(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]), body_messages(b"ab", b"", b"cd"))
    assert exchange.status == 200 and service.bodies == [b"abcd"]


async def test_streaming_uses_more_body_and_one_start() -> None:
    app = make_app(ScriptedService(chunks=3))
    async with app.lifespan():
        exchange = await call(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]))
    assert exchange.status == 200
    assert "content-length" not in exchange.headers
    bodies = [m for m in exchange.sent if m["type"] == "http.response.body"]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]
    assert exchange.body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_disconnect_cancels_the_handler() -> None:
    service = ScriptedService(chunks=1, hang=True)
    app = make_app(service)
    async with app.lifespan():
        exchange = Exchange(inbox=body_messages())
        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]), exchange.receive, exchange.send)
                while len(exchange.sent) < 2:
                    await anyio.sleep(0.01)
                exchange.disconnect.set()
                await service.cancelled.wait()
    assert [m.get("more_body") for m in exchange.sent[1:]] == [True]


async def test_failed_send_cancels_the_handler_like_a_disconnect() -> None:
    service = ScriptedService(chunks=5, hang=True)
    app = make_app(service)
    async with app.lifespan():
        exchange = Exchange(inbox=body_messages())

        async def broken_send(message: Message) -> None:
            if message.get("more_body"):
                raise ConnectionResetError("peer reset")
            exchange.sent.append(message)

        with anyio.fail_after(2):
            await app(scope("POST", "/v1/messages", [("x-api-key", TOKEN)]), exchange.receive, broken_send)
    assert service.cancelled.is_set()


async def test_session_limit_answers_529() -> None:
    service = ScriptedService(chunks=1, hang=True)
    app = make_app(service, max_concurrent_sessions=1)
    async with app.lifespan():
        first = Exchange(inbox=body_messages())
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]), first.receive, first.send)
            while len(first.sent) < 2:
                await anyio.sleep(0.01)
            second = await call(app, scope("POST", "/v1/messages", [("x-api-key", TOKEN)]))
            first.disconnect.set()
    assert second.status == 529 and json.loads(second.body)["error"]["type"] == "overloaded_error"


async def test_openai_route_errors_use_the_openai_shape() -> None:
    app = make_app(BasicService())
    async with app.lifespan():
        exchange = await call(app, scope("POST", "/v1/chat/completions", [("x-api-key", TOKEN)]))
    error = json.loads(exchange.body)["error"]
    assert exchange.status == 501 and "message" in error and "code" in error


async def test_websocket_scopes_are_refused() -> None:
    with pytest.raises(RuntimeError, match="HTTP only"):
        await call(make_app(), {"type": "websocket"})
