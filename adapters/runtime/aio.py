"""Sockets on asyncio protocols: the byte streams of the server and of the upstream client.

anyio's asyncio socket stream pays, on every read that has to wait, for two ``epoll_ctl`` calls
(it resumes and pauses the transport around each read) and, on every write, for a cancel scope
and an extra turn of the event loop. A streamed answer is one small read and one small write per
model frame, so that was a large share of the gateway's CPU time and of the delay it adds to each
frame. ``AioStream`` keeps the transport reading until its buffer passes a high-water mark (real
back-pressure only) and returns from ``send`` at once unless the transport asks to wait. It is an
``anyio.abc.SocketStream``, so the pumps and anyio's TLS wrapper take it unchanged.

Used only when the running event loop is asyncio's (``running_asyncio()``); under trio the
callers keep anyio's own streams. ``AioNetworkBackend`` is the same stream for httpcore.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpcore

__all__ = ["AioStream", "AioListener", "AioNetworkBackend", "running_asyncio", "open_server"]

# Buffered input beyond this pauses the transport; reading below the low mark resumes it.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


def running_asyncio() -> bool:
    """Whether the current task runs on an asyncio event loop (not trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader; tracks the transport's write pressure."""

    # Two per stream (client and upstream side), alive as long as it: slots and a list instead
    # of a dict and a deque (760 bytes empty) are 2 KB less per held stream (issue 17 item 4).
    # The buffer holds a piece or two: the reader takes each as soon as it arrives.
    __slots__ = ("transport", "buffer", "buffered", "eof", "lost", "exception", "reading_paused", "writing_paused",
                 "_reader", "_read_deadline", "_read_timer", "_drainers", "on_connect", "on_gone")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._reader: asyncio.Future[None] | None = None
        # The read timeout: one timer, moved lazily, rather than a timer for every read.
        self._read_deadline = math.inf
        self._read_timer: asyncio.TimerHandle | None = None
        self._drainers: list[asyncio.Future[None]] = []
        # Set by the server: called once the connection is made (starts its task).
        self.on_connect: Callable[[_Protocol], None] | None = None
        # Set while someone watches for the peer leaving (see AioStream.watch_peer).
        self.on_gone: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.on_connect is not None:
            self.on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        self._gone()
        return True  # keep the transport open: we may still be writing (a half-close)

    def _gone(self) -> None:
        callback, self.on_gone = self.on_gone, None
        if callback is not None:
            callback()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exception = exc
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._wake_reader()
        self._gone()
        self._wake_drainers()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            _settle(waiter)

    def _wake_reader(self) -> None:
        if self._reader is not None:
            _settle(self._reader)

    @property
    def readable(self) -> bool:
        """Whether a read would not wait: data, end of stream or a lost connection."""
        return bool(self.buffer) or self.eof or self.lost

    async def wait_readable(self, timeout: float | None) -> bool:
        """Wait for data, EOF or loss; False if ``timeout`` passed first. (Only called with an
        empty buffer, so reading is never paused here: ``AioStream._take`` resumed it.)"""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._reader = waiter
        if timeout is None:
            self._read_deadline = math.inf
        else:
            self._read_deadline = deadline = loop.time() + timeout
            timer = self._read_timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._read_timer = loop.call_at(deadline, self._read_timer_fired)
        try:
            await waiter
        finally:
            self._reader = None
        return self.readable

    def _read_timer_fired(self) -> None:
        # The deadline may have moved on since the timer was set: then set it again.
        self._read_timer = None
        waiter = self._reader
        if waiter is None or waiter.done() or self._read_deadline == math.inf:
            return
        loop = waiter.get_loop()
        if loop.time() >= self._read_deadline:
            waiter.set_result(None)
        else:
            self._read_timer = loop.call_at(self._read_deadline, self._read_timer_fired)

    async def drain(self, timeout: float | None) -> bool:
        """Wait until the transport takes writes again; False if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._drainers.append(waiter)
        timer = loop.call_later(timeout, _settle, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._drainers:
                self._drainers.remove(waiter)
        return not self.writing_paused or self.lost


def _settle(waiter: asyncio.Future[None]) -> None:
    """Wake whoever awaits ``waiter`` (once)."""
    if not waiter.done():
        waiter.set_result(None)


class AioStream(anyio.abc.SocketStream):
    """An ``anyio.abc.SocketStream`` over an asyncio transport and ``_Protocol``."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False

    # -- reading --------------------------------------------------------------------------------

    def _take(self, max_bytes: int) -> bytes:
        protocol = self._protocol
        chunk = protocol.buffer.pop(0)
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            protocol.buffer.insert(0, rest)
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered <= _LOW_WATER:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def receive_within(self, max_bytes: int, timeout: float | None) -> bytes | None:
        """Like ``receive``; None if nothing arrived within ``timeout`` seconds."""
        protocol = self._protocol
        while not protocol.buffer:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.eof or protocol.lost:
                if protocol.exception is not None:
                    raise anyio.BrokenResourceError from protocol.exception
                raise anyio.EndOfStream
            if not await protocol.wait_readable(timeout):
                return None
        return self._take(max_bytes)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        chunk = await self.receive_within(max_bytes, None)
        assert chunk is not None
        return chunk

    # -- writing --------------------------------------------------------------------------------

    async def send_within(self, item: bytes, timeout: float | None) -> bool:
        """Like ``send``; False if the transport still refused more after ``timeout`` seconds."""
        protocol = self._protocol
        if self._closed:
            raise anyio.ClosedResourceError
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.exception
        self._transport.write(item)
        if protocol.writing_paused:
            if not await protocol.drain(timeout):
                return False
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.lost:
                raise anyio.BrokenResourceError from protocol.exception
        return True

    async def send(self, item: bytes) -> None:
        await self.send_within(item, None)

    async def send_eof(self) -> None:
        if not self._transport.is_closing() and self._transport.can_write_eof():
            try:
                self._transport.write_eof()
            except OSError:
                pass

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._protocol._wake_reader()
        self._transport.close()
        # What is still buffered is given a moment to leave (as anyio does), then dropped.
        await anyio.lowlevel.checkpoint()
        if not self._protocol.lost:
            self._transport.abort()

    def watch_peer(self, on_gone: Callable[[], None], *, period: float, stalled: Callable[[], bool]) -> Callable[[], None]:
        """Call ``on_gone`` once if the peer closes its side or the connection is lost, or if
        ``stalled()`` says so (asked every ``period`` seconds); returns the function that stops
        watching. No task and no read: what the peer sends meanwhile stays buffered (pipelining),
        up to the high-water mark.
        """
        protocol = self._protocol
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        watching = True

        def stop() -> None:
            nonlocal watching
            watching = False
            if protocol.on_gone is gone:
                protocol.on_gone = None
            if timer is not None:
                timer.cancel()

        def gone() -> None:
            if watching:
                stop()
                on_gone()

        def check() -> None:
            nonlocal timer
            if not watching:
                return
            if stalled():
                gone()
            else:
                timer = loop.call_later(period, check)

        if protocol.eof or protocol.lost:
            loop.call_soon(gone)  # already gone: said at the handler's first await
        else:
            protocol.on_gone = gone
            timer = loop.call_later(period, check)
        return stop

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self._closed = True
        self._protocol._wake_reader()
        self._transport.abort()

    # -- attributes -----------------------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        return self._transport

    @property
    def protocol(self) -> _Protocol:
        return self._protocol

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS session of a TLS connection (asyncio ran the handshake)."""
        return self._transport.get_extra_info("ssl_object")  # type: ignore[no-any-return]

    @property
    def _raw_socket(self) -> socket.socket:
        sock = self._transport.get_extra_info("socket")
        return sock  # type: ignore[no-any-return]


class _AioNetworkStream(httpcore.AsyncNetworkStream):
    """``AioStream`` as httpcore wants it: timeouts per call, httpcore's exceptions."""

    #: "is_readable" is answered from what the protocol saw, without a system call.
    cheap_is_readable = True

    def __init__(self, stream: AioStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            chunk = await self._stream.receive_within(max_bytes, timeout)
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise httpcore.ReadError(str(exc.__cause__ or exc) or "connection lost") from exc
        if chunk is None:
            raise httpcore.ReadTimeout(f"no data within {timeout} s")
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            sent = await self._stream.send_within(buffer, timeout)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise httpcore.WriteError(str(exc.__cause__ or exc) or "connection lost") from exc
        if not sent:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s")

    async def aclose(self) -> None:
        # httpcore closes a connection it gives up on (or the caller cancelled): no lingering.
        self._stream.abort()

    def abort(self) -> None:
        """Close at once, from any callback: a read under way ends with ``httpcore.ReadError``."""
        self._stream.abort()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        stream = self._stream
        try:
            with anyio.fail_after(timeout):
                transport = await loop.start_tls(
                    stream.transport, stream.protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            stream.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:
            stream.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        assert transport is not None
        stream.protocol.transport = transport
        return _AioNetworkStream(AioStream(transport, stream.protocol))

    def get_extra_info(self, info: str) -> Any:
        transport = self._stream.transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            return self._stream.protocol.readable
        return None


class AioNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on ``AioStream`` under asyncio, httpcore's anyio one otherwise."""

    def __init__(self) -> None:
        self._fallback = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not running_asyncio():
            return await self._fallback.connect_tcp(host, port, timeout, local_address, socket_options)
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _AioNetworkStream(AioStream(transport, protocol))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return await self._fallback.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class AioListener(anyio.abc.Listener[AioStream]):
    """A listening asyncio server, as an anyio listener; ``accept()`` hands out its connections
    one by one."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self._pending: collections.deque[AioStream] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def _connected(self, protocol: _Protocol) -> None:
        # An asyncio callback, not a task: nothing here may need anyio (no current task).
        assert protocol.transport is not None
        self._pending.append(AioStream(protocol.transport, protocol))
        if self._waiter is not None:
            _settle(self._waiter)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def accept(self) -> AioStream:
        """The next connection (its TLS handshake done, if any)."""
        while not self._pending:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.popleft()

    async def serve(
        self, handler: Callable[[AioStream], Any], task_group: anyio.abc.TaskGroup | None = None
    ) -> None:
        """Run ``handler`` in a task for every connection (in ``task_group`` if given), forever."""
        async with contextlib.AsyncExitStack() as stack:
            if task_group is None:
                task_group = await stack.enter_async_context(anyio.create_task_group())
            while True:
                task_group.start_soon(handler, await self.accept())

    def close(self) -> None:
        """Stop listening; connections accepted but not yet taken are dropped."""
        if self.server is not None:
            self.server.close()
        while self._pending:
            self._pending.popleft().abort()

    async def aclose(self) -> None:
        self.close()


async def open_server(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = 60.0,
    sock: socket.socket | None = None,
) -> AioListener:
    """Listen on ``host:port``, or on ``sock`` when given (bound by a parent process; asyncio only).

    With ``ssl_context`` asyncio runs the TLS handshake before a connection is accepted (ALPN is
    read from the stream's ``ssl_object``).
    """
    loop = asyncio.get_running_loop()
    listener = AioListener()

    def factory() -> _Protocol:
        protocol = _Protocol()
        protocol.on_connect = listener._connected
        return protocol

    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs = {"ssl": ssl_context, "ssl_handshake_timeout": handshake_timeout}
    if sock is not None:
        listener.server = await loop.create_server(factory, sock=sock, **kwargs)
    else:
        listener.server = await loop.create_server(factory, host, port, reuse_address=True, **kwargs)
    return listener
