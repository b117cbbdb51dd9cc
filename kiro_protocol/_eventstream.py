"""AWS EventStream framing (``spec/protocol.md`` §6): a Sans-IO decoder and an encoder.

No I/O here: bytes go in with ``EventStreamDecoder.receive_data`` and ``Message`` values come
out of ``next_event``; ``encode_message`` is the inverse, for tests, fuzzers, benchmarks and the
upstream simulator.

The decoder is strict (§6.2, "kiro2api's rule"): the prelude CRC and the length bounds are
checked as soon as the 12-byte prelude is buffered, before waiting for the body; a CRC mismatch,
an impossible length, a malformed header or end of input inside a message raises an
``EventStreamError`` naming what was wrong and the stream offset, and the decoder stays failed.
EventStream has no resynchronisation marker, so nothing is ever skipped.

Header value types (chosen so that decode(encode(x)) == x exactly):

=================  ===============================================================
``HeaderType``     Python value
=================  ===============================================================
BOOL_TRUE / FALSE  ``bool`` (must agree with the type: True / False)
BYTE               ``int`` in [-2**7, 2**7)
SHORT              ``int`` in [-2**15, 2**15)
INTEGER            ``int`` in [-2**31, 2**31)
LONG               ``int`` in [-2**63, 2**63)
BYTE_ARRAY         ``bytes``, at most 65535 bytes
STRING             ``str``, at most 65535 bytes of UTF-8
TIMESTAMP          ``int``, milliseconds since the epoch, in [-2**63, 2**63)
UUID               ``uuid.UUID``
=================  ===============================================================
"""

from __future__ import annotations

import enum
import struct
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ._errors import LocalProtocolError, RemoteProtocolError
from ._util import NEED_DATA, NeedDataType

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

#: Both references reject messages above 16 MiB (§6); Kiro frames are a few hundred bytes.
DEFAULT_MAX_MESSAGE_LENGTH: Final = 16 * 1024 * 1024

_PRELUDE_LENGTH: Final = 12
#: Prelude plus message CRC: a message with no headers and no payload.
_MIN_MESSAGE_LENGTH: Final = 16
_MAX_UINT32: Final = 0xFFFFFFFF
_MAX_SHORT_BLOB: Final = 0xFFFF

_PRELUDE = struct.Struct(">III")
_PRELUDE_HEAD = struct.Struct(">II")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

#: Header blocks are cached by their bytes: Kiro repeats the same three string headers on every
#: frame, so parsing them once per stream is the main saving for small frames. Bounded, and only
#: small blocks, so a hostile stream cannot grow it.
_HEADER_CACHE_ENTRIES: Final = 16
_HEADER_CACHE_MAX_BLOCK: Final = 1024
#: Up to this total_length the CRC and payload are taken from bytearray slices (cheap copies);
#: above it through a memoryview, so a large payload is copied once.
_SMALL_MESSAGE: Final = 4096


class HeaderType(enum.IntEnum):
    """The ten header value types of the wire format (§6, header table)."""

    #: No value bytes; the value is ``True``.
    BOOL_TRUE = 0
    #: No value bytes; the value is ``False``.
    BOOL_FALSE = 1
    #: 1 byte, signed.
    BYTE = 2
    #: 2 bytes, signed big-endian.
    SHORT = 3
    #: 4 bytes, signed big-endian.
    INTEGER = 4
    #: 8 bytes, signed big-endian.
    LONG = 5
    #: uint16 big-endian length, then the bytes.
    BYTE_ARRAY = 6
    #: uint16 big-endian length, then UTF-8 bytes.
    STRING = 7
    #: 8 bytes, signed big-endian milliseconds since the epoch.
    TIMESTAMP = 8
    #: 16 raw bytes.
    UUID = 9


HeaderValue: TypeAlias = bool | int | bytes | str | uuid.UUID

_INT_STRUCTS: Final[dict[HeaderType, struct.Struct]] = {
    HeaderType.BYTE: _I8,
    HeaderType.SHORT: _I16,
    HeaderType.INTEGER: _I32,
    HeaderType.LONG: _I64,
    HeaderType.TIMESTAMP: _I64,
}
_INT_BITS: Final[dict[HeaderType, int]] = {
    HeaderType.BYTE: 8,
    HeaderType.SHORT: 16,
    HeaderType.INTEGER: 32,
    HeaderType.LONG: 64,
    HeaderType.TIMESTAMP: 64,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """One typed header. The value's Python type depends on ``type`` (module docstring)."""

    #: 1..255 bytes of UTF-8.
    name: str
    #: The wire value type.
    type: HeaderType
    #: The value; see the module docstring for the Python type of each wire type.
    value: HeaderValue

    def __post_init__(self) -> None:
        _check_header(self.name, self.type, self.value)


def _check_header(name: str, type_: HeaderType, value: HeaderValue) -> None:
    if not isinstance(name, str):
        raise LocalProtocolError(f"header name must be str, not {type(name).__name__}")
    name_len = len(name.encode("utf-8"))
    if not 1 <= name_len <= 255:
        raise LocalProtocolError(f"header name {name!r} must be 1..255 bytes of UTF-8, not {name_len}")
    if not isinstance(type_, HeaderType):
        raise LocalProtocolError(f"header {name!r}: type must be a HeaderType, not {type_!r}")
    if type_ is HeaderType.BOOL_TRUE or type_ is HeaderType.BOOL_FALSE:
        if value is not (type_ is HeaderType.BOOL_TRUE):
            raise LocalProtocolError(f"header {name!r}: a {type_.name} header needs value {type_ is HeaderType.BOOL_TRUE}")
    elif type_ in _INT_BITS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise LocalProtocolError(f"header {name!r}: a {type_.name} value must be int")
        half = 1 << (_INT_BITS[type_] - 1)
        if not -half <= value < half:
            raise LocalProtocolError(f"header {name!r}: {value} does not fit a {type_.name}")
    elif type_ is HeaderType.BYTE_ARRAY:
        if not isinstance(value, bytes):
            raise LocalProtocolError(f"header {name!r}: a BYTE_ARRAY value must be bytes")
        if len(value) > _MAX_SHORT_BLOB:
            raise LocalProtocolError(f"header {name!r}: BYTE_ARRAY longer than 65535 bytes")
    elif type_ is HeaderType.STRING:
        if not isinstance(value, str):
            raise LocalProtocolError(f"header {name!r}: a STRING value must be str")
        if len(value.encode("utf-8")) > _MAX_SHORT_BLOB:
            raise LocalProtocolError(f"header {name!r}: STRING longer than 65535 bytes of UTF-8")
    else:  # HeaderType.UUID
        if not isinstance(value, uuid.UUID):
            raise LocalProtocolError(f"header {name!r}: a UUID value must be uuid.UUID")


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


# --- errors -----------------------------------------------------------------------------------


class EventStreamError(RemoteProtocolError):
    """Upstream sent bytes that are not a valid EventStream. Fatal for the stream.

    Attributes:
        offset: the stream offset (from the first byte ever received) of the offending bytes.
    """

    def __init__(self, what: str, *, offset: int) -> None:
        super().__init__(f"invalid EventStream from upstream: {what} (stream offset {offset})")
        self.offset = offset


class ChecksumMismatch(EventStreamError):
    """A prelude or message CRC-32 does not match the bytes it covers."""

    def __init__(self, what: str, *, offset: int, expected: int, calculated: int) -> None:
        super().__init__(f"{what}: expected 0x{expected:08x}, calculated 0x{calculated:08x}", offset=offset)
        self.expected = expected
        self.calculated = calculated


class InvalidLength(EventStreamError):
    """The prelude declares a total or headers length that cannot be right."""


class MalformedHeader(EventStreamError):
    """The header block does not parse (bad name, unknown type, overrun, duplicate, bad UTF-8)."""


class TruncatedMessage(EventStreamError):
    """Input ended inside a message."""


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
        # one large read never shifts the remaining bytes once per message.
        self._buf = bytearray()
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

    def receive_data(self, data: bytes) -> None:
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
        if self._pos:
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0
        self._buf += data

    def next_event(self) -> Message | NeedDataType | EndOfStreamType:
        """Return the next complete message, ``NEED_DATA``, or ``END_OF_STREAM``.

        ``END_OF_STREAM`` is returned (repeatedly) only after ``receive_data(b"")`` with no
        bytes left over; after the end of input ``NEED_DATA`` is never returned.

        Raises:
            EventStreamError (a ``RemoteProtocolError``): the stream is invalid at
            ``error.offset``. Sticky: later calls raise it again.
        """
        if self._error is not None:
            raise self._error.with_traceback(None)
        try:
            return self._next()
        except EventStreamError as exc:
            self._error = exc
            raise

    def _next(self) -> Message | NeedDataType | EndOfStreamType:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
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
            self._check_prelude(pos, total, headers_length, prelude_crc)
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
            # Slicing a bytearray copies, but for small messages that is cheaper than setting
            # up a memoryview.
            calculated = zlib.crc32(buf[pos:crc_at])
            payload = bytes(buf[payload_at:crc_at])
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
        headers = self._headers(headers_at, headers_length)
        self._checked = False
        end = crc_at + 4
        if end == len(buf):
            # Everything consumed: drop it now (O(1)) rather than holding a large payload's bytes
            # until the next receive_data.
            buf.clear()
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
        headers = _parse_header_block(block, self._base + at)
        if length <= _HEADER_CACHE_MAX_BLOCK and self._header_cache_size < _HEADER_CACHE_ENTRIES:
            self._header_cache.setdefault(length, []).append((block, headers))
            self._header_cache_size += 1
        return headers

    def _check_prelude(self, pos: int, total: int, headers_length: int, prelude_crc: int) -> None:
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
        if headers_length > total - _MIN_MESSAGE_LENGTH:
            raise InvalidLength(
                f"headers_length {headers_length} does not fit in total_length {total}", offset=start + 4
            )


def _parse_header_block(block: bytes, start: int) -> tuple[Header, ...]:
    """Parse a complete header block; ``start`` is its stream offset (for error messages)."""
    headers: list[Header] = []
    seen: set[str] = set()
    end = len(block)
    p = 0
    while p < end:
        at = start + p
        name_len = block[p]
        if name_len == 0:
            raise MalformedHeader("header with an empty name", offset=at)
        q = p + 1 + name_len
        if q + 1 > end:
            raise MalformedHeader("header name runs past the end of the header block", offset=at)
        try:
            name = block[p + 1 : q].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedHeader("header name is not valid UTF-8", offset=at + 1) from None
        if name in seen:
            raise MalformedHeader(f"duplicate header {name!r}", offset=at)
        seen.add(name)
        type_byte = block[q]
        q += 1
        value: HeaderValue
        if type_byte == 0:
            type_, value = HeaderType.BOOL_TRUE, True
        elif type_byte == 1:
            type_, value = HeaderType.BOOL_FALSE, False
        elif type_byte == 6 or type_byte == 7:
            if q + 2 > end:
                raise MalformedHeader(f"header {name!r}: value length runs past the header block", offset=start + q)
            (length,) = _U16.unpack_from(block, q)
            q += 2
            if q + length > end:
                raise MalformedHeader(f"header {name!r}: value runs past the header block", offset=start + q)
            raw = block[q : q + length]
            if type_byte == 6:
                type_, value = HeaderType.BYTE_ARRAY, raw
            else:
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedHeader(f"header {name!r}: string value is not valid UTF-8", offset=start + q) from None
                type_ = HeaderType.STRING
            q += length
        elif type_byte == 9:
            if q + 16 > end:
                raise MalformedHeader(f"header {name!r}: UUID runs past the header block", offset=start + q)
            type_, value = HeaderType.UUID, uuid.UUID(bytes=block[q : q + 16])
            q += 16
        elif 2 <= type_byte <= 8:
            type_ = HeaderType(type_byte)
            fmt = _INT_STRUCTS[type_]
            if q + fmt.size > end:
                raise MalformedHeader(f"header {name!r}: {type_.name} value runs past the header block", offset=start + q)
            (value,) = fmt.unpack_from(block, q)
            q += fmt.size
        else:
            raise MalformedHeader(f"header {name!r}: unknown value type {type_byte}", offset=start + q - 1)
        headers.append(Header(name=name, type=type_, value=value))
        p = q
    return tuple(headers)


# --- encoder ----------------------------------------------------------------------------------


def encode_headers(headers: Sequence[Header] | Mapping[str, str]) -> bytes:
    """Encode a header block. A mapping of str to str gives STRING headers in its order.

    Raises:
        LocalProtocolError: a duplicate header name, or an invalid header (see ``Header``).
    """
    items: Sequence[Header]
    if isinstance(headers, Mapping):
        items = [Header(name=k, type=HeaderType.STRING, value=v) for k, v in headers.items()]
    else:
        items = headers
    parts: list[bytes] = []
    seen: set[str] = set()
    for h in items:
        if h.name in seen:
            raise LocalProtocolError(f"duplicate header {h.name!r}")
        seen.add(h.name)
        name = h.name.encode("utf-8")
        parts.append(bytes((len(name),)))
        parts.append(name)
        parts.append(bytes((h.type,)))
        value = h.value
        t = h.type
        if t is HeaderType.STRING:
            assert isinstance(value, str)
            data = value.encode("utf-8")
            parts.append(_U16.pack(len(data)))
            parts.append(data)
        elif t is HeaderType.BYTE_ARRAY:
            assert isinstance(value, bytes)
            parts.append(_U16.pack(len(value)))
            parts.append(value)
        elif t is HeaderType.UUID:
            assert isinstance(value, uuid.UUID)
            parts.append(value.bytes)
        elif t in _INT_STRUCTS:
            assert isinstance(value, int)
            parts.append(_INT_STRUCTS[t].pack(value))
        # BOOL_TRUE / BOOL_FALSE carry no value bytes.
    return b"".join(parts)


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
