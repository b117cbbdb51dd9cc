"""HTTP/1.1 through h11: one pump per connection, requests served one after another.

The pump moves bytes: it hands the shared handler each request head, reads the body when the
handler asks (the pump is the ``RequestBody``), and writes what the handler answers. What to
answer is the handler's (through the core's front door) and the core's.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import h11

from adapters.runtime.aio import AioStream
from adapters.runtime.answers import ResponseProgress, reason_phrase, stream_headers, with_content_length
from kiro_protocol import BodyProblem, Reply, RequestHead, internal_error, malformed_request, no_response

from ._common import IO_ERRORS, READ_SIZE, ConnectionLimits, WriteWatch
from adapters.runtime.app import Handler, Lifecycle, log_rejection

__all__ = ["H11Pump"]

log = logging.getLogger("kiro2api.server")

#: The largest request head (request line and headers), in bytes; beyond it 431.
MAX_HEAD = 64 * 1024


class _ClientGone(Exception):
    pass


class H11Pump:
    """Serve HTTP/1.1 requests on ``stream`` until the client leaves, a limit fires or shutdown."""

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
        self.limit = limits.max_body
        self._lifecycle = lifecycle
        self._client = client
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if initial:
            self._conn.receive_data(initial)
        # One scope for the connection's whole life, not one per request: it bounds the wait
        # for a request head (its deadline is set only then), and cancelling it ends an idle
        # connection at shutdown, or the handler of a client that left (the connection ends
        # either way). Three scopes per request were 5 % of a small stream's CPU.
        self._scope = anyio.CancelScope()
        # Waiting for a request head (shutdown may end the connection now).
        self._idle = False
        # A handler is running (its writes are timed by the peer watch).
        self._in_handler = False
        # Writes made while a handler runs are timed by the peer watch (see WriteWatch).
        self._watch = WriteWatch(limits.write_timeout)
        self._gone = False
        # Whether a body left unread after the answer can be read and dropped to keep the
        # connection (false once it is known to be too long, late or broken).
        self._drainable = True
        # An answer written by the pump itself ends the connection.
        self._closing = False
        # When the bytes of the current request head began to arrive (for the access log).
        self._head_started = time.monotonic()

    def on_shutdown(self) -> None:
        """Close the connection now if it is idle; a busy one closes after its response."""
        if self._idle:
            self._scope.cancel()

    async def run(self) -> None:
        try:
            with self._scope:
                await self._run()
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._stream.aclose()

    async def _run(self) -> None:
        try:
            while not self._gone:
                head = await self._read_head()
                if head is None or not await self._serve(head):
                    return
                if self._conn.our_state is not h11.DONE or self._conn.their_state is not h11.DONE:
                    return
                if self._lifecycle.shutting_down.is_set():
                    return
                self._conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            # Bytes that never made a request head (a bad request line or Content-Length,
            # headers over the limit): no handler saw them, so the access line is written here.
            reply = malformed_request(exc.error_status_hint, str(exc))
            log_rejection(reply, client=self._client, started=self._head_started)
            with contextlib.suppress(Exception, _ClientGone):
                await self._send_reply(reply)
        except _ClientGone:
            pass

    async def _read_head(self) -> h11.Request | None:
        """The next request head; None when the client closed first. Past the header timeout,
        or at shutdown while waiting, the connection's scope is cancelled (it ends)."""
        if self._lifecycle.shutting_down.is_set():
            return None
        scope = self._scope
        scope.deadline = anyio.current_time() + self._limits.header_timeout
        self._idle = True
        try:
            self._head_started = time.monotonic()
            received = len(self._conn.trailing_data[0])  # pipelined bytes already here
            while (event := self._conn.next_event()) is h11.NEED_DATA:
                try:
                    data = await self._stream.receive(READ_SIZE)
                except IO_ERRORS:
                    data = b""
                if not received:
                    self._head_started = time.monotonic()  # idle until the first byte of the head
                received += len(data)
                self._conn.receive_data(data)
        finally:
            self._idle = False
            scope.deadline = math.inf
        # h11 limits only a head still incomplete; one that arrived whole in a read is measured here.
        if isinstance(event, h11.Request) and received - len(self._conn.trailing_data[0]) > MAX_HEAD:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event if isinstance(event, h11.Request) else None

    async def _serve(self, event: h11.Request) -> bool:
        """Run the handler for one request; whether the connection may serve another."""
        head = RequestHead(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("latin-1"),
            headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers),
            http_version=event.http_version.decode("ascii", "replace"),
            client=self._client,
        )
        declared = head.declared_length
        self._drainable = (
            (declared is None or declared <= self.limit)
            and not self._conn.they_are_waiting_for_100_continue
            and not head.ambiguous_framing  # where its body ends is unknown (the core answers 400)
        )
        responder = _H11Responder(self)
        failed = False
        # The protocol itself reports the client leaving, and a timer checks for a stalled write:
        # no watcher task to start and cancel for every request.
        stop = self._stream.watch_peer(self._disconnected, period=self._watch.period, stalled=self._watch.check)
        self._in_handler = True
        try:
            await self._handler(head, self, responder)
        except _ClientGone:
            self._gone = True
        except Exception:
            log.exception("request handler failed")
            failed = True
        finally:
            self._in_handler = False
            stop()
        if self._gone:
            return False
        if responder.state == "idle":
            await self._send_reply(internal_error() if failed else no_response())
            return False
        if failed or responder.state != "done":
            return False  # a broken stream: closing tells the client the body is incomplete
        return await self._finish_body()

    # -- the request body (the pump is the handler's RequestBody) ---------------------------------

    async def read(self) -> bytes | BodyProblem:
        if self._conn.they_are_waiting_for_100_continue:
            await self._write(self._conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        return await self._take_body(keep=True)

    async def _take_body(self, *, keep: bool) -> bytes | BodyProblem:
        body = bytearray()
        taken = 0
        try:
            while True:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    # Only a read that waits is timed: a body that came with its head needs no timer.
                    try:
                        data = await self._stream.receive_within(READ_SIZE, self._limits.read_timeout)
                    except IO_ERRORS:
                        data = b""
                    if data is None:
                        self._drainable = False
                        return BodyProblem.TIMED_OUT
                    self._conn.receive_data(data)
                elif isinstance(event, h11.Data):
                    taken += len(event.data)
                    if taken > self.limit:
                        self._drainable = False
                        return BodyProblem.TOO_LARGE
                    if keep:
                        body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return bytes(body)
                else:  # ConnectionClosed mid-body
                    self._drainable = False
                    return BodyProblem.CLIENT_GONE
        except h11.RemoteProtocolError:
            self._drainable = False
            return BodyProblem.MALFORMED

    async def _finish_body(self) -> bool:
        """After an answer given with the body unread: drop the body and go on if it is short,
        else keep discarding a moment and close. Closing a socket with unread input makes the
        kernel send RST, and many clients then lose the answer while still uploading."""
        if self._conn.their_state is not h11.SEND_BODY:
            return True
        if self._drainable and not isinstance(await self._take_body(keep=False), BodyProblem):
            return True
        with contextlib.suppress(*IO_ERRORS):
            await self._stream.send_eof()
        with anyio.move_on_after(self._limits.discard_timeout), contextlib.suppress(*IO_ERRORS):
            while await self._stream.receive(READ_SIZE):
                pass
        return False

    # -- writing -------------------------------------------------------------------------------

    def _disconnected(self) -> None:
        self._gone = True
        if self._in_handler:
            self._scope.cancel()  # the handler ends, and the connection with it

    async def _write(self, data: bytes | None) -> None:
        if not data:
            return
        try:
            # While a handler runs, its peer watch checks the write watch.
            await self._watch.send(self._stream, data, watched=self._in_handler)
        except (TimeoutError, *IO_ERRORS):
            # Inside the handler this cancels it (as a disconnect does); elsewhere it unwinds the pump.
            self._disconnected()
            await anyio.lowlevel.checkpoint()
            raise _ClientGone from None

    def _response(self, status: int, headers: Sequence[tuple[str, str]]) -> h11.Response:
        pairs = list(headers)
        unread = self._conn.their_state is h11.SEND_BODY and not self._drainable
        closing = unread or self._closing or self._lifecycle.shutting_down.is_set()
        if closing and not any(k.lower() == "connection" for k, _ in pairs):
            pairs.append(("connection", "close"))
        return h11.Response(status_code=status, headers=pairs, reason=reason_phrase(status))

    async def _send_reply(self, reply: Reply) -> None:
        """Write one of the core's answers outside the handler, when nothing was sent yet."""
        if self._conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        self._closing = True
        with contextlib.suppress(_ClientGone):
            await _H11Responder(self).send_response(reply.status, reply.headers, reply.body)


class _H11Responder(ResponseProgress):
    __slots__ = ("_pump",)

    def __init__(self, pump: H11Pump) -> None:
        super().__init__()
        self._pump = pump

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.advance("idle", "done")
        conn = self._pump._conn
        data = conn.send(self._pump._response(status, with_content_length(headers, body))) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self._pump._write(data)

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        self.advance("idle", "done" if end else "streaming")
        conn = self._pump._conn
        data = conn.send(self._pump._response(status, stream_headers(headers))) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        if end:
            data += conn.send(h11.EndOfMessage()) or b""
        await self._pump._write(data)

    async def send_chunk(self, data: bytes) -> None:
        self.advance("streaming", "streaming")
        if data:
            await self._pump._write(self._pump._conn.send(h11.Data(data=data)))

    async def end_stream(self, data: bytes = b"") -> None:
        self.advance("streaming", "done")
        conn = self._pump._conn
        last = (conn.send(h11.Data(data=data)) or b"") if data else b""
        await self._pump._write(last + (conn.send(h11.EndOfMessage()) or b""))
