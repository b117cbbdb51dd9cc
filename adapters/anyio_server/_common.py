"""What both pumps share: connection limits, the IO errors that mean "the client is gone", and
the watch on blocked writes."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from adapters.runtime.aio import AioStream

__all__ = ["ConnectionLimits", "IO_ERRORS", "READ_SIZE", "WriteWatch"]

#: Bytes asked of the socket per read.
READ_SIZE = 65536

#: What a read or a write raises when the connection is gone.
IO_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Per-connection limits, from the settings (seconds and bytes)."""

    #: The largest request body; beyond it 413 without buffering the rest.
    max_body: int = 20 * 1024 * 1024
    #: Time for a complete request head; also how long an idle kept-alive connection lives.
    header_timeout: float = 60.0
    #: Longest silence from the client while a request body is being read.
    read_timeout: float = 60.0
    #: Longest a single write to the client may block.
    write_timeout: float = 300.0
    #: After a 413, how long we keep discarding the client's body so it can read the answer.
    discard_timeout: float = 2.0


class WriteWatch:
    """Notices a write to the client that has been blocked for ``timeout`` seconds.

    A cancel scope around every write cost more than the write itself on a streamed answer, and
    a write only ever blocks when the client stops reading. So writers mark each write with
    ``begin()``/``end()``, and a task that runs anyway (the connection's reader) calls ``check()``
    every ``period`` seconds: one write still in progress for five checks in a row has been
    blocked for between ``timeout`` and 1.25 × ``timeout``.
    """

    __slots__ = ("timeout", "period", "_seq", "_active", "_seen", "_strikes")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.period = timeout / 4
        self._seq = 0
        self._active = False
        self._seen = -1
        self._strikes = 0

    def begin(self) -> None:
        self._seq += 1
        self._active = True

    def end(self) -> None:
        self._active = False

    async def send(self, stream: AioStream, data: bytes, *, watched: bool) -> None:
        """Send ``data``; ``watched``: timed by this watch (its checker must be running), else by
        a deadline of its own (raises ``TimeoutError``)."""
        if watched:
            self.begin()
            try:
                await stream.send(data)
            finally:
                self.end()
        elif not await stream.send_within(data, self.timeout):
            raise TimeoutError

    def check(self) -> bool:
        """True once a single write has been blocked for at least ``timeout``."""
        if not self._active:
            self._strikes = 0
            return False
        if self._seq != self._seen:
            self._seen, self._strikes = self._seq, 1
            return False
        self._strikes += 1
        return self._strikes >= 5
