"""A pooled connection only ever carries calls to the host it was opened to.

Kiro's refresh endpoint (``prod.{region}.auth.desktop.kiro.dev`` or ``oidc.{region}.amazonaws.com``)
and its data plane (``q.{region}.amazonaws.com``) are different hosts, called for the same
account. A per-account pool that handed the refresh's idle connection to the next generate call
sent that call, bearer token and all, to the refresh host. The simulator serves every endpoint on
one origin, so only two servers show it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import pytest

from adapters.runtime.upstream import UpstreamClient
from kiro_protocol.http._messages import HttpRequest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _server(name: bytes) -> Callable[[anyio.abc.SocketStream], Awaitable[None]]:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    pending += await stream.receive()
                pending = pending.split(b"\r\n\r\n", 1)[1]  # GET: no body
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))

    return handle


@contextlib.asynccontextmanager
async def two_servers() -> AsyncIterator[tuple[str, str]]:
    urls = []
    async with anyio.create_task_group() as tg:
        for name in (b"first", b"second"):
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1]
            tg.start_soon(listener.serve, _server(name))
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]
        tg.cancel_scope.cancel()


async def test_calls_of_one_account_to_two_hosts_reach_each_host() -> None:
    async with two_servers() as (first, second), UpstreamClient() as client:
        with anyio.fail_after(30):  # a hang guard only
            answers = []
            for url in (first, second, first, second):
                answer = await client.send(HttpRequest(method="GET", url=f"{url}/x", headers=()), account="a")
                answers.append(answer.body)
        assert answers == [b"first", b"second", b"first", b"second"]
        assert client.pool_count == 1
        await client.close_account("a")
        assert client.pool_count == 0
