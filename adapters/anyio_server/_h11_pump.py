"""HTTP/1.1 through h11: one pump per connection, requests served one after another."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import anyio
import anyio.abc
import anyio.lowlevel
import h11

from adapters.runtime.aio import AioStream
from kiro_protocol import ErrorKind

from ._common import READ_SIZE, ConnectionLimits, error_response, reason_phrase, with_content_length, WriteWatch
from ._handler import Handler, Lifecycle, Request

__all__ = ["H11Pump"]

log = logging.getLogger("kiro2api.server")

_IO_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)
# Pipelined bytes we accept while a request is being served; more means the watcher stops reading.
_MAX_PIPELINED = 65536


class _ClientGone(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class H11Pump:
    """Serve HTTP/1.1 requests on ``stream`` until the client leaves, a limit fires or shutdown."""

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
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        if initial:
            self._conn.receive_data(initial)
        self._idle_scope: anyio.CancelScope | None = None
        self._handler_scope: anyio.CancelScope | None = None
        # Writes made while a handler runs are timed by the disconnect watcher (see WriteWatch).
        self._watch = WriteWatch(limits.write_timeout)
        self._gone = False
        self.busy = False

    def on_shutdown(self) -> None:
        """Close the connection now if it is idle; a busy one closes after its response."""
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def run(self) -> None:
        try:
            while not self._gone:
                request = await self._read_head()
                if request is None:
                    return
                if not await self._serve(request):
                    return
                if self._conn.our_state is not h11.DONE or self._conn.their_state is not h11.DONE:
                    return
                if self._lifecycle.shutting_down.is_set():
                    return
                self._conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception, _ClientGone):
                    await self._send_error(exc.error_status_hint, f"Malformed HTTP request: {exc}")
        except _ClientGone:
            pass
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._stream.aclose()

    async def _receive(self) -> None:
        try:
            data = await self._stream.receive(READ_SIZE)
        except _IO_ERRORS:
            data = b""
        self._conn.receive_data(data)

    async def _receive_within(self, timeout: float) -> None:
        """Like ``_receive``; raises ``TimeoutError`` if nothing came within ``timeout`` seconds."""
        if isinstance(self._stream, AioStream):
            try:
                data = await self._stream.receive_within(READ_SIZE, timeout)
            except _IO_ERRORS:
                data = b""
            if data is None:
                raise TimeoutError
            self._conn.receive_data(data)
            return
        with anyio.fail_after(timeout):
            await self._receive()

    async def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive()

    async def _read_head(self) -> h11.Request | None:
        with anyio.CancelScope() as scope:
            self._idle_scope = scope
            if self._lifecycle.shutting_down.is_set():
                scope.cancel()
            scope.deadline = anyio.current_time() + self._limits.header_timeout
            event = await self._next_event()
        self._idle_scope = None
        if scope.cancelled_caught:
            return None
        return event if isinstance(event, h11.Request) else None

    async def _read_body(self, head: h11.Request) -> bytes:
        declared = _content_length(head.headers)
        if declared is not None and declared > self._limits.max_body:
            raise _BodyTooLarge
        if self._conn.they_are_waiting_for_100_continue:
            await self._write(self._conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                # Only a read that waits is timed: a body that came with its head needs no timer.
                await self._receive_within(self._limits.read_timeout)
                continue
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._limits.max_body:
                    raise _BodyTooLarge
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:  # ConnectionClosed mid-body
                raise _ClientGone

    async def _serve(self, head: h11.Request) -> bool:
        try:
            body = await self._read_body(head)
        except _BodyTooLarge:
            await self._send_error(413, f"Request body exceeds the limit of {self._limits.max_body} bytes.")
            await self._discard_rest()
            return False
        except TimeoutError:
            await self._send_error(408, "Timed out reading the request body.")
            return False
        request = Request(
            method=head.method.decode("ascii", "replace"),
            target=head.target.decode("latin-1"),
            headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers),
            body=body,
            http_version=head.http_version.decode("ascii", "replace"),
            client=self._client,
        )
        self.busy = True
        try:
            return await self._run_handler(request)
        finally:
            self.busy = False

    async def _run_handler(self, request: Request) -> bool:
        responder = _H11Responder(self)
        if isinstance(self._stream, AioStream):
            # The protocol itself reports the client leaving, and a timer checks for a stalled
            # write: no watcher task to start and cancel for every request.
            stop = self._stream.watch_peer(self._disconnected, period=self._watch.period, stalled=self._watch.check)
            try:
                failed = await self._call_handler(request, responder)
            finally:
                stop()
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_disconnect)
                failed = await self._call_handler(request, responder)
                tg.cancel_scope.cancel()
        if self._gone:
            return False
        if responder.state == "idle":
            await self._send_error(500, "The request handler returned no response.")
            return False
        if failed or responder.state != "done":
            return False  # a broken stream: closing tells the client the body is incomplete
        return True

    async def _call_handler(self, request: Request, responder: _H11Responder) -> bool:
        """Run the handler in a scope the client's departure cancels; whether it failed."""
        failed = False
        with anyio.CancelScope() as scope:
            self._handler_scope = scope
            try:
                await self._handler(request, responder)
            except _ClientGone:
                self._gone = True
            except Exception:
                log.exception("request handler failed")
                failed = True
        self._handler_scope = None
        return failed

    async def _watch_disconnect(self) -> None:
        # The client sends nothing while we answer; EOF (or an error) then means it went away.
        # Every WriteWatch period it also looks for a write that the client blocks.
        reading = True
        while True:
            with anyio.move_on_after(self._watch.period):
                if not reading:
                    await anyio.sleep_forever()
                try:
                    data = await self._stream.receive(READ_SIZE)
                except _IO_ERRORS:
                    data = b""
                if not data:
                    self._disconnected()
                    return
                self._conn.receive_data(data)
                # Too much pipelined input: stop reading (the kernel then pushes back).
                reading = len(self._conn.trailing_data[0]) <= _MAX_PIPELINED
                continue
            if self._watch.check():
                self._disconnected()  # it stopped reading: cancels the handler and its write
                return

    def _disconnected(self) -> None:
        self._gone = True
        if self._handler_scope is not None:
            self._handler_scope.cancel()

    async def _write(self, data: bytes | None) -> None:
        if not data:
            return
        try:
            # While a handler runs, its disconnect watcher checks the watch.
            await self._watch.send(self._stream, data, watched=self._handler_scope is not None)
        except (TimeoutError, *_IO_ERRORS):
            # Inside the handler this cancels it (as a disconnect does); elsewhere it unwinds the pump.
            self._disconnected()
            await anyio.lowlevel.checkpoint()
            raise _ClientGone from None

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> h11.Response:
        pairs = [(k, v) for k, v in headers]
        if self._lifecycle.shutting_down.is_set():
            pairs.append(("connection", "close"))
        return h11.Response(status_code=status, headers=pairs, reason=reason_phrase(status))

    async def _send_error(self, status: int, message: str) -> None:
        kind = {408: ErrorKind.INVALID_REQUEST, 413: ErrorKind.REQUEST_TOO_LARGE}.get(status, ErrorKind.API)
        if 400 <= status < 500 and status not in (408, 413):
            kind = ErrorKind.INVALID_REQUEST
        status, headers, body = error_response(status, message, kind)
        headers.append(("connection", "close"))
        if self._conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        data = self._conn.send(h11.Response(status_code=status, headers=headers, reason=reason_phrase(status)))
        data = (data or b"") + (self._conn.send(h11.Data(data=body)) or b"") + (self._conn.send(h11.EndOfMessage()) or b"")
        with contextlib.suppress(_ClientGone):
            await self._write(data)

    async def _discard_rest(self) -> None:
        # Closing a socket with unread input makes the kernel send RST, and many clients then lose
        # our 413 while still uploading. Read and drop (never buffer) for a short while first.
        with contextlib.suppress(*_IO_ERRORS):
            await self._stream.send_eof()
        with anyio.move_on_after(self._limits.discard_timeout), contextlib.suppress(*_IO_ERRORS):
            while await self._stream.receive(READ_SIZE):
                pass


class _H11Responder:
    def __init__(self, pump: H11Pump) -> None:
        self._pump = pump
        self.state = "idle"

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self._check("idle")
        conn = self._pump._conn
        data = conn.send(self._pump._head(status, with_content_length(headers, body))) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        self.state = "done"
        await self._pump._write(data)

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        self._check("idle")
        pairs = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
        self.state = "streaming"
        conn = self._pump._conn
        data = conn.send(self._pump._head(status, pairs)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        await self._pump._write(data)

    async def send_chunk(self, data: bytes) -> None:
        self._check("streaming")
        if data:
            await self._pump._write(self._pump._conn.send(h11.Data(data=data)))

    async def end_stream(self) -> None:
        self._check("streaming")
        self.state = "done"
        await self._pump._write(self._pump._conn.send(h11.EndOfMessage()))

    def _check(self, expected: str) -> None:
        if self.state != expected:
            raise RuntimeError(f"response is {self.state}, expected {expected}")


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None

