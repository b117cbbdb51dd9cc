"""NO_PROXY (issue 18, item 10): the rules, and the upstream client's choice against a loopback
TLS server and a loopback CONNECT proxy that records what it tunnels."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener

from adapters.runtime.no_proxy import parse_no_proxy
from adapters.runtime.settings import load_settings
from adapters.runtime.upstream import UpstreamClient
from kiro_protocol.http._messages import HttpRequest


@pytest.mark.parametrize(
    ("rules", "host", "port", "bypassed"),
    [
        ("", "q.us-east-1.amazonaws.com", 443, False),
        ("*", "q.us-east-1.amazonaws.com", 443, True),
        ("amazonaws.com", "q.us-east-1.amazonaws.com", 443, True),
        (".amazonaws.com", "q.us-east-1.amazonaws.com", 443, True),
        (".amazonaws.com", "amazonaws.com", 443, True),
        ("*.amazonaws.com", "q.us-east-1.amazonaws.com", 443, True),
        ("amazonaws.com", "notamazonaws.com", 443, False),
        ("example.com, Q.US-EAST-1.AMAZONAWS.COM ", "q.us-east-1.amazonaws.com", 443, True),
        ("q.us-east-1.amazonaws.com:443", "q.us-east-1.amazonaws.com", 443, True),
        ("q.us-east-1.amazonaws.com:8443", "q.us-east-1.amazonaws.com", 443, False),
        ("10.1.2.3", "10.1.2.3", 443, True),
        ("10.1.2.3", "10.1.2.4", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),  # names are not resolved
        ("::1", "[::1]", 443, True),
        ("[::1]:443", "::1", 443, True),
        ("[::1]:443", "::1", 80, False),
        ("fd00::/8", "fd12::5", 443, True),
        (",, ,", "example.com", 443, False),
    ],
)
def test_no_proxy_rules(rules: str, host: str, port: int, bypassed: bool) -> None:
    assert parse_no_proxy(rules).bypasses(host, port) is bypassed


def test_no_proxy_is_a_setting_also_read_in_lower_case() -> None:
    assert load_settings(environ={"NO_PROXY": "a.example"}).no_proxy.bypasses("x.a.example")
    assert load_settings(environ={"no_proxy": "a.example"}).no_proxy.bypasses("x.a.example")
    assert not load_settings(environ={}).no_proxy


@dataclass
class Proxy:
    """A CONNECT proxy on loopback: records each tunnel's target, then relays the bytes."""

    port: int = 0
    tunnels: list[str] = field(default_factory=list)

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                head += await client.receive()
            method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
            assert method == "CONNECT"
            self.tunnels.append(target)
            host, _, port = target.rpartition(":")
            async with client, await anyio.connect_tcp(host.strip("[]"), int(port)) as server:
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")

                async def relay(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                        while True:
                            await sink.send(await source.receive())

                async with anyio.create_task_group() as tg:
                    tg.start_soon(relay, client, server)
                    await relay(server, client)
                    tg.cancel_scope.cancel()


@dataclass
class Servers:
    upstream_port: int
    proxy: Proxy
    client_tls: ssl.SSLContext


async def _answer(stream: anyio.abc.ByteStream) -> None:
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
        head = b""
        while True:
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            request_head, head = head.split(b"\r\n\r\n", 1)  # GET requests: nothing after the head
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ndirect")
            if b"/close-after" in request_head.split(b"\r\n", 1)[0]:
                await anyio.sleep(0.2)  # kept alive a moment, then closed while idle
                await stream.aclose()
                return


@pytest.fixture
async def servers(certificate: tuple[Path, Path]) -> AsyncIterator[Servers]:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    upstream_port = int(tcp.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1])
    proxy = Proxy()
    proxy_listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(proxy_listener.listeners[0].extra(anyio.abc.SocketAttribute.local_address)[1])
    async with anyio.create_task_group() as tg:
        tg.start_soon(TLSListener(tcp, server_tls, standard_compatible=False).serve, _answer)
        tg.start_soon(proxy_listener.serve, proxy.handle)
        yield Servers(upstream_port, proxy, ssl.create_default_context(cafile=str(cert)))
        tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "no_proxy", "through_proxy"),
    [
        ("127.0.0.1", "", True),
        ("127.0.0.1", "example.com,10.0.0.0/8", True),
        ("127.0.0.1", "127.0.0.1", False),
        ("127.0.0.1", "127.0.0.0/8", False),
        ("127.0.0.1", "127.0.0.1:{port}", False),
        ("127.0.0.1", "127.0.0.1:1", True),
        ("localhost", "localhost", False),
        ("localhost", ".localhost", False),
        ("localhost", "127.0.0.1", True),  # names are not resolved
        ("localhost", "*", False),
    ],
)
async def test_the_upstream_call_goes_direct_only_for_no_proxy_hosts(
    servers: Servers, host: str, no_proxy: str, through_proxy: bool
) -> None:
    port = servers.upstream_port
    client = UpstreamClient(
        proxy=f"http://127.0.0.1:{servers.proxy.port}",
        no_proxy=no_proxy.format(port=port),
        ssl_context=servers.client_tls,
        connect_timeout=10,
        read_timeout=10,
    )
    async with client:
        with anyio.fail_after(30):  # a hang guard only
            answer = await client.send(HttpRequest(method="GET", url=f"https://{host}:{port}/x", headers=()), account="a")
    assert answer.status == 200 and answer.body == b"direct"
    assert servers.proxy.tunnels == ([f"{host}:{port}"] if through_proxy else [])


@pytest.mark.anyio
async def test_idle_tunnels_that_upstream_closed_are_reaped(servers: Servers) -> None:
    port = servers.upstream_port
    client = UpstreamClient(proxy=f"http://127.0.0.1:{servers.proxy.port}", ssl_context=servers.client_tls)
    async with client:
        with anyio.fail_after(30):  # a hang guard only
            request = HttpRequest(method="GET", url=f"https://127.0.0.1:{port}/close-after", headers=())
            assert (await client.send(request, account="a")).status == 200
            # The server closes the idle connection, the proxy its tunnel: httpcore's pool would
            # only notice at the next call; reap_idle() closes it now.
            closed = 0
            while not closed:
                await anyio.sleep(0.05)
                closed = await client.reap_idle()
    assert closed == 1 and servers.proxy.tunnels == [f"127.0.0.1:{port}"]
