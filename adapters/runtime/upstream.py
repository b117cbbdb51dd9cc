"""The async upstream client: the core's ``HttpRequest`` values sent over httpcore.

One connection pool per account (spec §17.3: a connection is never shared between two
accounts, so upstream cannot link them by connection), HTTP/1.1, the proxy of ``HTTPS_PROXY``.
Streams are read chunk by chunk as they arrive. Leaving ``stream()`` early, by an exception or
a cancellation (the client went away), closes the connection at once instead of draining it.
httpcore's exceptions are mapped at this edge into ``UpstreamConnectionError``, which carries the
pool's classification (``connection_failure``).
"""

from __future__ import annotations

import contextlib
import math
import re
import select
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, NamedTuple, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import anyio
import httpcore

from kiro_protocol import connection_failure, HttpRequest, HttpResponse, UpstreamFailure

from .aio import AioNetworkBackend

__all__ = ["UpstreamClient", "UpstreamStream", "UpstreamConnectionError", "SMALL_CALL_TIMEOUT"]

#: Refresh and usage calls are small; [PY] gives them 60 s.
SMALL_CALL_TIMEOUT = 60.0
# Idle upstream connections are dropped after this; upstream closes them itself after about a minute.
_KEEPALIVE_EXPIRY = 30.0
# The most bytes kept of a small (non-streamed) answer: refresh/usage answers are a few KB.
_MAX_SMALL_BODY = 4 * 1024 * 1024


# Connections per httpcore pool (see UpstreamClient._acquire).
_SHARD_SIZE = 8


class _Shard:
    __slots__ = ("pool", "inflight")

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self.pool = pool
        self.inflight = 0


# "METHOD target HTTP/1.1" at the start of a write: httpcore is sending a request head.
_REQUEST_LINE = re.compile(rb"[A-Z]+ [^ \r\n]+ HTTP/1\.1\r\n")
# Bodies larger than this are not copied to join their head.
_MERGE_LIMIT = 256 * 1024


def _readable(sock: socket.socket | None) -> bool:
    """Whether a read would not block: on an idle keep-alive connection, the server closed it."""
    if sock is None or sock.fileno() == -1:
        return True
    if hasattr(select, "poll"):  # select() cannot watch descriptors above FD_SETSIZE
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's stream, with two savings on every request.

    * A request head is sent together with what httpcore writes next (the body, or the empty
      end of a body-less request) rather than alone: one segment, so upstream wakes once for
      the whole request (on loopback this took a quarter of a millisecond off the answer).
    * A cheaper "is_readable" (the pool asks it of every idle connection before each request;
      the stock answer looks up every socket attribute, the peer name included).
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        # Polled for "is_readable" unless the inner stream knows without a system call.
        self._socket: socket.socket | None = None
        if not getattr(inner, "cheap_is_readable", False):
            self._socket = inner.get_extra_info("socket")
        self._held = b""

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:  # a head with nothing after it (a proxy's CONNECT): send it now
            held, self._held = self._held, b""
            await self._inner.write(held, timeout)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._held:
            held, self._held = self._held, b""
            if len(buffer) > _MERGE_LIMIT:
                await self._inner.write(held, timeout)
            else:
                buffer = held + buffer
        elif buffer.endswith(b"\r\n\r\n") and _REQUEST_LINE.match(buffer):
            self._held = buffer
            return
        if buffer:
            await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """The network backend (asyncio protocols, see ``aio``), handing out ``_Stream``s."""

    def __init__(self) -> None:
        self._inner = AioNetworkBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class UpstreamConnectionError(Exception):
    """No (complete) HTTP answer from upstream. ``failure`` is the pool's classification."""

    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class UpstreamStream(NamedTuple):
    """An upstream answer whose body is still arriving."""

    #: The HTTP status.
    status: int
    #: Header pairs, names lower-cased.
    headers: tuple[tuple[str, str], ...]
    #: The body, chunk by chunk as it arrives. Iterate it inside ``deadline()``: each read is
    #: bounded by the read timeout, the whole call only by that block.
    chunks: AsyncIterator[bytes]
    #: When the whole call must be over (``anyio.current_time()`` clock).
    ends_at: float = math.inf
    #: The URL asked, for error messages (only its host is ever shown).
    url: str = ""

    @contextlib.contextmanager
    def deadline(self) -> Iterator[None]:
        """Bound reading ``chunks`` by the call's deadline; errors become ``UpstreamConnectionError``.

        One scope for the whole body rather than one per chunk: a cancel scope per read was a
        tenth of the gateway's CPU time on a streamed answer.
        """
        try:
            with anyio.fail_after(max(self.ends_at - anyio.current_time(), 0.0)):
                yield
        except TimeoutError:
            raise _past_deadline(self.url) from None


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "upstream"
    except ValueError:
        return "upstream"


_MAPPED: tuple[tuple[type[Exception], str], ...] = (
    (httpcore.ConnectTimeout, "timed out connecting to {host}"),
    (httpcore.ReadTimeout, "timed out waiting for {host}"),
    (httpcore.WriteTimeout, "timed out sending to {host}"),
    (httpcore.PoolTimeout, "timed out waiting for a connection to {host}"),
    (httpcore.ProxyError, "the proxy refused the connection to {host}"),
    (httpcore.ConnectError, "cannot connect to {host}"),
    (httpcore.ReadError, "connection to {host} broke while reading"),
    (httpcore.WriteError, "connection to {host} broke while sending"),
    (httpcore.RemoteProtocolError, "{host} broke the HTTP protocol"),
    (httpcore.UnsupportedProtocol, "unsupported URL for {host}"),
    (httpcore.ProtocolError, "HTTP protocol error with {host}"),
    (ssl.SSLError, "TLS failure with {host}"),
    (OSError, "network error with {host}"),
)


def _past_deadline(url: str) -> UpstreamConnectionError:
    return UpstreamConnectionError(connection_failure(f"{_host_of(url)} did not answer within the deadline"))


@contextlib.contextmanager
def _map_exceptions(url: str) -> Iterator[None]:
    try:
        yield
    except TimeoutError:
        raise _past_deadline(url) from None
    except Exception as exc:
        for cls, template in _MAPPED:
            if isinstance(exc, cls):
                # The class name and the OS reason help; the URL may carry a query, so only the host.
                detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                message = f"{template.format(host=_host_of(url))} ({detail})"
                raise UpstreamConnectionError(connection_failure(message)) from exc
        raise


def _proxy(url: str | None) -> httpcore.Proxy | None:
    if not url:
        return None
    parts = urlsplit(url)
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return httpcore.Proxy(urlunsplit((parts.scheme, netloc, parts.path, "", "")), auth=auth)


class UpstreamClient:
    """Sends ``HttpRequest`` values upstream; one httpcore pool per account key.

    Args:
        connect_timeout: seconds for TCP + TLS set-up.
        read_timeout: the longest silence tolerated while waiting for bytes.
        proxy: an ``http://``, ``https://`` or ``socks5://`` proxy URL (credentials allowed), used
            for ``https://`` upstream URLs.
        ssl_context: the TLS configuration (default: system store plus certifi).
        max_connections_per_account: concurrent upstream calls per account.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 15.0,
        read_timeout: float = 300.0,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections_per_account: int = 100,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._proxy = _proxy(proxy)
        self._ssl_context = ssl_context
        self._max_connections = max_connections_per_account
        self._pools: dict[tuple[str, bool], list[_Shard]] = {}
        self._backend = _Backend()

    def _acquire(self, account: str, url: str) -> _Shard:
        # HTTPS_PROXY applies to https:// URLs only (curl's rule), so a local http:// simulator
        # is reached directly even when a proxy is configured for Kiro.
        proxied = self._proxy is not None and url.lower().startswith("https://")
        shards = self._pools.setdefault((account, proxied), [])
        # An account's connections are spread over small httpcore pools: a pool's bookkeeping
        # scans all its connections (quadratically) on every request, which dominated the CPU
        # profile at 64 concurrent streams on one pool. First fit keeps keep-alive reuse high.
        shard = next((s for s in shards if s.inflight < _SHARD_SIZE), None)
        if shard is None and len(shards) * _SHARD_SIZE < self._max_connections:
            shard = _Shard(
                httpcore.AsyncConnectionPool(
                    network_backend=self._backend,
                    ssl_context=self._ssl_context,
                    proxy=self._proxy if proxied else None,
                    max_connections=_SHARD_SIZE,
                    keepalive_expiry=_KEEPALIVE_EXPIRY,
                    http1=True,
                    http2=False,
                    retries=0,
                )
            )
            shards.append(shard)
        if shard is None:
            shard = min(shards, key=lambda s: s.inflight)
        shard.inflight += 1
        return shard

    @property
    def pool_count(self) -> int:
        """How many accounts (times proxy use) have connections (for tests and /health)."""
        return len(self._pools)

    def _request(self, request: HttpRequest, timeout: float) -> httpcore.Request:
        read = min(self._read_timeout, timeout)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers]
        # httpcore sends exactly the headers given (httpx adds these two); HTTP/1.1 needs both.
        names = {k.lower() for k, _ in headers}
        if b"host" not in names:
            headers.insert(0, (b"Host", urlsplit(request.url).netloc.rpartition("@")[2].encode("idna")))
        if b"content-length" not in names and (request.body or request.method not in ("GET", "HEAD")):
            headers.append((b"Content-Length", str(len(request.body)).encode("ascii")))
        return httpcore.Request(
            request.method,
            request.url,
            headers=headers,
            content=request.body,
            extensions={
                "timeout": {
                    "connect": min(self._connect_timeout, timeout),
                    "read": read,
                    "write": read,
                    "pool": min(self._connect_timeout, timeout),
                }
            },
        )

    async def send(self, request: HttpRequest, *, account: str = "", timeout: float = SMALL_CALL_TIMEOUT) -> HttpResponse:
        """Send a small request (refresh, usage) and read the whole answer.

        Args:
            account: the pool key; calls for different accounts never share a connection.
            timeout: the deadline of the whole call, in seconds.

        Raises:
            UpstreamConnectionError: no complete answer (connect failure, reset, timeout, oversize).
        """
        async with self.stream(request, account=account, timeout=timeout) as answer:
            body = bytearray()
            with answer.deadline():
                async for chunk in answer.chunks:
                    body += chunk
                    if len(body) > _MAX_SMALL_BODY:
                        raise UpstreamConnectionError(
                            connection_failure(f"{_host_of(request.url)} answered with an oversized body")
                        )
        return HttpResponse(status=answer.status, headers=answer.headers, body=bytes(body))

    @contextlib.asynccontextmanager
    async def stream(
        self, request: HttpRequest, *, account: str = "", timeout: float = 1800.0
    ) -> AsyncIterator[UpstreamStream]:
        """Send ``request`` and yield an ``UpstreamStream`` once the head has arrived.

        Leaving the block before the body is exhausted (an error, or cancellation because the
        client disconnected) closes the upstream connection immediately.

        Args:
            account: the pool key.
            timeout: the deadline of the whole call (head and body), in seconds.

        Raises:
            UpstreamConnectionError: at the start, or from ``deadline()`` while iterating ``chunks``.
        """
        deadline = anyio.current_time() + timeout
        url = request.url
        shard = self._acquire(account, url)
        try:
            with _map_exceptions(url):
                with anyio.fail_after(timeout):
                    response = await shard.pool.handle_async_request(self._request(request, timeout))
            try:
                headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers)
                yield UpstreamStream(
                    status=response.status, headers=headers, chunks=self._chunks(response, url), ends_at=deadline, url=url
                )
            finally:
                with anyio.CancelScope(shield=True):
                    with contextlib.suppress(Exception):
                        await response.aclose()
        finally:
            shard.inflight -= 1

    async def _chunks(self, response: httpcore.Response, url: str) -> AsyncIterator[bytes]:
        # httpcore bounds each read by the read timeout; the caller's deadline() bounds the whole.
        with _map_exceptions(url):
            async for chunk in cast(AsyncIterable[bytes], response.stream):
                if chunk:
                    yield chunk

    async def close_account(self, account: str) -> None:
        """Close the pool of ``account`` (removed from the configuration, or its token revoked)."""
        for key in [k for k in self._pools if k[0] == account]:
            for shard in self._pools.pop(key):
                await shard.pool.aclose()

    async def aclose(self) -> None:
        """Close every pool."""
        pools, self._pools = list(self._pools.values()), {}
        for shards in pools:
            for shard in shards:
                await shard.pool.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
