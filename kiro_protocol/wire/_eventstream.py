"""AWS EventStream framing: a Sans-IO decoder and an encoder.

The format: docs/kiro-protocol.md, EventStream framing.

No I/O here: bytes go in with ``EventStreamDecoder.receive_data`` and ``Message`` values come
out of ``next_event``; ``encode_message`` is the inverse, for tests, fuzzers, benchmarks and the
upstream simulator.

The decoder is strict (docs/kiro-protocol.md, Chunks and corruption): the prelude CRC and the
length bounds are checked as soon as the 12-byte prelude is buffered, before waiting for the
body; a CRC mismatch, an impossible length, a malformed header or end of input inside a message
raises an ``EventStreamError`` naming what was wrong and the stream offset, and the decoder
stays failed.
EventStream has no resynchronisation marker, so nothing is ever skipped.

Headers (``HeaderType``, ``Header``) are in ``_eventstream_headers``, errors in
``_eventstream_errors``; both are re-exported here.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NoReturn

from .._errors import LocalProtocolError
from .._util import NEED_DATA, NeedDataType
from ._eventstream_errors import (
    ChecksumMismatch,
    EventStreamError,
    InvalidLength,
    MalformedHeader,
    TruncatedMessage,
)
from ._eventstream_headers import Header, HeaderType, HeaderValue, encode_headers, parse_header_block

__all__ = [
    "HeaderType",
    "HeaderValue",
    "Header",
    "Message",
    "EndOfStream",
    "END_OF_STREAM",
    "EndOfStreamType",
    "EventStreamDecoder",
    "EventStreamError",
    "ChecksumMismatch",
    "InvalidLength",
    "MalformedHeader",
    "TruncatedMessage",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "encode_message",
    "encode_headers",
    "decode_all",
]

#: Both references reject messages above 16 MiB (docs/kiro-protocol.md, Sizes); Kiro frames are
#: a few hundred bytes.
DEFAULT_MAX_MESSAGE_LENGTH: Final = 16 * 1024 * 1024

_PRELUDE_LENGTH: Final = 12
#: Prelude plus message CRC: a message with no headers and no payload.
_MIN_MESSAGE_LENGTH: Final = 16
_MAX_UINT32: Final = 0xFFFFFFFF

_PRELUDE = struct.Struct(">III")
_PRELUDE_HEAD = struct.Struct(">II")
_U32 = struct.Struct(">I")

#: Header blocks are cached by their bytes: Kiro repeats the same three string headers on every
#: frame, so parsing them once per stream is the main saving for small frames. Bounded, and only
#: small blocks, so a hostile stream cannot grow it.
_HEADER_CACHE_ENTRIES: Final = 16
_HEADER_CACHE_MAX_BLOCK: Final = 1024
#: Valid header blocks parsed by any decoder, shared by the next ones: a decoder lives for one
#: answer, and every answer starts with the same few blocks (the parsed values are immutable, so
#: sharing them changes nothing but the work; entries are only ever added whole).
_SHARED_BLOCK_ENTRIES: Final = 256
_SHARED_BLOCKS: dict[bytes, tuple[Header, ...]] = {}
#: Up to this total_length the CRC and payload are taken from bytearray slices (cheap copies);
#: above it through a memoryview, so a large payload is copied once.
_SMALL_MESSAGE: Final = 4096
_EMPTY: Final = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One decoded EventStream message. Header names are unique (the decoder enforces it)."""

    #: The headers in wire order.
    headers: tuple[Header, ...]
    #: The payload bytes (Kiro: one JSON document, or empty).
    payload: bytes

    def header(self, name: str) -> HeaderValue | None:
        """Return the value of header ``name``, or None when absent."""
        for h in self.headers:
            if h.name == name:
                return h.value
        return None

    def string_header(self, name: str) -> str | None:
        """Return the value of header ``name`` if it is a STRING header, else None."""
        for h in self.headers:
            if h.name == name:
                return h.value if h.type is HeaderType.STRING and isinstance(h.value, str) else None
        return None


# The decoder builds a Message per frame; the dataclass __init__ of a frozen class goes through
# object.__setattr__ per field, which is a third of the per-frame cost for small frames. Setting the
# slots through their descriptors is equivalent (the decoder's values are already valid).
_new_object = object.__new__
_set_headers = Message.__dict__["headers"].__set__
_set_payload = Message.__dict__["payload"].__set__


class EndOfStream(enum.Enum):
    """Returned by ``next_event()`` once input ended cleanly and every message was returned."""

    #: The body ended on a message boundary; there is nothing more.
    END_OF_STREAM = "END_OF_STREAM"


END_OF_STREAM: Final = EndOfStream.END_OF_STREAM
EndOfStreamType = Literal[EndOfStream.END_OF_STREAM]


# --- decoder ----------------------------------------------------------------------------------


class EventStreamDecoder:
    """Incremental EventStream decoder in the style of h11: bytes in, ``Message`` values out.

    Feed bytes with ``receive_data`` (``b""`` marks the end of input) and call ``next_event``
    until it returns ``NEED_DATA`` (feed more) or ``END_OF_STREAM`` (done). Any split of the
    input gives the same messages. After an ``EventStreamError`` the decoder is failed and every
    later call raises that error again; any other exception is a bug.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "_base",
        "_eof",
        "_error",
        "_checked",
        "_max",
        "_header_cache",
        "_header_cache_size",
    )

    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        if not _MIN_MESSAGE_LENGTH <= max_message_length <= _MAX_UINT32:
            raise ValueError(f"max_message_length must be in [16, 2**32-1], not {max_message_length}")
        self._max = max_message_length
        # Unconsumed input is self._buf[self._pos:]; the consumed prefix is dropped lazily (in
        # receive_data, or when the buffer empties) so that decoding many small messages out of
        # one large read never shifts the remaining bytes once per message (h11's receive buffer
        # has the same concern).
        # Bytes while reads end on message boundaries (each read's data is the buffer), a
        # bytearray appended to while a message spans reads.
        self._buf: bytes | bytearray = _EMPTY
        self._pos = 0
        #: Stream offset of self._buf[0].
        self._base = 0
        self._eof = False
        self._error: EventStreamError | None = None
        #: True once the prelude at self._pos passed the CRC and length checks.
        self._checked = False
        #: headers_length -> [(header block, parsed headers)].
        self._header_cache: dict[int, list[tuple[bytes, tuple[Header, ...]]]] = {}
        self._header_cache_size = 0

    @property
    def max_message_length(self) -> int:
        """The largest total_length accepted."""
        return self._max

    @property
    def bytes_buffered(self) -> int:
        """How many received bytes are not yet part of a returned message."""
        return len(self._buf) - self._pos

    @property
    def offset(self) -> int:
        """Stream offset of the next unconsumed byte (= bytes consumed so far)."""
        return self._base + self._pos

    @property
    def failed(self) -> EventStreamError | None:
        """The error that failed the decoder, or None."""
        return self._error

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the upstream body; ``b""`` means the body ended.

        Raises:
            RuntimeError: data after the end of input (a caller bug).
            EventStreamError: the decoder already failed.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)
        if self._eof:
            raise RuntimeError("EventStreamDecoder: received data after the end of input")
        if not data:
            self._eof = True
            return
        buf = self._buf
        pos = self._pos
        if pos == len(buf):
            # Nothing left over (the usual case: reads end on message boundaries): the data
            # itself is the buffer, and a payload is one slice of it, not a copy of a copy.
            self._base += pos
            self._pos = 0
            self._buf = data if type(data) is bytes else bytes(data)
            return
        if not isinstance(buf, bytearray):
            # A message continues in this data: from here on bytes are appended.
            self._base += pos
            self._pos = 0
            self._buf = bytearray(buf[pos:]) + data
            return
        if pos and pos >= len(buf) - pos:
            # Compact only once the consumed prefix is at least as long as what remains, so the
            # bytes moved are paid for by the bytes consumed (linear overall, whatever the
            # interleaving of receive_data and next_event).
            del buf[:pos]
            self._base += pos
            self._pos = 0
        buf += data

    def next_event(self) -> Message | NeedDataType | EndOfStreamType:
        """Return the next complete message, ``NEED_DATA``, or ``END_OF_STREAM``.

        ``END_OF_STREAM`` is returned (repeatedly) only after ``receive_data(b"")`` with no
        bytes left over; after the end of input ``NEED_DATA`` is never returned.

        Raises:
            EventStreamError (a ``RemoteProtocolError``): the stream is invalid at
            ``error.offset`` (``TruncatedMessage`` when input ended inside a message; it is
            raised only once every complete message before it was returned). Sticky: later
            calls raise it again.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)
        # One flat body (no helper calls on the common path): this runs once per frame, and
        # Kiro sends thousands of small frames per answer.
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        try:
            if avail < _PRELUDE_LENGTH:
                if not self._eof:
                    return NEED_DATA
                if avail == 0:
                    return END_OF_STREAM
                raise TruncatedMessage(
                    f"input ended inside a message prelude ({avail} of 12 bytes)", offset=self._base + len(buf)
                )
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buf, pos)
            if not self._checked:
                # Before trusting the lengths (and before waiting for the body they announce).
                if (
                    zlib.crc32(buf[pos : pos + 8]) != prelude_crc
                    or not _MIN_MESSAGE_LENGTH <= total <= self._max
                    or headers_length > total - _MIN_MESSAGE_LENGTH
                ):
                    self._reject_prelude(pos, total, headers_length, prelude_crc)
                self._checked = True
            if avail < total:
                if not self._eof:
                    return NEED_DATA
                raise TruncatedMessage(
                    f"input ended inside the message that starts at stream offset {self._base + pos} "
                    f"({avail} of {total} bytes)",
                    offset=self._base + len(buf),
                )
            crc_at = pos + total - 4
            headers_at = pos + _PRELUDE_LENGTH
            payload_at = headers_at + headers_length
            (expected,) = _U32.unpack_from(buf, crc_at)
            if total <= _SMALL_MESSAGE:
                # Slicing copies, but for small messages that is cheaper than setting up a
                # memoryview.
                calculated = zlib.crc32(buf[pos:crc_at])
                payload = buf[payload_at:crc_at]
                if isinstance(payload, bytearray):
                    payload = bytes(payload)
            else:
                with memoryview(buf) as view:
                    calculated = zlib.crc32(view[pos:crc_at])
                    payload = view[payload_at:crc_at].tobytes()
            if calculated != expected:
                raise ChecksumMismatch(
                    f"message CRC mismatch in the message that starts at stream offset {self._base + pos}",
                    offset=self._base + crc_at,
                    expected=expected,
                    calculated=calculated,
                )
            cached = self._header_cache.get(headers_length)
            if cached is not None and buf.startswith(cached[0][0], headers_at):
                # startswith compares in place: a cache hit copies nothing.
                headers = cached[0][1]
            else:
                headers = self._headers(headers_at, headers_length)
        except EventStreamError as exc:
            self._error = exc
            raise
        self._checked = False
        end = crc_at + 4
        if end == len(buf):
            # Everything consumed: drop it now (O(1)) rather than holding a large payload's bytes
            # until the next receive_data.
            self._buf = _EMPTY
            self._base += end
            self._pos = 0
        else:
            self._pos = end
        message: Message = _new_object(Message)
        _set_headers(message, headers)
        _set_payload(message, payload)
        return message

    def _headers(self, at: int, length: int) -> tuple[Header, ...]:
        """Parse the header block at ``self._buf[at:at+length]``, through the cache."""
        if length == 0:
            return ()
        buf = self._buf
        candidates = self._header_cache.get(length)
        if candidates is not None:
            for block, headers in candidates:
                # startswith compares in place: no copy of the block on a hit.
                if buf.startswith(block, at):
                    return headers
        block = bytes(buf[at : at + length])
        shared = _SHARED_BLOCKS.get(block)  # parsed by an earlier decoder (a request before)
        if shared is not None:
            headers = shared
        else:
            headers = parse_header_block(block, self._base + at)
            if length <= _HEADER_CACHE_MAX_BLOCK:
                if len(_SHARED_BLOCKS) >= _SHARED_BLOCK_ENTRIES:
                    _SHARED_BLOCKS.clear()  # bounded: blocks a hostile stream invents only churn it
                _SHARED_BLOCKS[block] = headers
        if length <= _HEADER_CACHE_MAX_BLOCK and self._header_cache_size < _HEADER_CACHE_ENTRIES:
            self._header_cache.setdefault(length, []).append((block, headers))
            self._header_cache_size += 1
        return headers

    def _reject_prelude(self, pos: int, total: int, headers_length: int, prelude_crc: int) -> NoReturn:
        """Raise the error for the first check the prelude at ``pos`` fails."""
        start = self._base + pos
        calculated = zlib.crc32(self._buf[pos : pos + 8])
        if calculated != prelude_crc:
            raise ChecksumMismatch(
                f"prelude CRC mismatch in the message that starts at stream offset {start}",
                offset=start + 8,
                expected=prelude_crc,
                calculated=calculated,
            )
        if total < _MIN_MESSAGE_LENGTH:
            raise InvalidLength(f"total_length {total} is below the minimum of 16", offset=start)
        if total > self._max:
            raise InvalidLength(f"total_length {total} exceeds the maximum of {self._max}", offset=start)
        raise InvalidLength(f"headers_length {headers_length} does not fit in total_length {total}", offset=start + 4)


# --- encoder ----------------------------------------------------------------------------------


def encode_message(headers: Sequence[Header] | Mapping[str, str], payload: bytes = b"") -> bytes:
    """Encode one EventStream message (prelude, headers, payload, both CRCs).

    ``headers`` may be a mapping of str to str for convenience: each item becomes a STRING
    header, in the mapping's order. No maximum is applied beyond the format's own (uint32
    lengths), so tests can build messages a decoder must reject as too large.

    Raises:
        LocalProtocolError: invalid or duplicate headers, or a message longer than 2**32-1.
    """
    block = encode_headers(headers)
    total = _MIN_MESSAGE_LENGTH + len(block) + len(payload)
    if total > _MAX_UINT32:
        raise LocalProtocolError(f"message of {total} bytes does not fit the uint32 total_length")
    head = _PRELUDE_HEAD.pack(total, len(block))
    head += _U32.pack(zlib.crc32(head)) + block
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((head, payload, _U32.pack(crc)))


def decode_all(data: bytes, *, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> list[Message]:
    """Decode a complete body in one go (tests and tools).

    Raises:
        EventStreamError: the body is not a valid, complete EventStream.
    """
    decoder = EventStreamDecoder(max_message_length)
    if data:
        decoder.receive_data(data)
    decoder.receive_data(b"")
    messages: list[Message] = []
    while True:
        event = decoder.next_event()
        if event is END_OF_STREAM:
            return messages
        if event is NEED_DATA:  # pragma: no cover - impossible after end of input
            raise AssertionError("NEED_DATA after end of input")
        messages.append(event)
