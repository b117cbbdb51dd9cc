"""Shared helpers for the EventStream tests and fuzz targets: feeding, chunking, raw frames."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from kiro_protocol.wire._eventstream import (
    END_OF_STREAM,
    EventStreamDecoder,
    Header,
    HeaderType,
    Message,
    encode_message,
)
from kiro_protocol._util import NEED_DATA

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"


def fixture_bytes(stem: str) -> bytes:
    return (FIXTURES / f"{stem}.bin").read_bytes()


def syn11_chunks() -> list[bytes]:
    doc = json.loads((FIXTURES / "syn11_chunked_tool_stream.json").read_text())
    return [bytes.fromhex(c) for c in doc["chunks_hex"]]


def feed(chunks: Iterable[bytes], *, eof: bool = True, max_message_length: int | None = None) -> list[Message]:
    """Feed ``chunks`` one by one, draining after each; return every message.

    Raises whatever the decoder raises. With ``eof`` the end of input is signalled and the
    decoder must then report END_OF_STREAM.
    """
    decoder = EventStreamDecoder() if max_message_length is None else EventStreamDecoder(max_message_length)
    out: list[Message] = []
    for chunk in chunks:
        if chunk:  # b"" would mean end of input
            decoder.receive_data(chunk)
            drain(decoder, out)
    if eof:
        decoder.receive_data(b"")
        ev = decoder.next_event()
        while ev is not END_OF_STREAM:
            assert ev is not NEED_DATA, "NEED_DATA after end of input"
            out.append(ev)
            ev = decoder.next_event()
        assert decoder.next_event() is END_OF_STREAM
        assert decoder.bytes_buffered == 0
    return out


def drain(decoder: EventStreamDecoder, out: list[Message]) -> None:
    """Append messages until NEED_DATA; END_OF_STREAM is not expected here."""
    while True:
        ev = decoder.next_event()
        if ev is NEED_DATA:
            return
        assert ev is not END_OF_STREAM
        out.append(ev)


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the (unsorted, possibly repeated or out of range) positions ``cuts``."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def assert_chunking_invariant(data: bytes, expected: Sequence[Message]) -> None:
    """Whole input, byte at a time, and every two-way split all decode to ``expected``."""
    assert feed([data]) == list(expected)
    assert feed(one_byte_at_a_time(data)) == list(expected)
    step = max(1, len(data) // 64)
    for cut in range(0, len(data) + 1, step):
        assert feed([data[:cut], data[cut:]]) == list(expected)


def raw_frame(
    header_block: bytes,
    payload: bytes = b"",
    *,
    total_length: int | None = None,
    headers_length: int | None = None,
    prelude_crc: int | None = None,
    message_crc: int | None = None,
) -> bytes:
    """Build a frame field by field; CRCs are computed unless overridden, lengths likewise.

    Lets a test break exactly one thing (a length, a header, a CRC) while the rest stays valid.
    """
    total = 16 + len(header_block) + len(payload) if total_length is None else total_length
    hlen = len(header_block) if headers_length is None else headers_length
    head = struct.pack(">II", total, hlen)
    pcrc = zlib.crc32(head) if prelude_crc is None else prelude_crc
    body = head + struct.pack(">I", pcrc) + header_block + payload
    mcrc = zlib.crc32(body) if message_crc is None else message_crc
    return body + struct.pack(">I", mcrc)


def string_header_bytes(name: str, value: str) -> bytes:
    n = name.encode()
    v = value.encode()
    return bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v


# --- hypothesis strategies (shared with fuzz/) -------------------------------------------------

_NAME = st.text(min_size=1, max_size=24).filter(lambda s: len(s.encode("utf-8")) <= 255)


def _int_range(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)


_VALUES: dict[HeaderType, st.SearchStrategy[Any]] = {
    HeaderType.BOOL_TRUE: st.just(True),
    HeaderType.BOOL_FALSE: st.just(False),
    HeaderType.BYTE: _int_range(8),
    HeaderType.SHORT: _int_range(16),
    HeaderType.INTEGER: _int_range(32),
    HeaderType.LONG: _int_range(64),
    HeaderType.BYTE_ARRAY: st.binary(max_size=40),
    HeaderType.STRING: st.text(max_size=40),
    HeaderType.TIMESTAMP: _int_range(64),
    HeaderType.UUID: st.builds(uuid.UUID, bytes=st.binary(min_size=16, max_size=16)),
}


@st.composite
def headers_strategy(draw: st.DrawFn, max_size: int = 8) -> tuple[Header, ...]:
    """Valid header tuples: unique names, every value type, realistic Kiro headers mixed in."""
    names = draw(st.lists(_NAME | st.sampled_from([":event-type", ":message-type", ":content-type"]),
                          max_size=max_size, unique=True))
    out = []
    for name in names:
        type_ = draw(st.sampled_from(HeaderType))
        out.append(Header(name=name, type=type_, value=draw(_VALUES[type_])))
    return tuple(out)


def messages_strategy(max_payload: int = 200) -> st.SearchStrategy[Message]:
    return st.builds(Message, headers=headers_strategy(), payload=st.binary(max_size=max_payload))


def encode_all(messages: Iterable[Message]) -> bytes:
    return b"".join(encode_message(m.headers, m.payload) for m in messages)


def botocore_decode(chunks: Iterable[bytes]) -> list[tuple[list[tuple[str, object]], bytes]]:
    """Decode with botocore's EventStreamBuffer (the independent oracle); raises what it raises."""
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    out: list[tuple[list[tuple[str, object]], bytes]] = []
    for chunk in chunks:
        buffer.add_data(chunk)
        for message in buffer:
            out.append((list(message.headers.items()), message.payload))
    return out


def as_botocore(messages: Iterable[Message]) -> list[tuple[list[tuple[str, object]], bytes]]:
    """Our messages in botocore's shape: header dict items (UUID as its 16 bytes), payload."""
    return [
        ([(h.name, h.value.bytes if isinstance(h.value, uuid.UUID) else h.value) for h in m.headers], m.payload)
        for m in messages
    ]


def split_frames(data: bytes) -> list[bytes]:
    """``data`` cut at its EventStream frame boundaries (by each prelude's total length), as a
    stream paced by the upstream arrives: one frame per read. A tail that is not a whole frame
    is the last piece."""
    pieces: list[bytes] = []
    pos = 0
    while pos + 4 <= len(data):
        total = int.from_bytes(data[pos:pos + 4], "big")
        if total < 16:
            break
        pieces.append(data[pos:pos + total])
        pos += total
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces

