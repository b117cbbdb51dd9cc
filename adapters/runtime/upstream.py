"""The async upstream client: the core's ``HttpRequest`` values sent over httpcore.

One connection pool per account and host (docs/kiro-protocol.md, Connections: a connection is never shared between two
accounts, so upstream cannot link them by connection), HTTP/1.1, the proxy of ``HTTPS_PROXY``.
Streams are read chunk by chunk as they arrive. Leaving ``stream()`` early, by an exception or
a cancellation (the client went away), closes the connection at once instead of draining it.
httpcore's exceptions are mapped at this edge into ``UpstreamConnectionError``, which carries the
pool's classification (``connection_failure``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import select
import socket
import ssl
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, NamedTuple, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import anyio
import httpcore

from kiro_protocol import connection_failure, encode_request, HttpRequest, HttpResponse, ResponseHead, UpstreamFailure
from kiro_protocol import may_send_again, UpstreamHttpError

from .aio import AioNetworkBackend
from .no_proxy import NoProxy, parse_no_proxy
from .upstream_http1 import bounded_timeout, Http1Connection, WaitHook

__all__ = ["REAP_INTERVAL", "UpstreamClient", "UpstreamStream", "UpstreamConnectionError", "WaitHook", "SMALL_CALL_TIMEOUT"]

log = logging.getLogger("kiro2api.upstream")

#: Refresh and usage calls are small; [PY] gives them 60 s.
SMALL_CALL_TIMEOUT = 60.0
# Idle upstream connections are dropped after this; upstream closes them itself after about a minute.
_KEEPALIVE_EXPIRY = 30.0
#: How often idle pooled connections are checked for a close by upstream (``run_reaper``). Until
#: it is noticed, such a connection holds a socket in CLOSE-WAIT; a check is one poll per idle
#: connection (none at all on asyncio, whose streams know it already).
REAP_INTERVAL = 5.0
# The most bytes kept of a small (non-streamed) answer: refresh/usage answers are a few KB.
_MAX_SMALL_BODY = 4 * 1024 * 1024


# A held head and the next write are joined only below this size: a big body is not copied.
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
    """httpcore's stream, with savings on every request.

    * A request head is sent together with what httpcore writes next (the body, or the empty
      end of a body-less request) rather than alone: one segment, so upstream wakes once for
      the whole request (on loopback this took a quarter of a millisecond off the answer).
      The head is known by its place, not its bytes: an HTTP/1.1 client (httpcore's, without
      pipelining) writes a request only after it has read the previous answer, and writes its
      head first, alone (tests/runtime/test_httpcore_internals.py holds httpcore to both). So the first
      write on a stream, and the first after a read, is held until the next write or read.
      Holding any write that way is safe whatever it is, because the client reads next, and a
      read sends what is held first; a change in httpcore could cost the saving, never bytes.
    * A cheaper "is_readable" (the pool asks it of every idle connection before each request;
      the stock answer looks up every socket attribute, the peer name included).

    Proxied calls only: direct ones use ``Http1Connection``, which writes a request at once.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        # Polled for "is_readable" unless the inner stream knows without a system call.
        self._socket: socket.socket | None = None
        if not getattr(inner, "cheap_is_readable", False):
            self._socket = inner.get_extra_info("socket")
        self._held = b""
        # Whether the next write opens a request (see the class's docstring).
        self._opening = True

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:  # a head with nothing after it (a proxy's CONNECT): send it now
            held, self._held = self._held, b""
            await self._inner.write(held, timeout)
        self._opening = True
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._opening:
            self._opening = False
            self._held = buffer
            return
        if self._held:
            held, self._held = self._held, b""
            if len(held) + len(buffer) > _MERGE_LIMIT:
                await self._inner.write(held, timeout)
            else:
                buffer = held + buffer
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


class _DirectPool:
    """One account's direct connections (``Http1Connection``), pooled here.

    A call takes the most recently used idle connection (or opens one, up to ``limit``) and gives
    it back when its answer was read to the end. Proxied calls keep httpcore's pool (CONNECT
    tunnels, SOCKS).
    """

    def __init__(self, backend: httpcore.AsyncNetworkBackend, ssl_context: ssl.SSLContext | None, limit: int) -> None:
        self._backend = backend
        self._ssl_context = ssl_context
        self._limit = limit
        self._idle: list[Http1Connection] = []
        self._tls: ssl.SSLContext | None = None
        self._open = 0
        self._closed = False
        # Guards the lists and counts (the synchronous twin runs in threads).
        self._mutex = threading.Lock()
        self._freed = anyio.Event()

    @property
    def connections(self) -> int:
        """Open connections, busy or idle."""
        return self._open

    def _take(self, dead: list[Http1Connection]) -> Http1Connection | None:
        # Under the mutex. Newest first: the least likely to have been closed by the server.
        while self._idle:
            connection = self._idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            dead.append(connection)
            self._open -= 1
        return None

    async def _lease(
        self, origin: httpcore.Origin, connect_timeout: float, pool_timeout: float, deadline: float
    ) -> tuple[Http1Connection, bool]:
        """An idle connection (and False) or a new one (and True)."""
        while True:
            dead: list[Http1Connection] = []
            with self._mutex:
                if self._closed:
                    raise httpcore.ConnectError("the client is closed")
                connection = self._take(dead)
                fresh = connection is None and self._open < self._limit
                if fresh:
                    self._open += 1
                freed = self._freed
            for stale in dead:
                await _close_quietly(stale)
            if connection is not None:
                return connection, False
            if fresh:
                break
            wait, by_deadline = bounded_timeout(pool_timeout, deadline)
            try:
                with anyio.fail_after(wait):
                    await freed.wait()
            except TimeoutError:
                if by_deadline:
                    raise
                raise httpcore.PoolTimeout(f"all {self._limit} connections stayed busy") from None
        try:
            timeout, by_deadline = bounded_timeout(connect_timeout, deadline)
            stream = await self._connect(origin, timeout)
        except httpcore.ConnectTimeout:
            self._forget()
            if by_deadline:
                raise TimeoutError("the call's deadline passed") from None
            raise
        except BaseException:
            self._forget()
            raise
        return Http1Connection(stream, keepalive_expiry=_KEEPALIVE_EXPIRY), True

    async def send(
        self, origin: httpcore.Origin, method: str, data: bytes, timeouts: dict[str, float], deadline: float
    ) -> tuple[ResponseHead, Http1Connection]:
        """Send a request's bytes on an idle or a new connection; the answer's head, and the
        connection to ``release()`` once its answer is closed.

        When the connection breaks, ``kiro_protocol.may_send_again`` says whether the request goes
        once more, on a new connection (a reused one the server closed while idle).
        """
        while True:
            connection, fresh = await self._lease(origin, timeouts["connect"], timeouts["pool"], deadline)
            try:
                head = await connection.request(method, data, write_timeout=timeouts["write"],
                                                read_timeout=timeouts["read"], deadline=deadline)
            except BaseException as exc:
                await _close_quietly(connection)
                self._forget()
                again = may_send_again(reused_connection=not fresh, answer_started=connection.answer_started)
                if not again or not isinstance(exc, _STALE_ERRORS):
                    raise
                continue
            return head, connection

    async def _connect(self, origin: httpcore.Origin, timeout: float) -> httpcore.AsyncNetworkStream:
        host = origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme == b"https":
            if self._tls is None:  # made once: loading the system's certificates is slow
                self._tls = self._ssl_context or httpcore.default_ssl_context()
                self._tls.set_alpn_protocols(["http/1.1"])
            try:
                stream = await stream.start_tls(self._tls, server_hostname=host, timeout=timeout)
            except BaseException:
                await stream.aclose()
                raise
        return stream

    def keep(self, connection: Http1Connection) -> bool:
        """Take a connection back if it is idle again (its answer read to the end); False:
        ``release()`` it (it gets closed)."""
        connection.wait_hook.callback = connection.wait_hook.tick = None  # the next call is somebody else's
        with self._mutex:
            keep = connection.is_idle() and not self._closed
            if keep:
                self._idle.append(connection)
                freed, self._freed = self._freed, anyio.Event()
        if keep:
            freed.set()
        return keep

    async def release(self, connection: Http1Connection) -> None:
        """Take a connection back after its answer was closed: idle again, or closed."""
        if not self.keep(connection):
            await _close_quietly(connection)
            self._forget()

    def _forget(self) -> None:
        with self._mutex:
            self._open -= 1
            freed, self._freed = self._freed, anyio.Event()
        freed.set()

    async def reap(self) -> int:
        """Close the idle connections upstream closed (or that outlived the keep-alive) now rather
        than at the next call, which may never come; how many."""
        with self._mutex:
            verdicts = [(entry, not entry.is_idle() or entry.has_expired()) for entry in self._idle]
            dead = [entry for entry, gone in verdicts if gone]
            if not dead:
                return 0
            self._idle = [entry for entry, gone in verdicts if not gone]
            self._open -= len(dead)
            freed, self._freed = self._freed, anyio.Event()
        freed.set()  # room for a new connection, for a call waiting on the limit
        for entry in dead:
            await _close_quietly(entry)
        return len(dead)

    async def aclose(self) -> None:
        """Close the idle connections now; busy ones close when they are released."""
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for connection in idle:
            await _close_quietly(connection)


# What a connection the server closed while it sat idle raises on its next request.
_STALE_ERRORS = (httpcore.ReadError, httpcore.WriteError, UpstreamHttpError, OSError)


async def _reap_proxied(pool: httpcore.AsyncConnectionPool) -> int:
    """httpcore's own clean-up of expired idle connections, which it runs only when a request
    arrives or an answer closes, run now. Private names: httpcore is pinned (pyproject.toml)."""
    with pool._optional_thread_lock:
        closing = pool._assign_requests_to_connections()
    await pool._close_connections(closing)
    return len(closing)


async def _close_quietly(connection: Http1Connection) -> None:
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        await connection.aclose()


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
    #: When the whole call must be over (``time.monotonic()``, which is also anyio's clock here).
    ends_at: float = math.inf
    #: The URL asked, for error messages (only its host is ever shown).
    url: str = ""
    #: Set its ``callback`` to run it each time the connection is about to wait for more of the
    #: body (None: unsupported on this path, e.g. through a proxy; flush after every chunk).
    wait_hook: WaitHook | None = None

    #: True when ``chunks`` keeps the deadline itself (direct connections: every read is bounded
    #: by it); ``deadline()`` then adds no cancel scope.
    timed: bool = False

    def deadline(self) -> contextlib.AbstractContextManager[None]:
        """Bound reading ``chunks`` by the call's deadline; errors become ``UpstreamConnectionError``.

        One scope for the whole body rather than one per chunk: a cancel scope per read was a
        tenth of the gateway's CPU time on a streamed answer. None at all where ``chunks``
        bounds its reads by the deadline itself (``timed``).
        """
        return _UNTIMED if self.timed else self._deadline_scope()

    @contextlib.contextmanager
    def _deadline_scope(self) -> Iterator[None]:
        try:
            with anyio.fail_after(max(self.ends_at - anyio.current_time(), 0.0)):
                yield
        except TimeoutError:
            raise _past_deadline(self.url) from None


_UNTIMED = contextlib.nullcontext()


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
    (UpstreamHttpError, "{host} broke the HTTP protocol"),
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


async def _body(connection: Http1Connection, read_timeout: float, url: str, deadline: float) -> AsyncIterator[bytes]:
    """The body of the answer on a direct ``connection``, one piece per network read."""
    with _map_exceptions(url):
        async for piece in connection.body(read_timeout, deadline):
            yield piece


# The same few URLs are asked again and again: parsing one was a sizeable part of each request.
@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpcore.URL:
    return httpcore.URL(url)


@functools.lru_cache(maxsize=256)
def _host_header(url: str) -> bytes:
    return urlsplit(url).netloc.rpartition("@")[2].encode("idna")


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
        no_proxy: the hosts reached directly all the same (``NO_PROXY``; a ``NoProxy`` or its text).
        ssl_context: the TLS configuration (default: system store plus certifi).
        max_connections_per_account: concurrent upstream calls per account.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 15.0,
        read_timeout: float = 300.0,
        proxy: str | None = None,
        no_proxy: NoProxy | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections_per_account: int = 100,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._proxy = _proxy(proxy)
        self._no_proxy = no_proxy if isinstance(no_proxy, NoProxy) else parse_no_proxy(no_proxy)
        self._ssl_context = ssl_context
        self._max_connections = max_connections_per_account
        # Keyed by account and origin: a connection reaches one host, and Kiro's refresh, usage
        # and data-plane calls go to different hosts.
        self._pools: dict[tuple[str, bytes, bytes, int | None], _DirectPool] = {}
        self._proxied: dict[str, httpcore.AsyncConnectionPool] = {}
        self._backend = _Backend()
        # Direct connections write each request in one piece themselves: no _Stream around them.
        self._direct_backend = AioNetworkBackend()

    def _bypasses(self, url: str) -> bool:
        """Whether NO_PROXY sends ``url`` (an https:// URL) around the proxy."""
        if not self._no_proxy:
            return False
        origin = _parsed_url(url).origin
        return self._no_proxy.bypasses(origin.host.decode("ascii"), origin.port)

    def _proxied_pool(self, account: str) -> httpcore.AsyncConnectionPool:
        pool = self._proxied.get(account)
        if pool is None:
            pool = self._proxied[account] = httpcore.AsyncConnectionPool(
                network_backend=self._backend,
                ssl_context=self._ssl_context,
                proxy=self._proxy,
                max_connections=self._max_connections,
                keepalive_expiry=_KEEPALIVE_EXPIRY,
                http1=True,
                http2=False,
                retries=0,
            )
        return pool

    def _direct_pool(self, account: str, url: str) -> _DirectPool:
        origin = _parsed_url(url).origin
        key = (account, origin.scheme, origin.host, origin.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _DirectPool(self._direct_backend, self._ssl_context, self._max_connections)
        return pool

    @property
    def pool_count(self) -> int:
        """How many accounts have connection pools, direct or proxied (for tests and /health)."""
        return len(self._accounts())

    def _accounts(self) -> set[str]:
        return {key[0] for key in self._pools} | self._proxied.keys()

    def _timeouts(self, timeout: float) -> dict[str, float]:
        read = min(self._read_timeout, timeout)
        connect = min(self._connect_timeout, timeout)
        return {"connect": connect, "read": read, "write": read, "pool": connect}

    @staticmethod
    def _headers(request: HttpRequest) -> list[tuple[str, str]]:
        # Sent exactly as given plus these two, which HTTP/1.1 needs (httpx would add them).
        headers = list(request.headers)
        names = {k.lower() for k, _ in headers}
        if "host" not in names:
            headers.insert(0, ("Host", _host_header(request.url).decode("ascii")))
        if "content-length" not in names and (request.body or request.method not in ("GET", "HEAD")):
            headers.append(("Content-Length", str(len(request.body))))
        return headers

    def _request(self, request: HttpRequest, timeout: float) -> httpcore.Request:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._headers(request)]
        return httpcore.Request(
            request.method,
            _parsed_url(request.url),
            headers=headers,
            content=request.body,
            extensions={"timeout": self._timeouts(timeout)},
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
        started = time.monotonic()
        deadline = started + timeout
        url = request.url
        # HTTPS_PROXY applies to https:// URLs only (curl's rule), so a local http:// simulator
        # is reached directly even when a proxy is configured for Kiro; NO_PROXY's hosts too.
        proxied = self._proxy is not None and url.lower().startswith("https://") and not self._bypasses(url)
        direct = None if proxied else self._direct_pool(account, url)
        connection: Http1Connection | None = None
        response: httpcore.Response | None = None
        timeouts = self._timeouts(timeout)
        with _map_exceptions(url):
            if direct is None:
                with anyio.fail_after(timeout):
                    response = await self._proxied_pool(account).handle_async_request(self._request(request, timeout))
            else:
                # Every wait of a direct call is bounded by the deadline itself: no cancel scope.
                parsed = _parsed_url(url)
                data = encode_request(request.method, parsed.target.decode("ascii"), self._headers(request),
                                      request.body)
                head, connection = await direct.send(parsed.origin, request.method, data, timeouts, deadline)
        try:
            if connection is not None:
                yield UpstreamStream(
                    status=head.status,
                    headers=head.headers,
                    chunks=_body(connection, timeouts["read"], url, deadline),
                    ends_at=deadline,
                    url=url,
                    wait_hook=connection.wait_hook,
                    timed=True,
                )
            else:
                assert response is not None
                yield UpstreamStream(
                    status=response.status,
                    headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers),
                    chunks=self._chunks(response, url),
                    ends_at=deadline,
                    url=url,
                )
        finally:
            if connection is not None and direct is not None and direct.keep(connection):
                pass  # idle again: nothing to wait for, so no shielded scope either
            else:
                with anyio.CancelScope(shield=True):
                    if response is not None:
                        with contextlib.suppress(Exception):
                            await response.aclose()
                    if direct is not None and connection is not None:
                        await direct.release(connection)

    async def _chunks(self, response: httpcore.Response, url: str) -> AsyncIterator[bytes]:
        # httpcore bounds each read by the read timeout; the caller's deadline() bounds the whole.
        with _map_exceptions(url):
            async for chunk in cast(AsyncIterable[bytes], response.stream):
                if chunk:
                    yield chunk

    async def reap_idle(self) -> int:
        """Close every pool's idle connections that upstream has closed; how many."""
        closed = 0
        for direct in list(self._pools.values()):
            closed += await direct.reap()
        for proxied in list(self._proxied.values()):
            closed += await _reap_proxied(proxied)
        return closed

    async def run_reaper(self, interval: float = REAP_INTERVAL) -> None:
        """Forever: every ``interval`` seconds, ``reap_idle()``. Upstream closes idle connections
        after about a minute; a pool only looks at them on its next call, and until then each
        is a half-closed socket (after a burst of streams, hundreds of them)."""
        while True:
            await anyio.sleep(interval)
            try:
                await self.reap_idle()
            except Exception:
                log.exception("could not check the idle upstream connections")

    async def close_account(self, account: str) -> None:
        """Close the pools of ``account`` (removed from the configuration, or its token revoked)."""
        for key in [key for key in self._pools if key[0] == account]:
            await self._pools.pop(key).aclose()
        proxied = self._proxied.pop(account, None)
        if proxied is not None:
            await proxied.aclose()

    async def aclose(self) -> None:
        """Close every pool."""
        for account in self._accounts():
            await self.close_account(account)

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
