"""The client side of HTTP/1.1 for upstream calls: a request's bytes, and its answer read back.

The gateway sends one request at a time on a connection and reads its answer: a status line,
headers, and a body framed by ``Transfer-Encoding: chunked`` (Kiro's streams, one chunk per
EventStream frame), ``Content-Length`` (small answers), or the end of the connection. The reader
hands out the body in pieces as large as the bytes at hand allow: fifty frames that arrived in
one read leave as one piece, not fifty (a general parser's event per chunk was an eighth of the
gateway's CPU on a streamed answer, docs/performance.md).

Everything read here comes from the network: every malformed input raises
``UpstreamHttpError`` (a fault of the peer), never anything else, and nothing grows without
bound (the head and a chunk's size line are limited).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from .._util import NEED_DATA, NeedData

__all__ = [
    "encode_request",
    "HttpAnswerReader",
    "may_send_again",
    "ResponseEnd",
    "ResponseHead",
    "UpstreamHttpError",
]

#: The most bytes of a response head (status line and headers) accepted.
MAX_HEAD: Final = 64 * 1024
# A chunk's size line: sixteen hex digits and some extension are plenty.
_MAX_SIZE_LINE = 4096
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class UpstreamHttpError(ValueError):
    """The upstream's answer broke HTTP/1.1 framing (a remote fault)."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """An answer's status and headers (names lower-cased, values as sent)."""

    status: int
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ResponseEnd:
    """The answer is complete; ``reusable``: the connection may carry another request."""

    reusable: bool


def may_send_again(*, reused_connection: bool, answer_started: bool) -> bool:
    """Whether a request whose connection broke may go once more, on a new connection.

    Only when the connection was reused (it had served an answer and waited idle) and not one
    byte of an answer came: the server closed it while idle, just as the request went out (the
    race no poll before the write can close), so the request almost surely never reached it
    (RFC 9112 §9.3.1). A generate call is not idempotent, but sent twice it only costs a second
    answer, never a wrong one; failing it would cost the client the call. A new connection that
    breaks is the call's failure (the caller's failure classification takes it from there).
    """
    return reused_connection and not answer_started


def encode_request(method: str, target: str, headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
                   body: bytes) -> bytes:
    """A request's bytes: head and body together, sent in one write.

    The headers are sent as given (the caller includes ``Host`` and ``Content-Length``). A
    name or value that could end the line early is refused: no header of the core's may split
    the request (header injection).
    """
    lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii")]
    for name, value in headers:
        raw_name = name.encode("latin-1")
        raw_value = value.encode("latin-1")
        if _TOKEN.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
            raise ValueError(f"header {name!r} cannot be sent: a control character in its name or value")
        lines.append(raw_name + b": " + raw_value + b"\r\n")
    lines.append(b"\r\n")
    if body:
        lines.append(body)
    return b"".join(lines)


class _Framing(Enum):
    IDLE = "idle"
    HEAD = "head"
    CHUNK_SIZE = "chunk size"
    CHUNK_DATA = "chunk data"
    CHUNK_END = "chunk end"
    TRAILERS = "trailers"
    LENGTH = "length"
    UNTIL_CLOSE = "until close"
    #: The body is complete; its ``ResponseEnd`` is the next event.
    COMPLETE = "complete"


_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END = _Framing.CHUNK_SIZE, _Framing.CHUNK_DATA, _Framing.CHUNK_END
_TRAILERS, _COMPLETE = _Framing.TRAILERS, _Framing.COMPLETE
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class HttpAnswerReader:
    """Reads the answers on one client connection, one request at a time.

    Call ``expect(method)`` when a request was sent, ``receive_data`` with what the network
    gave (``b""`` at its end), then ``next_event()`` until it returns ``NEED_DATA``: first a
    ``ResponseHead`` (interim 1xx answers are skipped), then ``bytes`` of the body (everything
    available joined), then one ``ResponseEnd``.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._closed = False
        self._state = _Framing.IDLE
        self._remaining = 0
        self._reusable = True
        self._no_body = False
        # Whether any byte arrived since the request went out (expect()).
        self._started = False
        # Where _trailers() stopped reading.
        self._trailer_end = 0

    def expect(self, method: str) -> None:
        """A request went out: read its answer next (a ``HEAD`` answer has no body).

        Raises:
            RuntimeError: the previous answer was not read to its end, or the connection cannot
                carry another request (the caller's fault: it asks ``idle`` first).
        """
        if not self.idle:
            raise RuntimeError("this connection cannot carry another request now")
        self._state = _Framing.HEAD
        self._no_body = method == "HEAD"
        self._started = False

    @property
    def answer_started(self) -> bool:
        """Whether any byte of an answer arrived since the last ``expect`` (see ``may_send_again``)."""
        return self._started

    @property
    def idle(self) -> bool:
        """No answer is pending and the connection may carry another request."""
        return self._state is _Framing.IDLE and self._reusable and not self._closed and not self._buffer

    def receive_data(self, data: bytes) -> None:
        """Bytes from the network; ``b""``: the peer closed its side."""
        if data:
            if self._closed:
                raise UpstreamHttpError("data after the end of the connection")
            self._buffer += data
            self._started = True
        else:
            self._closed = True

    def next_event(self) -> ResponseHead | bytes | ResponseEnd | NeedData:
        """The next thing the bytes received say (see the class)."""
        state = self._state
        if state is _Framing.HEAD:
            return self._head()
        if state is _Framing.IDLE:
            return NEED_DATA
        if state is _Framing.COMPLETE:
            return self._end()
        if state is _Framing.LENGTH:
            return self._length_body()
        if state is _Framing.UNTIL_CLOSE:
            return self._until_close()
        return self._chunked()

    def _end(self) -> ResponseEnd:
        self._state = _Framing.IDLE
        if self._buffer:  # the peer sent more than the answer: never reuse that connection
            self._reusable = False
        return ResponseEnd(self._reusable and not self._closed)

    def _head(self) -> ResponseHead | ResponseEnd | NeedData:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise UpstreamHttpError(f"the answer's head is longer than {MAX_HEAD} bytes")
                if self._closed:
                    raise UpstreamHttpError("the connection ended before a complete answer head"
                                            if buffer else "the server closed the connection without answering")
                return NEED_DATA
            if end > MAX_HEAD:
                raise UpstreamHttpError(f"the answer's head is longer than {MAX_HEAD} bytes")
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[: end + 4]
            minor, status = _status_line(lines[0])
            headers = tuple(_header(line) for line in lines[1:])
            if 100 <= status < 200:
                if status == 101:
                    raise UpstreamHttpError("the server switched protocols")
                continue  # interim answer (100 Continue, 103 Early Hints): the real one follows
            return self._begin_body(minor, status, headers)

    def _begin_body(self, minor: int, status: int, headers: tuple[tuple[str, str], ...]) -> ResponseHead:
        connection = ",".join(v for k, v in headers if k == "connection").lower()
        tokens = {t.strip() for t in connection.split(",")}
        self._reusable = (minor == 1 and "close" not in tokens) or (minor == 0 and "keep-alive" in tokens)
        codings = [t.strip().lower() for k, v in headers if k == "transfer-encoding" for t in v.split(",") if t.strip()]
        lengths = {v.strip() for k, v in headers if k == "content-length"}
        head = ResponseHead(status, headers)
        if self._no_body or status in (204, 304):
            self._state = _Framing.COMPLETE
            return head
        if codings:
            if codings[-1] != "chunked" or codings.count("chunked") > 1:
                # Not chunked last: the body runs to the end of the connection (RFC 9112 §6.3).
                self._state, self._reusable = _Framing.UNTIL_CLOSE, False
                return head
            if lengths:  # both: the length is ignored, and the connection never reused (§6.1)
                self._reusable = False
            self._state = _Framing.CHUNK_SIZE
            return head
        if lengths:
            if len(lengths) > 1:
                raise UpstreamHttpError("the answer has conflicting Content-Length headers")
            (value,) = lengths
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                raise UpstreamHttpError(f"the answer's Content-Length is not a number: {value[:40]!r}")
            self._remaining = int(value)
            self._state = _Framing.LENGTH
            return head
        self._state, self._reusable = _Framing.UNTIL_CLOSE, False
        return head

    def _length_body(self) -> bytes | ResponseEnd | NeedData:
        if self._remaining == 0:
            return self._end()
        buffer = self._buffer
        if buffer:
            take = min(len(buffer), self._remaining)
            piece = bytes(buffer[:take])
            del buffer[:take]
            self._remaining -= take
            if not self._remaining:
                self._state = _Framing.COMPLETE
            return piece
        if self._closed:
            raise UpstreamHttpError(f"the connection ended {self._remaining} bytes before the end of the answer")
        return NEED_DATA

    def _until_close(self) -> bytes | ResponseEnd | NeedData:
        if self._buffer:
            piece = bytes(self._buffer)
            self._buffer.clear()
            return piece
        if self._closed:
            return self._end()
        return NEED_DATA

    def _chunked(self) -> bytes | ResponseEnd | NeedData:
        # Everything at hand in one piece: the common case is many whole small chunks per read,
        # each taken in one turn of the loop (size line, data, CRLF) with the states in locals.
        buffer = self._buffer
        parts: list[bytes | bytearray] = []
        pos = 0
        state = self._state
        remaining = self._remaining
        size_of = len(buffer)
        chunk_size, chunk_data, chunk_end, complete = _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _COMPLETE
        try:
            while True:
                if state is chunk_size:
                    eol = buffer.find(b"\r\n", pos, pos + _MAX_SIZE_LINE)
                    if eol < 0:
                        if size_of - pos >= _MAX_SIZE_LINE:
                            raise UpstreamHttpError("a chunk's size line is too long")
                        break
                    line = buffer[pos:eol]
                    # Plain hex (int() alone would also take signs, "0x" and underscores).
                    size = int(line if line and len(line) <= 16 and not line.translate(None, _HEX_DIGITS)
                               else _chunk_size_digits(line), 16)
                    start = eol + 2
                    if size == 0:  # the last chunk: trailers follow
                        state = self._trailers(buffer, start, size_of)
                        pos = self._trailer_end
                        break
                    end = start + size
                    if end + 2 <= size_of:  # the whole chunk is here
                        if buffer[end:end + 2] != b"\r\n":
                            raise UpstreamHttpError("a chunk is longer than its size says")
                        parts.append(buffer[start:end])
                        pos = end + 2
                        continue
                    pos = start
                    remaining = size
                    state = chunk_data
                elif state is chunk_data:
                    take = min(remaining, size_of - pos)
                    if take == 0:
                        break
                    parts.append(buffer[pos:pos + take])
                    pos += take
                    remaining -= take
                    if remaining:
                        break
                    state = chunk_end
                elif state is chunk_end:
                    if size_of - pos < 2:
                        break
                    if buffer[pos:pos + 2] != b"\r\n":
                        raise UpstreamHttpError("a chunk is longer than its size says")
                    pos += 2
                    state = chunk_size
                else:  # TRAILERS
                    state = self._trailers(buffer, pos, size_of)
                    pos = self._trailer_end
                    break
        finally:
            del buffer[:pos]
            self._state = state
            self._remaining = remaining
        if parts:
            return b"".join(parts)
        if state is complete:
            return self._end()
        if self._closed:
            raise UpstreamHttpError("the connection ended in the middle of the answer's body")
        return NEED_DATA

    def _trailers(self, buffer: bytearray, pos: int, size_of: int) -> _Framing:
        """Read trailer lines (ignored) from ``pos``; where they stopped is ``_trailer_end``."""
        while True:
            eol = buffer.find(b"\r\n", pos)
            if eol < 0:
                if size_of - pos > MAX_HEAD:
                    raise UpstreamHttpError("the answer's trailers are too long")
                self._trailer_end = pos
                return _TRAILERS
            line = bytes(buffer[pos:eol])
            pos = eol + 2
            if not line:
                self._trailer_end = pos
                return _COMPLETE
            _header(line)


def _chunk_size_digits(line: bytearray) -> bytes:
    """The hex digits of a size line that is not plain hex (an extension, spaces), or raise."""
    digits = bytes(line).split(b";", 1)[0].strip(b" \t")
    if _HEX.fullmatch(digits) is None:
        raise UpstreamHttpError(f"a chunk's size is not hexadecimal: {bytes(line[:40])!r}")
    return digits


def _status_line(line: bytes) -> tuple[int, int]:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise UpstreamHttpError(f"the answer does not start with an HTTP/1.x status line: {line[:60]!r}")
    return int(match.group(1)), int(match.group(2))


def _header(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or _TOKEN.fullmatch(name) is None:
        raise UpstreamHttpError(f"the answer has a malformed header line: {line[:60]!r}")
    value = value.strip(b" \t")
    if _FIELD_VALUE.fullmatch(value) is None:
        raise UpstreamHttpError(f"the answer's header {name[:40]!r} has a control character in its value")
    return name.decode("ascii").lower(), value.decode("latin-1")
