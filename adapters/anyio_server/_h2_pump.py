"""HTTP/2 through h2: one reader per connection, one task per stream, flow control respected."""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
import anyio.lowlevel
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from kiro_protocol import ErrorKind

from ._common import READ_SIZE, ConnectionLimits, error_response, with_content_length, WriteWatch
from ._handler import Handler, Lifecycle, Request

__all__ = ["H2Pump", "H2_PREFACE"]

log = logging.getLogger("kiro2api.server")

#: What an HTTP/2 client sends first (RFC 9113 §3.4); seeing it on a cleartext connection
#: means "prior knowledge" h2c.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_IO_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"})
_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 16 << 20


@dataclass(slots=True, eq=False)
class _Stream:
    stream_id: int
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)
    #: The client finished sending (END_STREAM seen).
    ended: bool = False
    #: A 413 was (or is being) sent; further DATA is dropped.
    rejected: bool = False
    #: Reset by the client, or closed by us.
    closed: bool = False
    scope: anyio.CancelScope | None = None
    window: anyio.Event = field(default_factory=anyio.Event)


class _StreamGone(Exception):
    pass


class _WriteLock:
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


class H2Pump:
    """Serve HTTP/2 streams on ``stream``; ``initial`` holds bytes already read (the preface)."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        handler: Handler,
        limits: ConnectionLimits,
        lifecycle: Lifecycle,
        client: str | None = None,
        initial: bytes = b"",
    ) -> None:
        self._stream = stream
        self._handler = handler
        self._limits = limits
        self._lifecycle = lifecycle
        self._client = client
        self._initial = initial
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self._conn = h2.connection.H2Connection(config=config)
        self._streams: dict[int, _Stream] = {}
        # Requests complete in the batch of frames being handled (see _read).
        self._complete: list[_Stream] = []
        self._running = 0
        self._write_lock = _WriteLock()
        # Flushes by the streams' tasks are timed by the read loop (see WriteWatch).
        self._watch = WriteWatch(limits.write_timeout)
        self._recv_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._dead = False

    @property
    def busy(self) -> bool:
        return self._running > 0

    def on_shutdown(self) -> None:
        """Close now if idle; otherwise GOAWAY and close once the running streams are done."""
        if self._recv_scope is not None and not self.busy:
            self._recv_scope.cancel()

    async def run(self) -> None:
        try:
            self._conn.initiate_connection()
            self._conn.update_settings(
                {
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 128,
                    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                }
            )
            self._conn.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._read(tg, self._initial)
                await anyio.sleep_forever()  # until the last reader ends the connection
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._stream.aclose()

    async def _read(self, tg: anyio.abc.TaskGroup, data: bytes) -> None:
        """Be the connection's reader until the connection ends, or until a request is complete:
        then a new task takes over the reading and this one answers the request. (A new task
        starts a turn of the event loop later, behind everything else that is ready; the request
        should not wait for that, the reading can.)"""
        stream = None
        with contextlib.suppress(_StreamGone):
            stream = await self._read_loop(tg, data)
        if stream is None:
            tg.cancel_scope.cancel()  # the connection is over: every stream with it
            return
        tg.start_soon(self._read, tg, b"")
        await self._run_stream(stream)

    async def _read_loop(self, tg: anyio.abc.TaskGroup, data: bytes) -> _Stream | None:
        """Read and dispatch; the stream to answer in this task, or None when the connection ends."""
        while True:
            if data:
                try:
                    events = self._conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    await self._flush(reader=True)  # h2 queued a GOAWAY saying why
                    return None
                for event in events:
                    if not self._on_event(event, tg):
                        await self._flush(reader=True)
                        return None
                await self._flush(reader=True)
                if self._complete and not self._dead:
                    # Every stream but the last gets a task; the last is answered here.
                    *others, last = self._complete
                    self._complete.clear()
                    for other in others:
                        tg.start_soon(self._run_stream, other)
                    return last
            if self._dead:
                return None
            if self._lifecycle.shutting_down.is_set():
                if not self.busy:
                    await self._final_goaway()
                    return None
            with anyio.CancelScope() as scope:
                self._recv_scope = scope
                if not self.busy:
                    scope.deadline = anyio.current_time() + self._limits.header_timeout
                else:
                    scope.deadline = anyio.current_time() + self._watch.period
                try:
                    data = await self._stream.receive(READ_SIZE)
                except _IO_ERRORS:
                    data = b""
            self._recv_scope = None
            if scope.cancelled_caught:
                if self._dead:
                    return None
                if self._lifecycle.shutting_down.is_set():
                    continue  # loop back: leave (with GOAWAY) once idle
                if not self.busy:
                    await self._final_goaway()  # idle past the header timeout
                    return None
                if self._watch.check():
                    self._connection_lost()  # the client stopped reading
                    return None
                data = b""
                continue
            if not data:
                return None  # EOF

    async def _final_goaway(self) -> None:
        """GOAWAY naming the last stream processed; sent only once no stream is running.

        An early GOAWAY (RFC 9113 §6.8 graceful shutdown) would be the textbook way to stop new
        streams, but clients built on the h2 library close their connection state on receiving
        one and fail the streams still running; new streams during shutdown get 529 instead.
        """
        if self._dead:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR)
        with contextlib.suppress(_StreamGone):
            await self._flush()

    def _on_event(self, event: h2.events.Event, tg: anyio.abc.TaskGroup) -> bool:
        if isinstance(event, h2.events.RequestReceived):
            headers = [(bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1")) for k, v in event.headers or ()]
            stream = _Stream(stream_id=event.stream_id or 0, headers=headers)
            self._streams[stream.stream_id] = stream
            length = _content_length(headers)
            if length is not None and length > self._limits.max_body:
                self._reject(stream, tg)
            elif event.stream_ended is not None:
                stream.ended = True
                self._start(stream)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            self._conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
            receiving = self._streams.get(stream_id)
            if receiving is None or receiving.rejected:
                return True
            receiving.body += event.data or b""
            if len(receiving.body) > self._limits.max_body:
                receiving.body = bytearray()
                self._reject(receiving, tg)
            elif event.stream_ended is not None:
                receiving.ended = True
                self._start(receiving)
        elif isinstance(event, h2.events.StreamEnded):
            ending = self._streams.get(event.stream_id or 0)
            if ending is not None and not ending.ended:
                ending.ended = True
                if not ending.rejected:
                    self._start(ending)
        elif isinstance(event, h2.events.StreamReset):
            reset = self._streams.get(event.stream_id or 0)
            if reset is not None:
                self._close(reset)
        elif isinstance(event, h2.events.WindowUpdated):
            targets = self._streams.values() if not event.stream_id else [self._streams.get(event.stream_id)]
            for target in list(targets):
                if target is not None:
                    self._wake(target)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for target in list(self._streams.values()):
                self._wake(target)
        elif isinstance(event, h2.events.ConnectionTerminated):
            return False
        return True

    def _wake(self, stream: _Stream) -> None:
        stream.window.set()
        stream.window = anyio.Event()

    def _close(self, stream: _Stream) -> None:
        stream.closed = True
        if stream.scope is not None:
            stream.scope.cancel()
        self._wake(stream)

    def _start(self, stream: _Stream) -> None:
        self._running += 1
        self._complete.append(stream)  # started by the reader once the whole batch is handled

    def _reject(self, stream: _Stream, tg: anyio.abc.TaskGroup) -> None:
        stream.rejected = True
        self._running += 1
        tg.start_soon(self._send_413, stream)

    async def _send_413(self, stream: _Stream) -> None:
        try:
            status, headers, body = error_response(
                413, f"Request body exceeds the limit of {self._limits.max_body} bytes.", ErrorKind.REQUEST_TOO_LARGE
            )
            with contextlib.suppress(_StreamGone):
                await _H2Responder(self, stream).send_response(status, headers, body)
            self._finish(stream)
        finally:
            self._stream_done(flush=True)

    async def _run_stream(self, stream: _Stream) -> None:
        pseudo = {k: v for k, v in stream.headers if k.startswith(":")}
        headers = [(k, v) for k, v in stream.headers if not k.startswith(":")]
        if ":authority" in pseudo and not any(k == "host" for k, _ in headers):
            headers.insert(0, ("host", pseudo[":authority"]))
        request = Request(
            method=pseudo.get(":method", "GET"),
            target=pseudo.get(":path", "/"),
            headers=tuple(headers),
            body=bytes(stream.body),
            http_version="2",
            client=self._client,
        )
        stream.body = bytearray()
        responder = _H2Responder(self, stream)
        failed = False
        # Whether frames may still be queued when the task ends (a reset): then a flush follows.
        unflushed = True
        try:
            with anyio.CancelScope() as scope:
                stream.scope = scope
                if stream.closed:
                    scope.cancel()
                try:
                    await self._handler(request, responder)
                except _StreamGone:
                    pass
                except Exception:
                    log.exception("request handler failed")
                    failed = True
            stream.scope = None
            if not stream.closed:
                if responder.state == "idle":
                    status, hdrs, body = error_response(500, "The request handler returned no response.", ErrorKind.API)
                    with contextlib.suppress(_StreamGone):
                        await responder.send_response(status, hdrs, body)
                elif failed or responder.state != "done":
                    self._reset(stream, h2.errors.ErrorCodes.INTERNAL_ERROR)
                else:
                    # A complete answer: its last write flushed everything, END_STREAM included.
                    unflushed = not stream.ended
            self._finish(stream)
        finally:
            self._stream_done(flush=unflushed)

    def _finish(self, stream: _Stream) -> None:
        if not stream.closed and not stream.ended:
            # We answered before the client finished its body (413): tell it to stop sending.
            self._reset(stream, h2.errors.ErrorCodes.NO_ERROR)
        stream.closed = True
        self._streams.pop(stream.stream_id, None)

    def _reset(self, stream: _Stream, code: h2.errors.ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._conn.reset_stream(stream.stream_id, error_code=code)
        stream.closed = True

    def _stream_done(self, *, flush: bool) -> None:
        self._running -= 1
        if flush and self._tg is not None:
            self._tg.start_soon(self._flush_quietly)
        if self._running == 0 and self._recv_scope is not None and self._lifecycle.shutting_down.is_set():
            self._recv_scope.cancel()

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(_StreamGone):
            await self._flush()

    async def _flush(self, *, watched: bool = False, reader: bool = False) -> None:
        """Send what h2 has queued.

        ``watched``: a stream task's write, timed by the read loop (``WriteWatch``); other writes
        have their own deadline. ``reader``: the read loop's, which never waits for another task's
        write (it must stay free to notice a stalled one): whoever holds the lock sends everything
        queued before letting go, the read loop's bytes included.
        """
        if reader and self._write_lock.locked():
            return
        failed = False
        async with self._write_lock:
            while not self._dead:
                data = self._conn.data_to_send()
                if not data:
                    break
                try:
                    await self._watch.send(self._stream, data, watched=watched)
                except (TimeoutError, *_IO_ERRORS):
                    self._connection_lost()
                    failed = True
        if failed:
            # Inside a stream's handler this is a cancellation, as for a disconnect.
            await anyio.lowlevel.checkpoint()
            raise _StreamGone

    def _connection_lost(self) -> None:
        self._dead = True
        for stream in list(self._streams.values()):
            self._close(stream)
        if self._recv_scope is not None:
            self._recv_scope.cancel()


class _H2Responder:
    def __init__(self, pump: H2Pump, stream: _Stream) -> None:
        self._pump = pump
        self._stream = stream
        self.state = "idle"

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
        out = [(b":status", str(status).encode("ascii"))]
        for name, value in headers:
            lname = name.lower()
            if lname not in _HOP_BY_HOP:
                out.append((lname.encode("latin-1"), value.encode("latin-1")))
        return out

    async def _gone(self) -> None:
        # Reset by the client or the connection died: behave as a disconnect would.
        if self._stream.scope is not None:
            self._stream.scope.cancel()
        await anyio.lowlevel.checkpoint()
        raise _StreamGone

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self._check("idle")
        self.state = "done"
        await self._send_headers(status, with_content_length(headers, body), end_stream=not body)
        if body:
            await self._send_data(body)
            await self._end()

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        self._check("idle")
        self.state = "streaming"
        kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
        # With a body, HEADERS and the first DATA leave in the same flush.
        await self._send_headers(status, kept, end_stream=False, flush=not body)
        if body:
            await self._send_data(body)

    async def send_chunk(self, data: bytes) -> None:
        self._check("streaming")
        if data:
            await self._send_data(data)

    async def end_stream(self) -> None:
        self._check("streaming")
        self.state = "done"
        await self._end()

    async def _send_headers(
        self, status: int, headers: list[tuple[str, str]], *, end_stream: bool, flush: bool = True
    ) -> None:
        if self._stream.closed:
            await self._gone()
        try:
            self._pump._conn.send_headers(self._stream.stream_id, self._head(status, headers), end_stream=end_stream)
        except h2.exceptions.StreamClosedError:
            await self._gone()
        if flush:
            await self._pump._flush(watched=True)

    async def _end(self) -> None:
        if self._stream.closed:
            await self._gone()
        try:
            self._pump._conn.end_stream(self._stream.stream_id)
        except h2.exceptions.StreamClosedError:
            await self._gone()
        await self._pump._flush(watched=True)

    async def _send_data(self, data: bytes) -> None:
        conn = self._pump._conn
        stream_id = self._stream.stream_id
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
                await self._pump._flush(watched=True)  # what is queued (the head) goes out while we wait
                await self._stream.window.wait()
                continue
            # The usual case, the whole chunk in one frame, is sent as it is: no copy.
            conn.send_data(stream_id, data if size == len(data) else bytes(view[:size]))
            view = view[size:]
            await self._pump._flush(watched=True)

    def _check(self, expected: str) -> None:
        if self.state != expected:
            raise RuntimeError(f"response is {self.state}, expected {expected}")


def _content_length(headers: Sequence[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
