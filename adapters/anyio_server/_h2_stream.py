"""One HTTP/2 stream as the h2 pump serves it: its request body, its responder, and the
connection's write lock the streams take turns on."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import h2.connection
import h2.exceptions

from adapters.runtime.answers import ResponseProgress, stream_headers, with_content_length
from kiro_protocol import BodyProblem, RequestHead

__all__ = ["H2Stream", "H2Responder", "StreamGone", "WriteLock"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"})


class StreamGone(Exception):
    """The stream was reset or the connection died: the handler is being cancelled."""


@dataclass(slots=True, eq=False)
class H2Stream:
    """A stream's request side; the handler's ``RequestBody``."""

    stream_id: int
    headers: list[tuple[str, str]]
    limit: int
    body: bytearray = field(default_factory=bytearray)
    #: The client finished sending (END_STREAM seen).
    ended: bool = False
    #: Why the body cannot be had; further DATA is dropped.
    problem: BodyProblem | None = None
    #: Reset by the client, or closed by us.
    closed: bool = False
    scope: anyio.CancelScope | None = None
    window: anyio.Event = field(default_factory=anyio.Event)
    #: Set while the handler waits for more of the body.
    arrived: anyio.Event | None = None

    def head(self, client: str | None) -> RequestHead:
        pseudo = {k: v for k, v in self.headers if k.startswith(":")}
        headers = [(k, v) for k, v in self.headers if not k.startswith(":")]
        if ":authority" in pseudo and not any(k == "host" for k, _ in headers):
            headers.insert(0, ("host", pseudo[":authority"]))
        method, target = pseudo.get(":method", "GET"), pseudo.get(":path", "/")
        return RequestHead(method=method, target=target, headers=tuple(headers), http_version="2", client=client)

    def receive(self, data: bytes, *, end: bool) -> None:
        """DATA (or END_STREAM, with ``data`` empty) from the client."""
        if self.problem is None and data:
            self.body += data
            if len(self.body) > self.limit:
                self.problem, self.body = BodyProblem.TOO_LARGE, bytearray()
        self.ended = self.ended or end
        if self.arrived is not None and (self.ended or self.problem is not None):
            self.arrived.set()

    def close(self) -> None:
        self.closed = True
        if self.scope is not None:
            self.scope.cancel()
        self.wake()

    def wake(self) -> None:
        """The flow-control window may have opened."""
        self.window.set()
        self.window = anyio.Event()

    async def read(self) -> bytes | BodyProblem:
        while not self.ended and self.problem is None and not self.closed:
            self.arrived = anyio.Event()
            await self.arrived.wait()
        if self.closed:
            return BodyProblem.CLIENT_GONE
        if self.problem is not None:
            return self.problem
        body, self.body = bytes(self.body), bytearray()
        return body


class WriteLock:
    """The connection's write lock: free to take when nobody holds it (no turn of the loop, no
    cancel-scope walk, unlike anyio.Lock), handed over first come first served otherwise."""

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        if not self._held:
            self._held = True
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self._release()  # handed the lock while being cancelled: pass it on
            else:
                self._waiters.remove(turn)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the lock passes straight to the next writer
        else:
            self._held = False


class H2Responder(ResponseProgress):
    """Answers on one stream; ``flush`` sends what h2 queued (a stream's write, timed by the pump)."""

    __slots__ = ("_conn", "_stream", "_flush")

    def __init__(self, conn: h2.connection.H2Connection, stream: H2Stream, flush: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self._conn = conn
        self._stream = stream
        self._flush = flush

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.advance("idle", "done")
        await self._send_headers(status, with_content_length(headers, body), end_stream=not body)
        if body:
            await self._send_data(body)
            await self._end()

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        if end:  # no write to save over HTTP/2: the same frames as a start and an end
            await self.start_stream(status, headers, body)
            await self.end_stream()
            return
        self.advance("idle", "streaming")
        # With a body, HEADERS and the first DATA leave in the same flush.
        await self._send_headers(status, stream_headers(headers), end_stream=False, flush=not body)
        if body:
            await self._send_data(body)

    async def send_chunk(self, data: bytes) -> None:
        self.advance("streaming", "streaming")
        if data:
            await self._send_data(data)

    async def end_stream(self, data: bytes = b"") -> None:
        self.advance("streaming", "done")
        if data:
            await self._send_data(data)
        await self._end()

    async def _gone(self) -> None:
        # Reset by the client or the connection died: behave as a disconnect would.
        if self._stream.scope is not None:
            self._stream.scope.cancel()
        await anyio.lowlevel.checkpoint()
        raise StreamGone

    async def _send_headers(self, status: int, headers: list[tuple[str, str]], *, end_stream: bool, flush: bool = True) -> None:
        pairs = [(b":status", str(status).encode("ascii"))]
        pairs += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        if self._stream.closed:
            await self._gone()
        try:
            self._conn.send_headers(self._stream.stream_id, pairs, end_stream=end_stream)
        except h2.exceptions.StreamClosedError:
            await self._gone()
        if flush:
            await self._flush()

    async def _end(self) -> None:
        if self._stream.closed:
            await self._gone()
        try:
            self._conn.end_stream(self._stream.stream_id)
        except h2.exceptions.StreamClosedError:
            await self._gone()
        await self._flush()

    async def _send_data(self, data: bytes) -> None:
        conn, stream_id = self._conn, self._stream.stream_id
        view = memoryview(data)
        while view:
            if self._stream.closed:
                await self._gone()
            try:
                window = conn.local_flow_control_window(stream_id)
            except h2.exceptions.StreamClosedError:
                await self._gone()
                return
            size = min(window, len(view), conn.max_outbound_frame_size)
            if size <= 0:
                await self._flush()  # what is queued (the head) goes out while we wait
                await self._stream.window.wait()
                continue
            # The usual case, the whole chunk in one frame, is sent as it is: no copy.
            conn.send_data(stream_id, data if size == len(data) else bytes(view[:size]))
            view = view[size:]
            await self._flush()
