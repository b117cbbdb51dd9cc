"""One direct upstream connection: the core's HTTP/1.1 client framing over a network stream.

httpcore's HTTP/1.1 connection read a streamed answer through h11, one event per HTTP chunk
(Kiro sends a chunk per EventStream frame), behind locks and nested generators: about a fifth
of the gateway's CPU per streamed answer (docs/performance.md). Here a request is written in
one piece and its answer is read through ``kiro_protocol``'s ``HttpAnswerReader``, which hands
out everything one network read brought as one piece. httpcore still provides the network
streams (TCP, TLS, timeouts); proxied calls keep httpcore's whole client.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore

from kiro_protocol import HttpAnswerReader, NEED_DATA, ResponseEnd, ResponseHead

__all__ = ["bounded_timeout", "Http1Connection", "WaitHook"]

# Bytes asked of the network per read (httpcore's figure).
_READ_SIZE = 64 * 1024
_TIMEOUTS = (httpcore.ReadTimeout, httpcore.WriteTimeout)


def bounded_timeout(timeout: float, deadline: float) -> tuple[float, bool]:
    """The timeout of one read or write: ``timeout``, or less when the call's ``deadline``
    (``time.monotonic()`` clock) comes first; and whether the deadline is what bounds it.

    Each operation carries the call's deadline itself instead of a cancel scope around the
    call (two fewer scopes per request, each a pair of task look-ups under anyio)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's deadline passed")
    return (left, True) if left < timeout else (timeout, False)


class WaitHook:
    """What the caller wants done each time its upstream connection is about to wait for bytes.

    A streamed answer often arrives as several frames in one read; its reader translates them
    all and sets this to its flush, so they leave in one write just before the connection waits,
    instead of one write per frame (see ``UpstreamStream.wait_hook``).
    """

    __slots__ = ("callback", "tick", "tick_interval", "interrupt")

    def __init__(self) -> None:
        self.callback: Callable[[], Awaitable[None]] | None = None
        #: Run after every ``tick_interval`` seconds of waiting for bytes (the caller's clock:
        #: keep-alive pings to its client), from the reading task: no task of its own per call.
        self.tick: Callable[[], Awaitable[None]] | None = None
        self.tick_interval = 1.0
        #: Ends the read under way at once, from any callback, by closing the connection (the
        #: reader then fails with a connection error); None where the network stream cannot do
        #: that synchronously, and only a cancel scope interrupts its reader.
        self.interrupt: Callable[[], None] | None = None


class Http1Connection:
    """A connection carrying one request at a time, reusable while its answers say so.

    ``answer_started`` tells a caller whether a failed request may be sent again elsewhere
    (``kiro_protocol.may_send_again`` decides).
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream, *, keepalive_expiry: float) -> None:
        self._stream = stream
        self._reader = HttpAnswerReader()
        self._expiry = keepalive_expiry
        self._idle_since = time.monotonic()
        self._closed = False
        self.wait_hook = WaitHook()
        abort = getattr(stream, "abort", None)
        if abort is not None:
            self._abort: Callable[[], None] = abort
            self.wait_hook.interrupt = self._interrupt
        # Streams that answer "is_readable" from their own buffer (aio.py's) are asked before
        # each read whether it would wait; others always flush first (a system call saved).
        self._cheap_readable = bool(getattr(stream, "cheap_is_readable", False))
        # When the wait hook's tick is due next (time.monotonic()).
        self._next_tick = math.inf

    @property
    def answer_started(self) -> bool:
        """Whether any byte of the current request's answer arrived."""
        return self._reader.answer_started

    def is_idle(self) -> bool:
        """No answer pending, and the connection can carry another request."""
        return not self._closed and self._reader.idle

    def has_expired(self) -> bool:
        """Idle too long, or the server closed it (or sent something unasked) while idle."""
        if time.monotonic() - self._idle_since > self._expiry:
            return True
        return bool(self._stream.get_extra_info("is_readable"))

    async def request(
        self, method: str, data: bytes, *, write_timeout: float, read_timeout: float, deadline: float = math.inf
    ) -> ResponseHead:
        """Send a request (head and body, ``data``) and read its answer's head.

        Raises:
            TimeoutError: ``deadline`` (``time.monotonic()``) passed first.
        """
        self._reader.expect(method)
        timeout, by_deadline = bounded_timeout(write_timeout, deadline)
        try:
            await self._stream.write(data, timeout)
            reader = self._reader
            while True:
                event = reader.next_event()
                if type(event) is ResponseHead:
                    return event
                # Only NEED_DATA can come before the head.
                timeout, by_deadline = bounded_timeout(read_timeout, deadline)
                reader.receive_data(await self._stream.read(_READ_SIZE, timeout))
        except _TIMEOUTS:
            if by_deadline:
                raise TimeoutError("the call's deadline passed") from None
            raise

    async def body(self, read_timeout: float, deadline: float = math.inf) -> AsyncIterator[bytes]:
        """The answer's body, everything one network read brought as one piece.

        Raises:
            TimeoutError: ``deadline`` (``time.monotonic()``) passed first.
        """
        reader = self._reader
        stream = self._stream
        hook = self.wait_hook
        self._next_tick = time.monotonic() + hook.tick_interval
        while True:
            event = reader.next_event()
            if type(event) is bytes:
                yield event
            elif event is NEED_DATA:
                flush = hook.callback
                if flush is not None and (not self._cheap_readable or not stream.get_extra_info("is_readable")):
                    await flush()
                timeout, by_deadline = bounded_timeout(read_timeout, deadline)
                try:
                    if hook.tick is None:
                        received = await stream.read(_READ_SIZE, timeout)
                    else:
                        received = await self._read_ticking(timeout, hook)
                except _TIMEOUTS:
                    if by_deadline:
                        raise TimeoutError("the call's deadline passed") from None
                    raise
                reader.receive_data(received)
            else:
                assert isinstance(event, ResponseEnd)
                self._idle_since = time.monotonic()
                return

    async def _read_ticking(self, timeout: float, hook: WaitHook) -> bytes:
        """One read that gives up after ``timeout`` seconds, running ``hook.tick`` each time
        ``hook.tick_interval`` seconds have passed since the last tick, whether bytes came
        meanwhile or not (a tool call held back until complete sends the client nothing, yet its
        bytes keep coming: the client still needs its pings). A timed-out read leaves the
        stream usable."""
        gives_up = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            tick = hook.tick
            if tick is not None and now >= self._next_tick:
                self._next_tick = now + hook.tick_interval
                await tick()
                now = time.monotonic()
            left = gives_up - now
            wait = min(left, max(self._next_tick - now, 0.0))
            try:
                return await self._stream.read(_READ_SIZE, max(wait, 0.0))
            except _TIMEOUTS:
                if wait >= left:
                    raise

    def _interrupt(self) -> None:
        self._closed = True  # never handed out again
        self._abort()

    async def aclose(self) -> None:
        self._closed = True
        await self._stream.aclose()
