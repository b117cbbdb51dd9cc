"""A small HTTP/1.1 load generator: keep-alive clients on raw asyncio sockets.

``run_load(port, request, clients, warm=..., duration=...)`` opens ``clients`` connections and
has each send the same request again and again. The first ``warm`` seconds are not counted
(connections open, caches fill); then for ``duration`` seconds every answer that completes is
timed from the request's write to the end of its body. The counted time is cut into ``windows``
equal parts; ``on_window(i)`` is called at each of their ``windows + 1`` boundaries (and
``LoadResult.boundaries`` records the answers counted by then), so the caller can read the
server's CPU clock at those instants and tell a window disturbed by other work on the machine.

The client parses as little as it can (the status line, ``content-length`` or the chunk sizes)
because it shares the machine's cores with the server it measures; it checks every answer's
status and that its last bytes hold ``request.expect``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .gateway_requests import BenchRequest

__all__ = ["Client", "LoadResult", "request_bytes", "run_load"]

# Bytes of each answer's end kept for the ``expect`` check.
_TAIL = 512


@dataclass
class LoadResult:
    """What one load measured inside its counted window."""

    seconds: float = 0.0
    #: Seconds from write to the end of the body, of every good answer completed in the window.
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: The first error seen (status line or reason), for the report.
    first_error: str = ""
    #: Good answers counted at each window boundary (the first is 0).
    boundaries: list[int] = field(default_factory=list)

    @property
    def answers(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def request_bytes(port: int, request: BenchRequest) -> bytes:
    """The whole HTTP/1.1 request, head and body."""
    lines = [f"POST {request.target} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(request.body)}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


class Client(asyncio.Protocol):
    """One keep-alive connection sending the request each time the previous answer has ended."""

    def __init__(self, payload: bytes, expect: bytes, done: Callable[[bool, float, str], None]) -> None:
        self._payload = payload
        self._expect = expect
        self._done = done
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._sent = 0.0
        #: A request was sent and its answer has not ended.
        self._busy = False
        self.closed = asyncio.Event()
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._head_done = False
        #: content-length body: bytes left; chunked: -1.
        self._left = 0
        self._chunked = False
        self._close_after = False
        self._tail = b""

    def send(self) -> None:
        assert self._transport is not None
        self._reset()
        self._sent = time.monotonic()
        self._busy = True
        self._transport.write(self._payload)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._busy:
            self._busy = False
            self._done(False, time.monotonic() - self._sent, f"connection closed mid-answer ({exc!r})")
        self.closed.set()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        # One pass per answer; only a test feeds the next answer before the request (pipelined).
        while buffer and self._busy:
            if not self._head_done:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end]).lower()
                del buffer[: end + 4]
                self._status = int(head[9:12])
                self._chunked = b"transfer-encoding: chunked" in head
                self._close_after = b"connection: close" in head
                at = head.find(b"content-length:")
                self._left = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
                self._head_done = True
            if self._chunked:
                if not self._read_chunks(buffer):
                    return
            elif len(buffer) >= self._left:
                self._tail = bytes(buffer[: self._left][-_TAIL:])
                del buffer[: self._left]
                self._finish()
            else:
                return

    def _read_chunks(self, buffer: bytearray) -> bool:
        """Consume what ``buffer`` holds of the chunked body; True once the answer has ended."""
        # ``_left`` here: data bytes (and their CRLF) of the current chunk still to come.
        pos = 0
        size = len(buffer)
        while True:
            if self._left:
                take = min(self._left, size - pos)
                self._tail = (self._tail + bytes(buffer[pos:pos + take]))[-_TAIL:]
                pos += take
                self._left -= take
                if self._left:
                    break
                continue
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                break
            chunk = int(bytes(buffer[pos:line_end]).split(b";", 1)[0], 16)
            if chunk == 0:
                if buffer.find(b"\r\n", line_end + 2) != line_end + 2:
                    break  # trailers or the final CRLF not here yet
                del buffer[: line_end + 4]
                self._finish()
                return True
            pos = line_end + 2
            self._left = chunk + 2
        del buffer[:pos]
        return False

    def _finish(self) -> None:
        good = self._status == 200 and self._expect in self._tail
        why = "" if good else f"HTTP {self._status}: {self._tail[-200:].decode(errors='replace')}"
        self._busy = False
        self._done(good, time.monotonic() - self._sent, why)
        if self._close_after:
            self.close()
        else:
            self.send()


def run_load(
    port: int,
    request: BenchRequest,
    clients: int,
    *,
    warm: float,
    duration: float,
    windows: int = 1,
    on_window: Callable[[int], None] = lambda boundary: None,
) -> LoadResult:
    """``clients`` keep-alive connections sending ``request``; see the module's docstring."""
    payload = request_bytes(port, request)
    result = LoadResult()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counting = False

        def done(good: bool, seconds: float, why: str) -> None:
            if not counting:
                return
            if good:
                result.latencies.append(seconds)
            else:
                result.errors += 1
                result.first_error = result.first_error or why

        async def client(delay: float) -> None:
            # Each connection is reopened if the server closes it, until the load ends.
            await asyncio.sleep(delay)
            while not stopping.is_set():
                try:
                    _, protocol = await loop.create_connection(lambda: Client(payload, request.expect, done), "127.0.0.1", port)
                except OSError as exc:
                    if counting:
                        result.errors += 1
                        result.first_error = result.first_error or repr(exc)
                    await asyncio.sleep(0.05)
                    continue
                assert isinstance(protocol, Client)
                protocol.send()
                waits = [asyncio.ensure_future(protocol.closed.wait()), asyncio.ensure_future(stopping.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in waits:
                    waiting.cancel()
                protocol.close()

        stopping = asyncio.Event()
        # The clients start spread over a tenth of the warm-up, not in one wave.
        tasks = [asyncio.ensure_future(client(warm * 0.1 * i / clients)) for i in range(clients)]
        await asyncio.sleep(warm)
        on_window(0)
        result.boundaries.append(0)
        counting = True
        start = time.monotonic()
        for boundary in range(1, windows + 1):
            # Sleep to the boundary's planned instant, so that late wake-ups do not add up.
            await asyncio.sleep(max(0.0, start + duration * boundary / windows - time.monotonic()))
            if boundary == windows:
                counting = False
                result.seconds = time.monotonic() - start
            on_window(boundary)
            result.boundaries.append(result.answers)
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    return result
