"""One direct upstream connection: the core's HTTP/1.1 client framing over a network stream.

httpcore's HTTP/1.1 connection read a streamed answer through h11, one event per HTTP chunk
(Kiro sends a chunk per EventStream frame), behind locks and nested generators: about a fifth
of the gateway's CPU per streamed answer (docs/performance.md). Here a request is written in
one piece and its answer is read through ``kiro_protocol``'s ``HttpAnswerReader``, which hands
out everything one network read brought as one piece. httpcore still provides the network
streams (TCP, TLS, timeouts); proxied calls keep httpcore's whole client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore

from kiro_protocol import HttpAnswerReader, NEED_DATA, ResponseEnd, ResponseHead

__all__ = ["Http1Connection", "WaitHook"]

# Bytes asked of the network per read (httpcore's figure).
_READ_SIZE = 64 * 1024


class WaitHook:
    """What the caller wants done each time its upstream connection is about to wait for bytes.

    A streamed answer often arrives as several frames in one read; its reader translates them
    all and sets this to its flush, so they leave in one write just before the connection waits,
    instead of one write per frame (see ``UpstreamStream.wait_hook``).
    """

    __slots__ = ("callback",)

    def __init__(self) -> None:
        self.callback: Callable[[], Awaitable[None]] | None = None


class Http1Connection:
    """A connection carrying one request at a time, reusable while its answers say so.

    ``nothing_received`` tells a caller whether a failed request may be sent again elsewhere: a
    reused connection that the server had closed fails before any byte of an answer arrives.
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream, *, keepalive_expiry: float) -> None:
        self._stream = stream
        self._reader = HttpAnswerReader()
        self._expiry = keepalive_expiry
        self._idle_since = time.monotonic()
        self._closed = False
        self.wait_hook = WaitHook()
        # Streams that answer "is_readable" from their own buffer (aio.py's) are asked before
        # each read whether it would wait; others always flush first (a system call saved).
        self._cheap_readable = bool(getattr(stream, "cheap_is_readable", False))
        self.requests = 0
        self.nothing_received = True

    def is_idle(self) -> bool:
        """No answer pending, and the connection can carry another request."""
        return not self._closed and self._reader.idle

    def has_expired(self) -> bool:
        """Idle too long, or the server closed it (or sent something unasked) while idle."""
        if time.monotonic() - self._idle_since > self._expiry:
            return True
        return bool(self._stream.get_extra_info("is_readable"))

    async def request(self, method: str, data: bytes, *, write_timeout: float, read_timeout: float) -> ResponseHead:
        """Send a request (head and body, ``data``) and read its answer's head."""
        self._reader.expect(method)
        self.requests += 1
        self.nothing_received = True
        await self._stream.write(data, write_timeout)
        reader = self._reader
        while True:
            event = reader.next_event()
            if type(event) is ResponseHead:
                return event
            # Only NEED_DATA can come before the head.
            received = await self._stream.read(_READ_SIZE, read_timeout)
            if received:
                self.nothing_received = False
            reader.receive_data(received)

    async def body(self, read_timeout: float) -> AsyncIterator[bytes]:
        """The answer's body, everything one network read brought as one piece."""
        reader = self._reader
        stream = self._stream
        hook = self.wait_hook
        while True:
            event = reader.next_event()
            if type(event) is bytes:
                yield event
            elif event is NEED_DATA:
                flush = hook.callback
                if flush is not None and (not self._cheap_readable or not stream.get_extra_info("is_readable")):
                    await flush()
                reader.receive_data(await stream.read(_READ_SIZE, read_timeout))
            else:
                assert isinstance(event, ResponseEnd)
                self._idle_since = time.monotonic()
                return

    async def aclose(self) -> None:
        self._closed = True
        await self._stream.aclose()
