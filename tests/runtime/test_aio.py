"""The asyncio protocol streams (adapters/runtime/aio.py) on loopback: back-pressure both ways,
the lazily moved read timeout, end of stream, TLS, and the anyio fallback."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from pathlib import Path

import anyio
import anyio.abc
import pytest

from adapters.runtime import aio
from adapters.runtime.aio import AioListener, AioStream, open_server
from adapters.runtime.upstream import UpstreamClient, UpstreamConnectionError
from kiro_protocol import HttpRequest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def serving(
    handler: Callable[[AioStream], Coroutine[Any, Any, None]], *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[AioListener]:
    listener = await open_server("127.0.0.1", 0, ssl_context=ssl_context)
    async with anyio.create_task_group() as tg:

        async def accept() -> None:
            while True:
                tg.start_soon(handler, await listener.accept())

        tg.start_soon(accept)
        try:
            yield listener
        finally:
            listener.close()
            tg.cancel_scope.cancel()


async def read_request(stream: AioStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    return data


async def test_reading_pauses_at_the_high_water_mark_and_loses_nothing() -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB
    seen: list[AioStream] = []
    done = anyio.Event()
    received = bytearray()

    async def handler(stream: AioStream) -> None:
        seen.append(stream)
        await done.wait()
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                received.extend(await stream.receive(100_000))

    async with serving(handler) as listener:
        async with await anyio.connect_tcp("127.0.0.1", listener.port) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send, payload)
                with anyio.fail_after(5):
                    while not (seen and seen[0].protocol.reading_paused):
                        await anyio.sleep(0.01)
                # Paused: what is buffered stays near the mark, the rest waits in the kernel.
                assert seen[0].protocol.buffered < 2 * 256 * 1024
                done.set()
            await client.send_eof()
            with anyio.fail_after(5):
                while len(received) < len(payload):
                    await anyio.sleep(0.01)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert not seen[0].protocol.reading_paused


async def test_a_write_the_peer_does_not_read_times_out() -> None:
    results: list[bool] = []

    async def handler(stream: AioStream) -> None:
        chunk = b"x" * (1 << 20)
        for _ in range(512):  # the kernel buffers a few MiB at most
            if not await stream.send_within(chunk, 0.2):
                results.append(False)
                return
        results.append(True)

    async with serving(handler) as listener:
        async with await anyio.connect_tcp("127.0.0.1", listener.port):
            with anyio.fail_after(10):
                while not results:
                    await anyio.sleep(0.01)
    assert results == [False]


async def test_end_of_stream_and_close() -> None:
    outcome: list[str] = []

    async def handler(stream: AioStream) -> None:
        assert await stream.receive() == b"hello"
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()
        await stream.send(b"bye")  # a half-closed peer may still read
        await stream.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send(b"late")
        outcome.append("ok")

    async with serving(handler) as listener:
        async with await anyio.connect_tcp("127.0.0.1", listener.port) as client:
            await client.send(b"hello")
            await client.send_eof()
            assert await client.receive() == b"bye"
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
        with anyio.fail_after(5):
            while not outcome:
                await anyio.sleep(0.01)
    assert outcome == ["ok"]


async def test_the_read_timeout_follows_the_last_byte() -> None:
    # Chunks arrive every 50 ms for 0.6 s with a read timeout of 0.2 s: the one timer is moved on,
    # never fires early; then silence ends the call about 0.2 s later.
    async def handler(stream: AioStream) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(12):
            await stream.send(b"3\r\nabc\r\n")
            await anyio.sleep(0.05)
        await anyio.sleep(30)

    async with serving(handler) as listener:
        async with UpstreamClient(read_timeout=0.2) as client:
            request = HttpRequest(method="GET", url=f"http://127.0.0.1:{listener.port}/", headers=())
            chunks = 0
            last = 0.0
            with pytest.raises(UpstreamConnectionError) as info:
                async with client.stream(request, account="a") as answer:
                    with answer.deadline():
                        async for _ in answer.chunks:
                            chunks += 1
                            last = time.monotonic()
            silence = time.monotonic() - last
    assert chunks == 12
    assert 0.15 < silence < 1.5
    assert "timed out waiting for 127.0.0.1" in info.value.failure.message


async def test_connecting_to_a_closed_port_is_a_connect_error() -> None:
    listener = await open_server("127.0.0.1", 0)
    port = listener.port
    listener.close()
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamConnectionError) as info:
            await client.send(HttpRequest(method="GET", url=f"http://127.0.0.1:{port}/", headers=()))
    assert "cannot connect to 127.0.0.1" in info.value.failure.message


async def test_an_upstream_call_over_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(cert), str(key))

    async def handler(stream: AioStream) -> None:
        assert stream.ssl_object is not None
        request = await read_request(stream)
        body = b"secure:" + request.split(b" ", 2)[1]
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    async with serving(handler, ssl_context=server_context) as listener:
        async with UpstreamClient(ssl_context=ssl.create_default_context(cafile=str(cert))) as client:
            answer = await client.send(HttpRequest(method="GET", url=f"https://127.0.0.1:{listener.port}/tls", headers=()))
    assert (answer.status, answer.body) == (200, b"secure:/tls")


async def test_without_asyncio_the_anyio_streams_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under trio there is no asyncio loop: the upstream client falls back to anyio's streams.
    # (trio is not installed here, so the check is made to say no; the server it talks to runs
    # on asyncio only.)
    monkeypatch.setattr(aio, "running_asyncio", lambda: False)
    from adapters.anyio_server import Lifecycle, RequestBody, RequestHead, Responder, Server

    kinds: list[str] = []

    async def handler(head: RequestHead, body: RequestBody, respond: Responder) -> None:
        await respond.send_response(200, [("content-type", "text/plain")], b"plain anyio")

    server = Server(handler=handler, lifecycle=Lifecycle(), host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tg:
        port = await tg.start(server.serve)
        async with UpstreamClient() as client:
            answer = await client.send(HttpRequest(method="GET", url=f"http://127.0.0.1:{port}/", headers=()))
            for pool in client._pools.values():
                for connection in pool._idle:
                    kinds.append(type(connection._stream).__name__)
        server.shutdown()
    assert (answer.status, answer.body) == (200, b"plain anyio")
    assert kinds == ["AnyIOStream"]


async def test_watching_the_peer_reports_a_close_a_stall_and_stops_when_told() -> None:
    events: list[str] = []
    release = anyio.Event()

    async def handler(stream: AioStream) -> None:
        assert await stream.receive() == b"go"
        # 1. The peer half-closes while watched: reported once, without reading.
        left = anyio.Event()

        def gone() -> None:
            events.append("gone")
            left.set()

        stop = stream.watch_peer(gone, period=60, stalled=lambda: False)
        with anyio.fail_after(5):
            await left.wait()
        stop()
        # 2. Watching a stream that is already closed by the peer reports it at once.
        stream.watch_peer(lambda: events.append("gone again"), period=60, stalled=lambda: False)
        await anyio.sleep(0.01)
        # 3. A stall is reported by the periodic check; 4. a stopped watch says nothing.
        strikes = iter([False, True])
        stream.watch_peer(lambda: events.append("stalled"), period=0.02, stalled=lambda: next(strikes))
        quiet = stream.watch_peer(lambda: events.append("never"), period=0.01, stalled=lambda: True)
        quiet()
        await anyio.sleep(0.2)
        release.set()

    async with serving(handler) as listener:
        async with await anyio.connect_tcp("127.0.0.1", listener.port) as client:
            await client.send(b"go")
            await anyio.sleep(0.05)
            await client.send_eof()
            with anyio.fail_after(5):
                await release.wait()
    assert events == ["gone", "gone again", "stalled"]
