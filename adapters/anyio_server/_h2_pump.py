"""HTTP/2 through h2: one reader per connection, one task per stream, flow control respected.

A stream's task starts as soon as its head has arrived, so the shared handler decides on the head
(through the core's front door) while the body is still coming; the reader keeps filling the
body (``H2Stream``) that the handler then reads.
"""

from __future__ import annotations

import contextlib
import logging

import anyio
import anyio.abc
import anyio.lowlevel
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from adapters.runtime.aio import AioStream
from kiro_protocol import internal_error, no_response

from ._common import IO_ERRORS, READ_SIZE, ConnectionLimits, WriteWatch
from ._h2_stream import H2Responder, H2Stream, StreamGone, WriteLock
from adapters.runtime.app import Handler, Lifecycle

__all__ = ["H2Pump", "H2_PREFACE"]

log = logging.getLogger("kiro2api.server")

#: What an HTTP/2 client sends first (RFC 9113 §3.4); seeing it on a cleartext connection
#: means "prior knowledge" h2c.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_STREAM_WINDOW = 1 << 20
_CONNECTION_WINDOW = 16 << 20


class H2Pump:
    """Serve HTTP/2 streams on ``stream``; ``initial`` holds bytes already read (the preface)."""

    def __init__(
        self,
        stream: AioStream,
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
        self._streams: dict[int, H2Stream] = {}
        # Requests complete in the batch of frames being handled (see _read).
        self._complete: list[H2Stream] = []
        self._running = 0
        self._write_lock = WriteLock()
        # Flushes by the streams' tasks are timed by the read loop (see WriteWatch).
        self._watch = WriteWatch(limits.write_timeout)
        self._recv_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._dead = False

    def on_shutdown(self) -> None:
        """Close now if idle; otherwise GOAWAY and close once the running streams are done."""
        if self._recv_scope is not None and not self._running:
            self._recv_scope.cancel()

    async def run(self) -> None:
        try:
            self._conn.initiate_connection()
            codes = h2.settings.SettingCodes
            self._conn.update_settings({codes.MAX_CONCURRENT_STREAMS: 128, codes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW})
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
        with contextlib.suppress(StreamGone):
            stream = await self._read_loop(tg, data)
        if stream is None:
            tg.cancel_scope.cancel()  # the connection is over: every stream with it
            return
        tg.start_soon(self._read, tg, b"")
        await self._run_stream(stream)

    async def _read_loop(self, tg: anyio.abc.TaskGroup, data: bytes) -> H2Stream | None:
        """Read and dispatch; the stream to answer in this task, or None when the connection ends."""
        while True:
            if data:
                try:
                    events = self._conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    await self._flush(reader=True)  # h2 queued a GOAWAY saying why
                    return None
                for event in events:
                    if not self._on_event(event):
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
                if not self._running:
                    await self._final_goaway()
                    return None
            with anyio.CancelScope() as scope:
                self._recv_scope = scope
                wait = self._watch.period if self._running else self._limits.header_timeout
                scope.deadline = anyio.current_time() + wait
                try:
                    data = await self._stream.receive(READ_SIZE)
                except IO_ERRORS:
                    data = b""
            self._recv_scope = None
            if scope.cancelled_caught:
                if self._dead:
                    return None
                if self._lifecycle.shutting_down.is_set():
                    continue  # loop back: leave (with GOAWAY) once idle
                if not self._running:
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
        with contextlib.suppress(StreamGone):
            await self._flush()

    def _on_event(self, event: h2.events.Event) -> bool:
        if isinstance(event, h2.events.RequestReceived):
            headers = [(bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1")) for k, v in event.headers or ()]
            stream = H2Stream(stream_id=event.stream_id or 0, headers=headers, limit=self._limits.max_body)
            stream.ended = event.stream_ended is not None
            self._streams[stream.stream_id] = stream
            self._running += 1
            self._complete.append(stream)  # started by the reader once the whole batch is handled
        elif isinstance(event, h2.events.DataReceived):
            self._conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
            receiving = self._streams.get(event.stream_id or 0)
            if receiving is not None:
                receiving.receive(event.data or b"", end=event.stream_ended is not None)
        elif isinstance(event, h2.events.StreamEnded):
            ending = self._streams.get(event.stream_id or 0)
            if ending is not None:
                ending.receive(b"", end=True)
        elif isinstance(event, h2.events.StreamReset):
            reset = self._streams.get(event.stream_id or 0)
            if reset is not None:
                reset.close()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            stream_id = getattr(event, "stream_id", 0)
            for target in list(self._streams.values()) if not stream_id else [self._streams.get(stream_id)]:
                if target is not None:
                    target.wake()
        elif isinstance(event, h2.events.ConnectionTerminated):
            return False
        return True

    async def _run_stream(self, stream: H2Stream) -> None:
        head = stream.head(self._client)
        responder = H2Responder(self._conn, stream, self._flush_watched)
        failed = False
        # Whether frames may still be queued when the task ends (a reset): then a flush follows.
        unflushed = True
        try:
            with anyio.CancelScope() as scope:
                stream.scope = scope
                if stream.closed:
                    scope.cancel()
                try:
                    await self._handler(head, stream, responder)
                except StreamGone:
                    pass
                except Exception:
                    log.exception("request handler failed")
                    failed = True
            stream.scope = None
            if not stream.closed:
                if responder.state == "idle":
                    reply = internal_error() if failed else no_response()
                    with contextlib.suppress(StreamGone):
                        await responder.send_response(reply.status, reply.headers, reply.body)
                elif failed or responder.state != "done":
                    self._reset(stream, h2.errors.ErrorCodes.INTERNAL_ERROR)
                else:
                    # A complete answer: its last write flushed everything, END_STREAM included.
                    unflushed = not stream.ended
            self._finish(stream)
        finally:
            self._stream_done(flush=unflushed)

    def _finish(self, stream: H2Stream) -> None:
        if not stream.closed and not stream.ended:
            # Answered before the client finished its body (a 413, a 401...): tell it to stop sending.
            self._reset(stream, h2.errors.ErrorCodes.NO_ERROR)
        stream.closed = True
        self._streams.pop(stream.stream_id, None)

    def _reset(self, stream: H2Stream, code: h2.errors.ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._conn.reset_stream(stream.stream_id, error_code=code)
        stream.closed = True

    def _stream_done(self, *, flush: bool) -> None:
        self._running -= 1
        if flush and self._tg is not None:
            self._tg.start_soon(self._flush_quietly)
        if self._running == 0 and self._recv_scope is not None and self._lifecycle.shutting_down.is_set():
            self._recv_scope.cancel()

    async def _flush_watched(self) -> None:
        await self._flush(watched=True)

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(StreamGone):
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
                except (TimeoutError, *IO_ERRORS):
                    self._connection_lost()
                    failed = True
        if failed:
            # Inside a stream's handler this is a cancellation, as for a disconnect.
            await anyio.lowlevel.checkpoint()
            raise StreamGone

    def _connection_lost(self) -> None:
        self._dead = True
        for stream in list(self._streams.values()):
            stream.close()
        if self._recv_scope is not None:
            self._recv_scope.cancel()
