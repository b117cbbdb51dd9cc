"""The httpcore upstream client against a scripted loopback HTTP/1.1 server (h11)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import h11
import httpcore
import pytest

from adapters.runtime.upstream import _proxy, _Stream, UpstreamClient, UpstreamConnectionError
from kiro_protocol.http._messages import HttpRequest
from kiro_protocol.pool._upstream_errors import FailureClass

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Seen:
    path: str
    peer_port: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A loopback HTTP/1.1 server whose behaviour is chosen by the request path."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    disconnected_at: list[float] = field(default_factory=list)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        peer = int(stream.extra(anyio.abc.SocketAttribute.remote_address)[1])
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
                path = head.target.decode()
                self.seen.append(Seen(path, peer, {k.decode(): v.decode() for k, v in head.headers}, body))
                await self.respond(path, conn, stream, body)
                if conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()

    async def respond(self, path: str, conn: h11.Connection, stream: anyio.abc.SocketStream, body: bytes) -> None:
        async def send(event: h11.Event) -> None:
            data = conn.send(event)
            if data:
                await stream.send(data)

        if path == "/close":
            await stream.aclose()
            return
        if path == "/bursts":  # two bursts of five chunks, each burst in one write
            head = conn.send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]))
            await stream.send((head or b""))
            for burst in range(2):
                await anyio.sleep(0.05)
                await stream.send(b"".join(conn.send(h11.Data(data=f"b{burst}c{i};".encode())) or b"" for i in range(5)))
            await anyio.sleep(0.05)
            await send(h11.EndOfMessage())
            return
        if path == "/silent":
            await anyio.sleep(30)
        if path in ("/stream", "/forever", "/hang"):
            await send(h11.Response(status_code=200, headers=[("content-type", "application/vnd.amazon.eventstream")]))
            if path == "/hang":
                await anyio.sleep(30)
            count = 5 if path == "/stream" else 10_000
            try:
                for i in range(count):
                    await send(h11.Data(data=f"chunk{i};".encode()))
                    await anyio.sleep(0.02)
            except (anyio.BrokenResourceError, OSError):
                self.disconnected_at.append(time.monotonic())
                raise
            await send(h11.EndOfMessage())
            return
        status = 403 if path == "/forbidden" else 200
        payload = b'{"echo":' + str(len(body)).encode() + b"}"
        await send(h11.Response(status_code=status, headers=[("content-length", str(len(payload)))]))
        await send(h11.Data(data=payload))
        await send(h11.EndOfMessage())
        if path == "/small-then-hang-up":
            # A complete keep-alive answer, then the server drops the idle connection (as
            # upstream does after about a minute).
            await stream.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server.port = int(listener.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1])
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


def req(server: Upstream, path: str, body: bytes = b"", method: str = "POST") -> HttpRequest:
    return HttpRequest(method=method, url=f"http://127.0.0.1:{server.port}{path}", headers=(("x-test", "1"),), body=body)


async def test_send_small_request(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        response = await client.send(req(upstream, "/small", b"hello"), account="a")
    assert response.status == 200 and response.body == b'{"echo":5}'
    assert ("content-length", "10") in response.headers
    assert upstream.seen[0].headers["x-test"] == "1" and upstream.seen[0].body == b"hello"


async def test_error_status_is_an_answer_not_an_exception(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        response = await client.send(req(upstream, "/forbidden"), account="a")
    assert response.status == 403


async def test_stream_yields_chunks_as_they_arrive(upstream: Upstream) -> None:
    arrivals: list[float] = []
    async with UpstreamClient() as client:
        async with client.stream(req(upstream, "/stream"), account="a") as answer:
            assert answer.status == 200 and dict(answer.headers)["content-type"] == "application/vnd.amazon.eventstream"
            body = b""
            with answer.deadline():
                async for chunk in answer.chunks:
                    arrivals.append(time.monotonic())
                    body += chunk
    assert body == b"".join(f"chunk{i};".encode() for i in range(5))
    # Chunks are delivered as they come (the server paces them), not buffered to the end.
    assert len(arrivals) >= 3 and arrivals[-1] - arrivals[0] > 0.04


async def test_the_wait_hook_runs_before_a_read_that_waits_not_per_chunk(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        flushed_at: list[int] = []
        received = 0

        async def flush() -> None:
            flushed_at.append(received)

        async with client.stream(req(upstream, "/bursts"), account="a") as answer:
            assert answer.wait_hook is not None
            answer.wait_hook.callback = flush
            pieces: list[bytes] = []
            with answer.deadline():
                async for piece in answer.chunks:
                    pieces.append(piece)
                    received += piece.count(b";")
        assert received == 10
        # A burst that arrived in one read is handed over as one piece, not a piece per chunk.
        assert pieces == [b"".join(f"b{burst}c{i};".encode() for i in range(5)) for burst in range(2)]
        # Once before each wait: after nothing, after the first burst, after the second; never
        # in the middle of a burst that arrived in one read.
        assert 5 in flushed_at and set(flushed_at) <= {0, 5, 10}
        # The connection goes back to the pool without the hook of the call that used it.
        async with client.stream(req(upstream, "/stream"), account="a") as again:
            assert again.wait_hook is not None and again.wait_hook.callback is None
    assert upstream.seen[0].peer_port == upstream.seen[1].peer_port


async def test_one_pool_per_account(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        for account in ("a", "a", "b", "b", "a"):
            await client.send(req(upstream, "/small"), account=account)
        assert client.pool_count == 2
    ports = [s.peer_port for s in upstream.seen]
    # Keep-alive within an account; never a connection shared across accounts.
    assert ports[0] == ports[1] == ports[4]
    assert ports[2] == ports[3]
    assert ports[0] != ports[2]


async def test_calls_beyond_the_connection_limit_wait_for_a_free_connection(upstream: Upstream) -> None:
    async with UpstreamClient(max_connections_per_account=2, connect_timeout=0.3) as client:
        async with contextlib.AsyncExitStack() as busy:
            for _ in range(2):
                await busy.enter_async_context(client.stream(req(upstream, "/hang"), account="a"))
            # Both connections are busy: a third call gives up at the pool timeout.
            with pytest.raises(UpstreamConnectionError) as info:
                await client.send(req(upstream, "/small"), account="a")
            assert "timed out waiting for a connection" in info.value.failure.message
        # Leaving closed the two unfinished answers, which freed their places.
        assert (await client.send(req(upstream, "/small"), account="a")).status == 200

    async with UpstreamClient(max_connections_per_account=1) as client:
        answers: list[int] = []

        async def waiting_call() -> None:
            answers.append((await client.send(req(upstream, "/small"), account="a")).status)

        async with anyio.create_task_group() as tg:
            async with client.stream(req(upstream, "/hang"), account="a"):
                tg.start_soon(waiting_call)
                await anyio.sleep(0.2)
                assert answers == []  # still waiting for the one connection
        assert answers == [200]  # it went as soon as the connection was given back


async def test_a_closed_account_does_not_keep_a_busy_connection(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        async with client.stream(req(upstream, "/stream"), account="a") as answer:
            (closed_pool,) = [pool for key, pool in client._pools.items() if key[0] == "a"]
            await client.close_account("a")
            with answer.deadline():
                body = b"".join([chunk async for chunk in answer.chunks])
        assert body.startswith(b"chunk0;")
        # Read to the end, yet closed rather than kept: the account's pool is gone.
        assert closed_pool.connections == 0 and not closed_pool._idle
        await client.send(req(upstream, "/small"), account="a")
    assert upstream.seen[0].peer_port != upstream.seen[1].peer_port


async def test_a_kept_alive_connection_the_server_closed_is_not_reused(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        first = await client.send(req(upstream, "/small-then-hang-up"), account="a")
        await anyio.sleep(0.1)  # the server's FIN has arrived: the idle connection is readable
        second = await client.send(req(upstream, "/small"), account="a")
    assert first.status == second.status == 200
    assert upstream.seen[0].peer_port != upstream.seen[1].peer_port


async def test_a_connection_that_closed_unnoticed_gets_the_request_again_on_a_new_one(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race no poll can close: the server drops an idle connection just as it is reused.
    The write goes nowhere and the answer never starts; the request goes once more, on a new
    connection, instead of failing the call."""
    from adapters.runtime.upstream_http1 import Http1Connection

    monkeypatch.setattr(Http1Connection, "has_expired", lambda self: False)  # the poll misses the FIN
    async with UpstreamClient() as client:
        await client.send(req(upstream, "/small-then-hang-up"), account="a")
        await anyio.sleep(0.1)
        second = await client.send(req(upstream, "/small", b"again"), account="a")
    assert second.status == 200 and second.body == b'{"echo":5}'
    assert [s.path for s in upstream.seen] == ["/small-then-hang-up", "/small"]
    assert upstream.seen[0].peer_port != upstream.seen[1].peer_port


async def test_a_new_connection_that_breaks_before_answering_is_not_asked_again(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamConnectionError):
            await client.send(req(upstream, "/close"), account="a")
    assert [s.path for s in upstream.seen] == ["/close"]


async def test_cancellation_closes_the_upstream_connection(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        # Cancel once the body is flowing (a fixed delay could expire before the connection is
        # made on a loaded machine, and then there is nothing to close).
        with anyio.CancelScope() as scope:
            async with client.stream(req(upstream, "/forever"), account="a") as answer:
                received = 0
                async for _ in answer.chunks:
                    received += 1
                    if received == 3:
                        scope.cancel()
        assert scope.cancelled_caught
        cancelled_at = time.monotonic()
        with anyio.fail_after(2):
            while not upstream.disconnected_at:
                await anyio.sleep(0.01)
    assert upstream.disconnected_at[0] - cancelled_at < 1.0


async def test_leaving_early_closes_instead_of_draining(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        async with client.stream(req(upstream, "/forever"), account="a") as answer:
            async for _ in answer.chunks:
                break
        left_at = time.monotonic()
        with anyio.fail_after(2):
            while not upstream.disconnected_at:
                await anyio.sleep(0.01)
        assert upstream.disconnected_at[0] - left_at < 1.0
        # The pool still works afterwards, on a fresh connection.
        assert (await client.send(req(upstream, "/small"), account="a")).status == 200


async def test_connection_refused_is_classified() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1]
    await listener.aclose()
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamConnectionError) as info:
            await client.send(HttpRequest(method="GET", url=f"http://127.0.0.1:{port}/x?token=secret", headers=()))
    failure = info.value.failure
    assert failure.failure_class is FailureClass.CONNECTION_FAILED and failure.status == 0
    assert "cannot connect to 127.0.0.1" in failure.message and "secret" not in failure.message


async def test_server_closing_mid_request_is_classified(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamConnectionError) as info:
            await client.send(req(upstream, "/close"), account="a")
    assert info.value.failure.failure_class is FailureClass.CONNECTION_FAILED


async def test_read_timeout_waiting_for_the_head(upstream: Upstream) -> None:
    async with UpstreamClient(read_timeout=0.2) as client:
        t0 = time.monotonic()
        with pytest.raises(UpstreamConnectionError) as info:
            await client.send(req(upstream, "/silent"), account="a")
    assert time.monotonic() - t0 < 2
    assert "timed out" in info.value.failure.message


async def test_deadline_covers_the_body(upstream: Upstream) -> None:
    async with UpstreamClient() as client:
        t0 = time.monotonic()
        with pytest.raises(UpstreamConnectionError) as info:
            async with client.stream(req(upstream, "/hang"), account="a", timeout=0.3) as answer:
                assert answer.status == 200
                with answer.deadline():
                    async for _ in answer.chunks:
                        pass
    assert 0.25 < time.monotonic() - t0 < 2
    assert "deadline" in info.value.failure.message or "timed out" in info.value.failure.message


async def test_deadline_ends_a_body_that_never_stops(upstream: Upstream) -> None:
    # Every read succeeds well within the read timeout; only the call's deadline ends it.
    async with UpstreamClient(read_timeout=30) as client:
        t0 = time.monotonic()
        received = 0
        with pytest.raises(UpstreamConnectionError) as info:
            async with client.stream(req(upstream, "/forever"), account="a", timeout=0.5) as answer:
                with answer.deadline():
                    async for _ in answer.chunks:
                        received += 1
    assert 0.45 < time.monotonic() - t0 < 2 and received >= 2
    assert "did not answer within the deadline" in info.value.failure.message
    with anyio.fail_after(2):  # the connection was closed, not left draining
        while not upstream.disconnected_at:
            await anyio.sleep(0.01)


def test_proxy_credentials_are_split_from_the_url() -> None:
    proxy = _proxy("http://us%40er:p%3Ass@proxy.local:3128")
    assert proxy is not None
    assert proxy.url.host == b"proxy.local" and proxy.url.port == 3128
    assert b"p:ss" not in bytes(proxy.url.host) and proxy.auth == (b"us@er", b"p:ss")
    assert _proxy(None) is None


async def test_proxy_is_used_for_https_only(upstream: Upstream) -> None:
    # A proxy that does not exist: an http:// upstream is still reached directly.
    async with UpstreamClient(proxy="http://127.0.0.1:9") as client:
        assert (await client.send(req(upstream, "/small"), account="a")).status == 200
        with pytest.raises(UpstreamConnectionError) as info:
            await client.send(HttpRequest(method="GET", url="https://kiro.invalid/x", headers=()), account="a")
    assert "proxy" in info.value.failure.message or "connect" in info.value.failure.message


class RecordingStream(httpcore.AsyncNetworkStream):
    """A network stream that records what reaches the socket."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.log.append(("read", b""))
        return b"HTTP/1.1 200 OK\r\n\r\n"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.log.append(("write", buffer))

    async def aclose(self) -> None:
        self.log.append(("close", b""))

    def get_extra_info(self, info: str) -> object:
        return None


HEAD = b"POST /generateAssistantResponse HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\n\r\n"


async def test_a_request_head_leaves_with_its_body_in_one_write() -> None:
    inner = RecordingStream()
    stream = _Stream(inner)
    await stream.write(HEAD)
    assert inner.log == []  # held for what httpcore writes next
    await stream.write(b"{}")
    await stream.write(b"")  # the end of a content-length body: nothing to send
    await stream.read(65536)
    assert inner.log == [("write", HEAD + b"{}"), ("read", b"")]


async def test_a_head_alone_is_sent_before_reading_and_big_bodies_are_not_copied() -> None:
    inner = RecordingStream()
    stream = _Stream(inner)
    connect = b"CONNECT q.example:443 HTTP/1.1\r\nHost: q.example:443\r\n\r\n"
    await stream.write(connect)
    await stream.read(65536)
    assert inner.log == [("write", connect), ("read", b"")]
    inner.log.clear()
    big = b"x" * (1 << 20)
    await stream.write(HEAD)
    await stream.write(big)
    assert inner.log == [("write", HEAD), ("write", big)]
    inner.log.clear()
    await stream.write(b"not a head\r\n\r\n")  # only request heads are held
    assert inner.log == [("write", b"not a head\r\n\r\n")]
