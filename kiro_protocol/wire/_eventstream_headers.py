"""EventStream headers: the ten value types, the ``Header`` value, and the header-block codec.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from .._errors import LocalProtocolError
from ._eventstream_errors import MalformedHeader

__all__ = ["HeaderType", "HeaderValue", "Header", "parse_header_block", "encode_headers"]

_MAX_SHORT_BLOB: Final = 0xFFFF

_U16 = struct.Struct(">H")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class HeaderType(enum.IntEnum):
    """The ten header value types of the wire format (docs/kiro-protocol.md, EventStream framing:
    Headers)."""

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


def parse_header_block(block: bytes, start: int) -> tuple[Header, ...]:
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
