"""The Kiro service end to end: the official SDKs -> kiro2api serve -> a scripted fake Kiro on loopback.

The fake speaks the real wire format (EventStream frames from the core's encoder, Social refresh
JSON), so these tests run the whole path: routing, auth, parsing, conversion, the Exchange with
refresh and failover, the upstream client, the translator and both HTTP directions.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import anyio
import anyio.abc
import h11
import openai
import pytest

from adapters.anyio_server import Server
from adapters.compose import serve_gateway
from adapters.runtime.settings import load_settings
from kiro_protocol.responses._upstream_events import AssistantResponse, ContextUsage, Metering, UpstreamEvent, UpstreamException
from kiro_protocol.responses._upstream_parse import encode_upstream_event

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TOKEN = "client-token-for-service-tests"


def refresh_token(index: int) -> str:
    return f"rt-{index}-" + "x" * 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def frames(*events: UpstreamEvent) -> list[bytes]:
    return [encode_upstream_event(e) for e in events]


HELLO = frames(
    AssistantResponse(content="Hello"),
    AssistantResponse(content=", wor"),
    AssistantResponse(content="ld! ✓"),
    Metering(unit="credit", usage=0.25),
    ContextUsage(percentage=1.5),
)


@dataclass
class FakeKiro:
    """Scripted Kiro: Social refresh and generateAssistantResponse, keyed by the access token."""

    port: int = 0
    #: access token -> (status, body) to answer instead of a stream.
    failures: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    #: access token -> frames of a 200 answer for that account only.
    streams: dict[str, list[bytes]] = field(default_factory=dict)
    #: Frames of a successful answer, and the pause between them.
    answer: list[bytes] = field(default_factory=lambda: list(HELLO))
    pause: float = 0.01
    forever: bool = False
    #: Issue a new access token on every refresh (``at-<account>-<n>``) instead of ``at-<account>``.
    new_token_per_refresh: bool = False
    refreshed: list[str] = field(default_factory=list)
    generate_tokens: list[str] = field(default_factory=list)
    bodies: list[dict[str, object]] = field(default_factory=list)
    disconnected_at: list[float] = field(default_factory=list)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            while True:
                head, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive())
                        continue
                    if isinstance(event, h11.ConnectionClosed):
                        return
                    if isinstance(event, h11.Request):
                        head = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                assert head is not None
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                await self.respond(head.target.decode(), headers, body, conn, stream)
                if conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()

    async def respond(
        self, path: str, headers: dict[str, str], body: bytes, conn: h11.Connection, stream: anyio.abc.SocketStream
    ) -> None:
        async def send(event: h11.Event) -> None:
            data = conn.send(event)
            if data:
                await stream.send(data)

        async def complete(status: int, payload: bytes) -> None:
            await send(h11.Response(status_code=status, headers=[("content-length", str(len(payload))), ("content-type", "application/json")]))
            await send(h11.Data(data=payload))
            await send(h11.EndOfMessage())

        if path.endswith("/refreshToken"):
            refresh = json.loads(body)["refreshToken"]
            self.refreshed.append(refresh)
            access = "at-" + refresh.split("-")[1]
            if self.new_token_per_refresh:
                access += f"-{self.refreshed.count(refresh)}"
            await complete(200, json.dumps({"accessToken": access, "expiresIn": 3600}).encode())
            return
        if path.endswith("/generateAssistantResponse"):
            token = headers.get("authorization", "").removeprefix("Bearer ")
            self.generate_tokens.append(token)
            self.bodies.append(json.loads(body))
            if token in self.failures:
                await complete(*self.failures[token])
                return
            await send(h11.Response(status_code=200, headers=[("content-type", "application/vnd.amazon.eventstream")]))
            try:
                while True:
                    for frame in self.streams.get(token, self.answer):
                        await send(h11.Data(data=frame))
                        await anyio.sleep(self.pause)
                    if not self.forever:
                        break
            except (anyio.BrokenResourceError, OSError):
                self.disconnected_at.append(time.monotonic())
                raise
            await send(h11.EndOfMessage())
            return
        await complete(404, b'{"message":"unknown"}')


@dataclass
class Stack:
    kiro: FakeKiro
    server: Server
    #: SDK clients to close before the event loop ends.
    clients: list[anthropic.AsyncAnthropic | openai.AsyncOpenAI] = field(default_factory=list)

    def anthropic(self, api_key: str = TOKEN) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=self.base_url, api_key=api_key, max_retries=0)
        self.clients.append(client)
        return client

    def openai(self) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=TOKEN, max_retries=0)
        self.clients.append(client)
        return client

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, *, accounts: int = 1, extra: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    kiro = FakeKiro()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    kiro.port = int(listener.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1])
    config = [{"auth": "Social", "refreshToken": refresh_token(i), "description": f"acct{i}"} for i in range(accounts)]
    environ = {
        "KIRO_CLIENT_TOKEN": TOKEN,
        "PORT": "0",
        "KIRO_STATE": "memory://",
        "KIRO_UPSTREAM_URL": f"http://127.0.0.1:{kiro.port}",
        "KIRO_SOCIAL_REFRESH_URL": f"http://127.0.0.1:{kiro.port}/refreshToken",
        "TOKEN_SELECTION_STRATEGY": "sequential",
        **({"KIRO_AUTH_TOKEN": json.dumps(config)} if accounts else {}),
        **(extra or {}),
    }
    settings = load_settings(environ=environ, cwd=tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, kiro.handle)
        server = await tg.start(lambda task_status: serve_gateway(settings, signals=False, task_status=task_status))
        running = Stack(kiro, server)
        try:
            yield running
        finally:
            for client in running.clients:
                await client.close()
        server.shutdown()
        with anyio.fail_after(10):
            while server.connections:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()


MESSAGE = {"role": "user", "content": "Say hello"}


async def test_anthropic_sdk_non_streaming(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        message = await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[MESSAGE])  # type: ignore[list-item]
    assert message.content[0].type == "text" and message.content[0].text == "Hello, world! ✓"
    assert message.model == "claude-sonnet-4-5" and message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert s.kiro.refreshed == [refresh_token(0)] and s.kiro.generate_tokens == ["at-0"]
    state = s.kiro.bodies[0]["conversationState"]
    assert isinstance(state, dict) and "currentMessage" in state


async def test_anthropic_sdk_streaming(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        async with s.anthropic().messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[MESSAGE]) as stream:  # type: ignore[list-item]
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert "".join(pieces) == "Hello, world! ✓"
    assert final.stop_reason == "end_turn"


async def test_openai_sdk(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.openai()
        completion = await client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
        chunks = await client.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    assert completion.choices[0].message.content == "Hello, world! ✓"
    assert completion.id.startswith("chatcmpl-")
    assert streamed == "Hello, world! ✓"


async def test_count_tokens_models_and_health(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.anthropic()
        counted = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=[MESSAGE])  # type: ignore[list-item]
        models = await client.models.list()
        async with await anyio.connect_tcp("127.0.0.1", s.server.port) as conn:
            await conn.send(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            raw = b""
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    raw += await conn.receive()
    assert counted.input_tokens > 0
    ids = [m.id for m in models.data]
    assert "claude-sonnet-4-5" in ids and all(m.type == "model" for m in models.data)
    health = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert health["accounts"]["configured"] == 1 and health["status"] in ("ok", "degraded")


async def test_throttled_account_fails_over(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=2) as s:
        s.kiro.failures["at-0"] = (429, b'{"message":"Too many requests"}')
        message = await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE])  # type: ignore[list-item]
    assert message.content[0].text == "Hello, world! ✓"  # type: ignore[union-attr]
    assert s.kiro.generate_tokens == ["at-0", "at-1"]


async def test_input_too_long_is_a_400_before_any_stream(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.kiro.failures["at-0"] = (
            400,
            b'{"message":"Input content length exceeds threshold.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}',
        )
        with pytest.raises(anthropic.BadRequestError) as info:
            async with s.anthropic().messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE]) as stream:  # type: ignore[list-item]
                async for _ in stream:
                    pass
    assert "prompt is too long" in str(info.value)
    assert len(s.kiro.generate_tokens) == 1  # the client's fault: no retry elsewhere


async def test_every_account_failing_gives_an_error_status(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=2) as s:
        for token in ("at-0", "at-1"):
            s.kiro.failures[token] = (500, b'{"message":"boom"}')
        with pytest.raises(anthropic.APIStatusError) as info:
            await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE])  # type: ignore[list-item]
    assert info.value.status_code >= 500
    assert s.kiro.generate_tokens == ["at-0", "at-1"]


async def test_client_disconnect_closes_the_upstream_within_a_second(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.kiro.forever = True
        s.kiro.pause = 0.02
        async with s.anthropic().messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE]) as stream:  # type: ignore[list-item]
            async for text in stream.text_stream:
                if text:
                    break
        closed_at = time.monotonic()
        with anyio.fail_after(3):
            while not s.kiro.disconnected_at:
                await anyio.sleep(0.01)
    assert s.kiro.disconnected_at[0] - closed_at < 1.0


async def test_bad_requests_in_each_dialect(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        with pytest.raises(anthropic.BadRequestError) as bad:
            await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=0, messages=[MESSAGE])  # type: ignore[list-item]
        with pytest.raises(anthropic.NotFoundError):
            await s.anthropic().messages.create(model="gpt-2", max_tokens=10, messages=[MESSAGE])  # type: ignore[list-item]
        with pytest.raises(anthropic.AuthenticationError):
            await s.anthropic("wrong").messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=[MESSAGE]  # type: ignore[list-item]
            )
        client = s.openai()
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="claude-sonnet-4-5", messages=[])
    assert "max_tokens" in str(bad.value)
    assert s.kiro.generate_tokens == []


async def test_no_accounts_and_no_simulator_is_a_503(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=0, extra={"SIMULATOR_WITHOUT_ACCOUNTS": "false"}) as s:
        with pytest.raises(anthropic.APIStatusError) as info:
            await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[MESSAGE])  # type: ignore[list-item]
    assert info.value.status_code == 503 and "KIRO_AUTH_TOKEN" in str(info.value)


async def test_sse_over_http2(tmp_path: Path) -> None:
    from tests.e2e.test_anyio_server import H2Client

    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [MESSAGE]}).encode()
    async with stack(tmp_path) as s, H2Client.connect(s.server.port) as client:
        response = await client.request(
            "POST", "/v1/messages", [("x-api-key", TOKEN), ("content-type", "application/json")], body
        )
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.body.decode().split("\n\n") if block]
    assert events[0].startswith("event: message_start") and events[-1].startswith("event: message_stop")
    texts = [json.loads(e.split("data: ", 1)[1])["delta"]["text"] for e in events if '"text_delta"' in e]
    assert "".join(texts) == "Hello, world! ✓"


async def test_shutdown_deadline_ends_a_kiro_stream_with_an_error_event(tmp_path: Path) -> None:
    from tests.e2e.test_anyio_server import H11Client

    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [MESSAGE]}).encode()
    async with stack(tmp_path, extra={"SHUTDOWN_TIMEOUT_SECONDS": "0.3"}) as s:
        s.kiro.forever = True
        async with H11Client.connect(s.server.port) as client, anyio.create_task_group() as tg:
            results = []

            async def call() -> None:
                results.append(await client.request("POST", "/v1/messages", [("x-api-key", TOKEN)], body))

            tg.start_soon(call)
            with anyio.fail_after(5):
                while not s.kiro.generate_tokens:
                    await anyio.sleep(0.02)
            await anyio.sleep(0.2)
            s.server.shutdown()
    response = results[0]
    assert response.status == 200
    last = [block for block in response.body.decode().split("\n\n") if block][-1]
    assert last.startswith("event: error") and "overloaded_error" in last


async def test_failure_inside_a_200_before_content_fails_over(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=2) as s:
        s.kiro.streams["at-0"] = frames(UpstreamException(exception_type="ThrottlingException", message="slow down"))
        async with s.anthropic().messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE]) as stream:  # type: ignore[list-item]
            text = "".join([t async for t in stream.text_stream])
    assert text == "Hello, world! ✓"  # nothing of the failed attempt reached the client
    assert s.kiro.generate_tokens == ["at-0", "at-1"]


async def test_failure_after_content_ends_the_stream_with_an_error_event(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=2) as s:
        s.kiro.streams["at-0"] = frames(
            AssistantResponse(content="Partial"), UpstreamException(exception_type="InternalServerException", message="oops")
        )
        with pytest.raises(anthropic.APIStatusError) as info:
            async with s.anthropic().messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE]) as stream:  # type: ignore[list-item]
                async for _ in stream:
                    pass
    assert "InternalServerException" in str(info.value) or "oops" in str(info.value)
    assert s.kiro.generate_tokens == ["at-0"]  # committed: no retry after the client saw content


async def test_no_accounts_serves_from_the_simulator_and_says_so(tmp_path: Path) -> None:
    async with stack(tmp_path, accounts=0) as s:
        message = await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=[MESSAGE])  # type: ignore[list-item]
        async with await anyio.connect_tcp("127.0.0.1", s.server.port) as conn:
            await conn.send(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            raw = b""
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    raw += await conn.receive()
    assert message.content and message.stop_reason in ("end_turn", "max_tokens")
    assert s.kiro.generate_tokens == []  # the fake Kiro was not used
    health = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert health["upstream"] == "simulator" and "simulator" in health["warning"]


async def test_a_rejected_access_token_is_refreshed_then_the_request_succeeds(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.kiro.new_token_per_refresh = True
        s.kiro.failures["at-0-1"] = (403, b'{"message":"The bearer token included in the request is invalid."}')
        message = await s.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[MESSAGE])  # type: ignore[list-item]
    assert message.content[0].text == "Hello, world! ✓"  # type: ignore[union-attr]
    assert s.kiro.generate_tokens == ["at-0-1", "at-0-2"]
    assert s.kiro.refreshed == [refresh_token(0), refresh_token(0)]


async def test_health_reports_an_unreachable_state_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.runtime.pool_driver import PoolDriver

    async def broken(self: PoolDriver) -> dict[str, int]:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(PoolDriver, "account_counts", broken)
    async with stack(tmp_path) as s:
        async with await anyio.connect_tcp("127.0.0.1", s.server.port) as conn:
            await conn.send(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            raw = b""
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    raw += await conn.receive()
    assert raw.startswith(b"HTTP/1.1 503 ")
    health = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert health["status"] == "degraded" and health["accounts"]["error"] == "state store unavailable"


async def test_disable_stream_sends_the_whole_answer_at_once(tmp_path: Path) -> None:
    from tests.e2e.test_anyio_server import H11Client

    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [MESSAGE]}).encode()
    async with stack(tmp_path, extra={"DISABLE_STREAM": "true"}) as s, H11Client.connect(s.server.port) as client:
        s.kiro.pause = 0.05
        response = await client.request("POST", "/v1/messages", [("x-api-key", TOKEN)], body)
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert len(response.pieces) == 1  # one write, after the answer was complete
    assert response.body.rstrip().endswith(b'{"type":"message_stop"}')


def test_lifecycle_watchers_are_called_once_at_terminate_and_can_leave() -> None:
    from adapters.runtime.app import Lifecycle

    lifecycle = Lifecycle()
    calls: list[str] = []
    lifecycle.on_terminate(lambda: calls.append("a"))
    unwatch = lifecycle.on_terminate(lambda: calls.append("b"))
    unwatch()
    lifecycle.terminate()
    lifecycle.terminate()
    assert calls == ["a"] and lifecycle.terminating.is_set()
    # Watching after the deadline passed: called at once.
    lifecycle.on_terminate(lambda: calls.append("late"))
    assert calls == ["a", "late"]


async def test_a_silent_upstream_gets_keep_alive_pings_to_the_client(tmp_path: Path) -> None:
    # The runner's one-second clock sends the pings: here the upstream is silent for 2.2 s
    # after the first text, with pings due after 1 s of silence.
    import http.client

    def post(port: int) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True, "messages": [MESSAGE]}
        conn.request("POST", "/v1/messages", json.dumps(body), {"x-api-key": TOKEN, "content-type": "application/json"})
        response = conn.getresponse()
        try:
            return response.status, response.read().decode()
        finally:
            conn.close()

    async with stack(tmp_path, extra={"PING_INTERVAL_SECONDS": "1"}) as s:
        s.kiro.answer = frames(AssistantResponse(content="Hello"), AssistantResponse(content=" there"))
        s.kiro.pause = 2.2
        status, text = await anyio.to_thread.run_sync(post, s.server.port)
    assert status == 200
    hello, there = text.index('"text":"Hello"'), text.index('"text":" there"')
    assert "event: ping" in text[hello:there] and "message_stop" in text[there:]
