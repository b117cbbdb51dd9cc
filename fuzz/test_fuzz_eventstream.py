"""Fuzz targets for the EventStream decoder/encoder (invariants in fuzz/README.md, "EventStream").

Seeds: fuzz/corpus/eventstream/*.bin (real captures, synthetic and negative vectors).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.wire._eventstream import (
    END_OF_STREAM,
    EventStreamDecoder,
    EventStreamError,
    Message,
    decode_all,
    encode_message,
)
from kiro_protocol._util import NEED_DATA
from tests.helpers_eventstream import encode_all, feed, messages_strategy, raw_frame, split_at

CORPUS = sorted((Path(__file__).parent / "corpus" / "eventstream").glob("*.bin"))
SEEDS = [p.read_bytes() for p in CORPUS]


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """A corpus stream with a few byte-level mutations (flip, delete, insert, truncate, splice)."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "splice"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from(SEEDS))
    return bytes(data)


@st.composite
def crc_valid_garbage(draw: st.DrawFn) -> bytes:
    """Frames whose CRCs are right but whose lengths and header bytes are arbitrary.

    Random bytes almost never pass the prelude CRC; these reach the length checks and the
    header parser.
    """
    frames = []
    for _ in range(draw(st.integers(1, 3))):
        block = draw(st.binary(max_size=48) | st.sampled_from([b"\x01a\x07\x00\x02hi", b"\x0b:event-type\x07\x00"]))
        payload = draw(st.binary(max_size=24))
        total = draw(st.none() | st.integers(0, 2**32 - 1) | st.integers(0, 100))
        hlen = draw(st.none() | st.integers(0, 2**32 - 1) | st.integers(0, 64))
        frames.append(raw_frame(block, payload, total_length=total, headers_length=hlen))
    return b"".join(frames)


def _recrc_prelude(data: bytes) -> bytes:
    """Make the first prelude CRC right again, so a mutated length gets past the CRC check."""
    if len(data) < 12:
        return data
    return data[:8] + struct.pack(">I", zlib.crc32(data[:8])) + data[12:]


ANY_BYTES = (
    st.binary(max_size=300)
    | mutated_seed()
    | crc_valid_garbage()
    | mutated_seed().map(_recrc_prelude)
)


def _run(chunks: list[bytes], max_message_length: int) -> tuple[list[Message], EventStreamError | None]:
    """Drive the decoder and check the invariants that hold at every step."""
    decoder = EventStreamDecoder(max_message_length)
    messages: list[Message] = []
    fed = 0
    try:
        for chunk in chunks:
            if not chunk:
                continue
            decoder.receive_data(chunk)
            fed += len(chunk)
            while (ev := decoder.next_event()) is not NEED_DATA:
                assert ev is not END_OF_STREAM
                messages.append(ev)
            # Drained: what is left is a prefix of one message that fits the limit.
            assert decoder.bytes_buffered < max_message_length
            assert decoder.offset + decoder.bytes_buffered == fed
        decoder.receive_data(b"")
        while (ev := decoder.next_event()) is not END_OF_STREAM:
            assert ev is not NEED_DATA, "NEED_DATA after end of input"
            messages.append(ev)
        assert decoder.offset == fed
        return messages, None
    except EventStreamError as exc:
        assert 0 <= exc.offset <= fed
        assert f"stream offset {exc.offset}" in exc.message
        assert decoder.failed is exc
        return messages, exc


@given(ANY_BYTES, st.lists(st.integers(0, 400), max_size=8), st.sampled_from([16, 64, 200, 16 * 1024 * 1024]))
def test_arbitrary_bytes_give_messages_or_the_protocol_error(data: bytes, cuts: list[int], limit: int) -> None:
    # Invariant 1: messages or EventStreamError, nothing else (any other exception fails the
    # test); the decoder never holds more than one message's worth after draining; the error
    # names an offset inside what was fed; and the outcome does not depend on the chunking.
    whole, whole_error = _run([data], limit)
    split, split_error = _run(split_at(data, cuts), limit)
    assert split == whole
    assert type(split_error) is type(whole_error)
    if whole_error is not None and split_error is not None:
        assert split_error.offset == whole_error.offset
    # Every returned message re-encodes to the bytes it came from.
    assert data.startswith(encode_all(whole))


@given(st.lists(messages_strategy(), max_size=6), st.lists(st.integers(0, 3000), max_size=20))
def test_any_chunking_of_a_valid_stream_gives_the_same_messages(messages: list[Message], cuts: list[int]) -> None:
    # Invariant 2.
    data = encode_all(messages)
    assert feed(split_at(data, cuts)) == feed([data]) == messages


@given(st.lists(messages_strategy(max_payload=2000), max_size=4))
def test_encode_then_decode_is_the_identity(messages: list[Message]) -> None:
    # Invariant 3, both ways: decode(encode(m)) == m and encode(decode(b)) == b.
    data = encode_all(messages)
    assert decode_all(data) == messages
    assert b"".join(encode_message(m.headers, m.payload) for m in decode_all(data)) == data
