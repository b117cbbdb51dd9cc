"""EventStream decoder/encoder: golden vectors, chunking invariance, strict failures."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from typing import Any, assert_type

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol._errors import LocalProtocolError, RemoteProtocolError
from kiro_protocol.wire._eventstream import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    END_OF_STREAM,
    ChecksumMismatch,
    EventStreamDecoder,
    EventStreamError,
    Header,
    HeaderType,
    InvalidLength,
    MalformedHeader,
    Message,
    TruncatedMessage,
    decode_all,
    encode_headers,
    encode_message,
)
from kiro_protocol._util import NEED_DATA

from tests.helpers_eventstream import (
    FIXTURES,
    as_botocore,
    assert_chunking_invariant,
    botocore_decode,
    encode_all,
    feed,
    messages_strategy,
    fixture_bytes,
    one_byte_at_a_time,
    raw_frame,
    split_at,
    string_header_bytes,
    syn11_chunks,
)

# expected_messages.json was generated from the vectors' .md decodes (the spec's own strict
# decoder, cross-checked with botocore), not from this decoder.
EXPECTED: dict[str, list[dict[str, Any]]] = json.loads((FIXTURES / "expected_messages.json").read_text("utf-8"))

SYN08_HEADERS = (
    Header(name=":event-type", type=HeaderType.STRING, value="assistantResponseEvent"),
    Header(name=":content-type", type=HeaderType.STRING, value="application/json"),
    Header(name=":message-type", type=HeaderType.STRING, value="event"),
)


def _expected_messages(stem: str) -> list[Message]:
    return [
        Message(
            headers=tuple(Header(name=n, type=HeaderType.STRING, value=v) for n, v in frame["headers"]),
            payload=frame["payload"].encode("utf-8"),
        )
        for frame in EXPECTED[stem]
    ]


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_vector_decodes_whole_and_byte_by_byte(stem: str) -> None:
    data = fixture_bytes(stem)
    expected = _expected_messages(stem)
    assert len(expected) >= 1
    assert_chunking_invariant(data, expected)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_vector_reencodes_byte_exact(stem: str) -> None:
    data = fixture_bytes(stem)
    frames = EXPECTED[stem]
    rebuilt = b"".join(encode_message(m.headers, m.payload) for m in _expected_messages(stem))
    assert rebuilt == data
    for frame in frames:
        start = frame["offset"]
        total, hlen, pcrc = struct.unpack_from(">III", data, start)
        assert (total, hlen, f"{pcrc:08x}") == (frame["total_length"], frame["headers_length"], frame["prelude_crc"])


def test_vector_offsets_are_tracked() -> None:
    data = fixture_bytes("syn02_text_then_tool")
    decoder = EventStreamDecoder()
    decoder.receive_data(data)
    for frame in EXPECTED["syn02_text_then_tool"]:
        assert decoder.offset == frame["offset"]
        assert decoder.bytes_buffered == len(data) - frame["offset"]
        assert isinstance(decoder.next_event(), Message)
    assert decoder.offset == len(data)
    assert decoder.bytes_buffered == 0
    assert decoder.next_event() is NEED_DATA


def test_syn08_every_header_type() -> None:
    (message,) = decode_all(fixture_bytes("syn08_all_header_types"))
    assert message.headers == (
        Header(name="t", type=HeaderType.BOOL_TRUE, value=True),
        Header(name="f", type=HeaderType.BOOL_FALSE, value=False),
        Header(name="b", type=HeaderType.BYTE, value=-3),
        Header(name="s", type=HeaderType.SHORT, value=-300),
        Header(name="i", type=HeaderType.INTEGER, value=123456789),
        Header(name="l", type=HeaderType.LONG, value=-1234567890123),
        Header(name="bin", type=HeaderType.BYTE_ARRAY, value=b"\x00\x01\x02\xff"),
        Header(name="str", type=HeaderType.STRING, value="héllo"),
        Header(name="ts", type=HeaderType.TIMESTAMP, value=1755872318433),
        Header(name="id", type=HeaderType.UUID, value=uuid.UUID("00010203-0405-0607-0809-0a0b0c0d0e0f")),
        Header(name=":message-type", type=HeaderType.STRING, value="event"),
        Header(name=":event-type", type=HeaderType.STRING, value="assistantResponseEvent"),
    )
    assert message.payload == b'{"content":"all header types"}'
    assert encode_message(message.headers, message.payload) == fixture_bytes("syn08_all_header_types")
    assert_chunking_invariant(fixture_bytes("syn08_all_header_types"), [message])


def test_syn11_chunked_delivery() -> None:
    chunks = syn11_chunks()
    assert len(chunks) == 14
    assert b"".join(chunks) == fixture_bytes("syn02_text_then_tool")
    assert feed(chunks) == _expected_messages("syn02_text_then_tool")


def test_all_vectors_in_one_buffer() -> None:
    stems = sorted(EXPECTED)
    data = b"".join(fixture_bytes(s) for s in stems)
    expected = [m for s in stems for m in _expected_messages(s)]
    assert len(expected) == 56
    assert feed([data]) == expected
    assert feed(split_at(data, range(0, len(data), 1000))) == expected


@given(st.lists(st.integers(min_value=0, max_value=1141), max_size=30))
def test_any_split_of_syn02_gives_the_same_messages(cuts: list[int]) -> None:
    data = fixture_bytes("syn02_text_then_tool")
    assert feed(split_at(data, cuts)) == _expected_messages("syn02_text_then_tool")


# --- message accessors -----------------------------------------------------------------------


def test_message_header_accessors() -> None:
    (message,) = decode_all(fixture_bytes("syn08_all_header_types"))
    assert message.header("s") == -300
    assert message.header("f") is False
    assert message.header("missing") is None
    assert message.string_header(":event-type") == "assistantResponseEvent"
    assert message.string_header("str") == "héllo"
    assert message.string_header("i") is None  # present, but not a string
    assert message.string_header("missing") is None


# --- end of input -----------------------------------------------------------------------------


def test_end_of_stream_is_sticky_and_never_need_data() -> None:
    decoder = EventStreamDecoder()
    assert decoder.next_event() is NEED_DATA
    decoder.receive_data(fixture_bytes("real01_simple_text"))
    decoder.receive_data(b"")
    assert isinstance(decoder.next_event(), Message)
    assert isinstance(decoder.next_event(), Message)
    for _ in range(3):
        assert decoder.next_event() is END_OF_STREAM


def test_data_after_end_of_input_is_a_runtime_error() -> None:
    decoder = EventStreamDecoder()
    decoder.receive_data(b"")
    with pytest.raises(RuntimeError):
        decoder.receive_data(b"\x00")
    # An empty chunk after EOF is a second EOF, equally a caller bug.
    with pytest.raises(RuntimeError):
        decoder.receive_data(b"")
    assert decoder.next_event() is END_OF_STREAM


def test_empty_body_is_a_clean_end() -> None:
    assert decode_all(b"") == []


@pytest.mark.parametrize("cut", [1, 5, 11, 12, 13, 100, 142])
def test_end_of_input_inside_a_message_is_truncation(cut: int) -> None:
    data = fixture_bytes("real01_simple_text")  # frames at 0 (143 bytes) and 143
    decoder = EventStreamDecoder()
    decoder.receive_data(data[: 143 + cut])
    assert isinstance(decoder.next_event(), Message)
    assert decoder.next_event() is NEED_DATA
    decoder.receive_data(b"")
    with pytest.raises(TruncatedMessage) as info:
        decoder.next_event()
    assert info.value.offset == 143 + cut
    assert f"stream offset {143 + cut}" in info.value.message
    if cut >= 12:
        assert "starts at stream offset 143" in info.value.message


# --- strict failures --------------------------------------------------------------------------

_EVENT_BLOCK = string_header_bytes(":message-type", "event")
_GOOD = raw_frame(_EVENT_BLOCK, b"{}")


def _i(n: int) -> bytes:
    return struct.pack(">I", n)


NEGATIVE_CASES: list[tuple[str, bytes, type[EventStreamError], int]] = [
    # (id, stream, error class, error offset)
    ("syn12-bad-message-crc", fixture_bytes("syn12_bad_message_crc"), ChecksumMismatch, 125),
    ("syn13-garbage-prefix", fixture_bytes("syn13_garbage_prefix"), ChecksumMismatch, 8),
    (
        "corrupted-prelude-crc",
        raw_frame(_EVENT_BLOCK, b"{}", prelude_crc=0xDEADBEEF),
        ChecksumMismatch,
        8,
    ),
    (
        "corrupted-payload",
        raw_frame(_EVENT_BLOCK, b"{}")[:-6] + b"[]" + raw_frame(_EVENT_BLOCK, b"{}")[-4:],
        ChecksumMismatch,
        len(_GOOD) - 4,
    ),
    ("second-message-bad-crc", _GOOD + raw_frame(b"", b"x", message_crc=1), ChecksumMismatch, len(_GOOD) + 13),
    ("total-length-below-16", raw_frame(b"", b"", total_length=15), InvalidLength, 0),
    ("total-length-zero", raw_frame(b"", b"", total_length=0), InvalidLength, 0),
    ("total-length-above-max", raw_frame(b"", b"", total_length=DEFAULT_MAX_MESSAGE_LENGTH + 1), InvalidLength, 0),
    ("total-length-2**32-1", raw_frame(b"", b"", total_length=0xFFFFFFFF), InvalidLength, 0),
    ("headers-length-past-total", raw_frame(b"", b"abc", headers_length=4), InvalidLength, 4),
    ("headers-length-huge", _GOOD + raw_frame(b"", b"", headers_length=0xFFFFFFFF), InvalidLength, len(_GOOD) + 4),
    (
        # name_length  name   type  (no value: string needs 2 length bytes)
        "string-length-past-block",
        raw_frame(b"\x01a" + b"\x07" + b"\x00"),
        MalformedHeader,
        12 + 3,
    ),
    ("string-value-past-block", raw_frame(b"\x01a\x07\x00\x05abc"), MalformedHeader, 12 + 5),
    ("empty-header-name", raw_frame(b"\x00\x00"), MalformedHeader, 12),
    ("header-name-past-block", raw_frame(b"\x05ab"), MalformedHeader, 12),
    ("header-name-without-type", raw_frame(b"\x02ab"), MalformedHeader, 12),
    ("unknown-header-type-10", raw_frame(b"\x01a\x0a"), MalformedHeader, 14),
    ("unknown-header-type-255", raw_frame(b"\x01a\xff"), MalformedHeader, 14),
    ("int-past-block", raw_frame(b"\x01a\x04\x00\x00\x01"), MalformedHeader, 15),
    ("long-past-block", raw_frame(b"\x01a\x05" + b"\x00" * 7), MalformedHeader, 15),
    ("timestamp-past-block", raw_frame(b"\x01a\x08" + b"\x00" * 7), MalformedHeader, 15),
    ("byte-past-block", raw_frame(b"\x01a\x02"), MalformedHeader, 15),
    ("short-past-block", raw_frame(b"\x01a\x03\x00"), MalformedHeader, 15),
    ("uuid-past-block", raw_frame(b"\x01a\x09" + b"\x00" * 15), MalformedHeader, 15),
    ("bytes-past-block", raw_frame(b"\x01a\x06\x00\x02\x00"), MalformedHeader, 17),
    ("name-not-utf8", raw_frame(b"\x01\xff\x00"), MalformedHeader, 13),
    ("string-not-utf8", raw_frame(b"\x01a\x07\x00\x02\xc3\x28"), MalformedHeader, 17),
    ("duplicate-header", raw_frame(b"\x01a\x00\x01a\x01"), MalformedHeader, 15),
    ("truncated-prelude", _GOOD + _GOOD[:11], TruncatedMessage, len(_GOOD) + 11),
    ("truncated-body", _GOOD + _GOOD[:-1], TruncatedMessage, 2 * len(_GOOD) - 1),
]


@pytest.mark.parametrize(
    ("data", "error", "offset"), [c[1:] for c in NEGATIVE_CASES], ids=[c[0] for c in NEGATIVE_CASES]
)
def test_negative_cases(data: bytes, error: type[EventStreamError], offset: int) -> None:
    for chunks in ([data], one_byte_at_a_time(data)):
        got: list[Message] = []
        decoder = EventStreamDecoder()
        with pytest.raises(error) as info:
            for chunk in chunks:
                decoder.receive_data(chunk)
                while (ev := decoder.next_event()) is not NEED_DATA:
                    assert ev is not END_OF_STREAM
                    got.append(ev)
            decoder.receive_data(b"")
            while (ev := decoder.next_event()) is not END_OF_STREAM:
                assert ev is not NEED_DATA
                got.append(ev)
        exc = info.value
        assert isinstance(exc, RemoteProtocolError)
        assert exc.status_hint == 502
        assert exc.offset == offset
        assert f"stream offset {offset}" in exc.message
        # Only complete, valid messages before the failure point were returned.
        assert sum(16 + len(encode_headers(m.headers)) + len(m.payload) for m in got) <= offset
        # Sticky: every later call raises the same error.
        with pytest.raises(error):
            decoder.next_event()
        with pytest.raises(error):
            decoder.receive_data(b"more")
        assert decoder.failed is exc


def test_syn12_reports_both_crcs() -> None:
    with pytest.raises(ChecksumMismatch) as info:
        decode_all(fixture_bytes("syn12_bad_message_crc"))
    assert info.value.expected == 0x65B7EABD
    assert info.value.calculated == zlib.crc32(fixture_bytes("syn12_bad_message_crc")[:125])
    assert "message CRC" in info.value.message


def test_prelude_is_checked_before_waiting_for_the_body() -> None:
    decoder = EventStreamDecoder()
    huge = raw_frame(b"", b"", total_length=DEFAULT_MAX_MESSAGE_LENGTH + 1)
    decoder.receive_data(huge[:12])
    with pytest.raises(InvalidLength, match="exceeds the maximum"):
        decoder.next_event()

    decoder = EventStreamDecoder()
    decoder.receive_data(raw_frame(b"", b"x" * 100, prelude_crc=0)[:12])
    with pytest.raises(ChecksumMismatch, match="prelude CRC"):
        decoder.next_event()


def test_max_message_length_is_a_parameter() -> None:
    frame = raw_frame(b"", b"x" * 84)  # 100 bytes
    assert decode_all(frame, max_message_length=100) == [Message(headers=(), payload=b"x" * 84)]
    with pytest.raises(InvalidLength, match="exceeds the maximum of 99"):
        decode_all(frame, max_message_length=99)
    with pytest.raises(ValueError):
        EventStreamDecoder(15)
    with pytest.raises(ValueError):
        EventStreamDecoder(2**32)


def test_a_valid_max_size_message_decodes() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    frame = encode_message({":message-type": "event"}, payload)
    assert feed(split_at(frame, range(0, len(frame), 16384)), max_message_length=len(frame)) == [
        Message(headers=(Header(name=":message-type", type=HeaderType.STRING, value="event"),), payload=payload)
    ]


def test_buffer_never_exceeds_one_message_after_draining() -> None:
    data = fixture_bytes("real03_chinese_then_tool_start")
    decoder = EventStreamDecoder()
    for chunk in split_at(data, range(0, len(data), 97)):
        decoder.receive_data(chunk)
        while decoder.next_event() is not NEED_DATA:
            pass
        assert decoder.bytes_buffered < 143


# --- encoder ----------------------------------------------------------------------------------


def test_encode_message_from_mapping_keeps_order() -> None:
    frame = encode_message({":event-type": "e", ":message-type": "event"}, b"{}")
    (message,) = decode_all(frame)
    assert [h.name for h in message.headers] == [":event-type", ":message-type"]
    assert all(h.type is HeaderType.STRING for h in message.headers)
    assert message.payload == b"{}"


def test_encode_empty_message_is_16_bytes() -> None:
    frame = encode_message((), b"")
    assert len(frame) == 16
    assert frame[:8] == b"\x00\x00\x00\x10\x00\x00\x00\x00"
    assert decode_all(frame) == [Message(headers=(), payload=b"")]


def test_crc_is_iso_hdlc() -> None:
    # docs/kiro-protocol.md, EventStream framing: CRC-32/ISO-HDLC, check value 0xCBF43926.
    assert zlib.crc32(b"123456789") == 0xCBF43926
    frame = encode_message((), b"")
    assert frame[8:12] == _i(zlib.crc32(frame[:8]))
    assert frame[12:16] == _i(zlib.crc32(frame[:12]))


def test_encode_rejects_duplicate_headers() -> None:
    h = Header(name="a", type=HeaderType.BOOL_TRUE, value=True)
    with pytest.raises(LocalProtocolError, match="duplicate"):
        encode_message([h, h], b"")


@pytest.mark.parametrize(
    ("name", "type_", "value"),
    [
        ("", HeaderType.STRING, "x"),
        ("a" * 256, HeaderType.STRING, "x"),
        ("a", HeaderType.BOOL_TRUE, False),
        ("a", HeaderType.BOOL_FALSE, True),
        ("a", HeaderType.BOOL_TRUE, 1),
        ("a", HeaderType.BYTE, 128),
        ("a", HeaderType.BYTE, -129),
        ("a", HeaderType.SHORT, 2**15),
        ("a", HeaderType.INTEGER, -(2**31) - 1),
        ("a", HeaderType.LONG, 2**63),
        ("a", HeaderType.TIMESTAMP, 2**63),
        ("a", HeaderType.INTEGER, True),
        ("a", HeaderType.INTEGER, "1"),
        ("a", HeaderType.STRING, b"x"),
        ("a", HeaderType.STRING, "é" * 40000),
        ("a", HeaderType.BYTE_ARRAY, "x"),
        ("a", HeaderType.BYTE_ARRAY, b"x" * 65536),
        ("a", HeaderType.UUID, b"x" * 16),
        ("a", 7, "x"),
    ],
)
def test_invalid_headers_are_rejected_at_construction(name: str, type_: HeaderType, value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        Header(name=name, type=type_, value=value)


def test_header_limits_accepted() -> None:
    for header in [
        Header(name="a" * 255, type=HeaderType.STRING, value="x" * 65535),
        Header(name="b", type=HeaderType.BYTE_ARRAY, value=b"\xff" * 65535),
        Header(name="c", type=HeaderType.BYTE, value=-128),
        Header(name="d", type=HeaderType.LONG, value=-(2**63)),
        Header(name="e", type=HeaderType.TIMESTAMP, value=2**63 - 1),
    ]:
        (message,) = decode_all(encode_message([header], b""))
        assert message.headers == (header,)


# --- botocore as an independent oracle --------------------------------------------------------


@pytest.mark.parametrize("stem", sorted(EXPECTED) + ["syn08_all_header_types"])
def test_botocore_agrees_on_the_vectors(stem: str) -> None:
    data = fixture_bytes(stem)
    assert botocore_decode([data]) == as_botocore(feed([data]))


def test_botocore_agrees_on_the_chunked_delivery() -> None:
    assert botocore_decode(syn11_chunks()) == as_botocore(feed(syn11_chunks()))


@given(st.lists(messages_strategy(), min_size=1, max_size=6), st.lists(st.integers(0, 4000), max_size=12))
def test_botocore_agrees_on_valid_streams(messages: list[Message], cuts: list[int]) -> None:
    data = encode_all(messages)
    chunks = split_at(data, cuts)
    ours = feed(chunks)
    assert ours == messages
    assert botocore_decode(chunks) == as_botocore(ours)


class _Rejected(Exception):
    pass


@given(
    st.lists(messages_strategy(max_payload=60), min_size=1, max_size=4),
    st.data(),
)
def test_botocore_and_we_both_reject_corrupted_streams(messages: list[Message], data: st.DataObject) -> None:
    stream = bytearray(encode_all(messages))
    position = data.draw(st.integers(0, len(stream) - 1), label="position")
    stream[position] ^= data.draw(st.integers(1, 255), label="xor")
    corrupted = bytes(stream)
    # CRC-32 catches every single-byte error, so both must fail, after the same good prefix.
    ours: list[Message] = []
    decoder = EventStreamDecoder()
    decoder.receive_data(corrupted)
    decoder.receive_data(b"")
    with pytest.raises(EventStreamError):
        while (ev := decoder.next_event()) is not END_OF_STREAM:
            assert ev is not NEED_DATA
            ours.append(ev)
    theirs: list[tuple[list[tuple[str, object]], bytes]] = []
    boto_failed = False
    try:
        theirs = botocore_decode([corrupted])
    except Exception:  # botocore raises ParserError subclasses, or KeyError/UnicodeError
        boto_failed = True
    # botocore cannot be told that input ended: waiting for a message that never completes is
    # its way of not accepting it.
    assert boto_failed or len(theirs) < len(messages)
    if not boto_failed:
        assert theirs == as_botocore(ours)
    assert as_botocore(ours) == as_botocore(messages[: len(ours)])


@given(st.lists(messages_strategy(max_payload=60), min_size=1, max_size=4), st.data())
def test_truncated_streams_are_rejected(messages: list[Message], data: st.DataObject) -> None:
    frames = [encode_message(m.headers, m.payload) for m in messages]
    stream = b"".join(frames)
    boundaries = {sum(len(f) for f in frames[:i]) for i in range(len(frames) + 1)}
    cut = data.draw(st.integers(1, len(stream) - 1).filter(lambda c: c not in boundaries))
    with pytest.raises(TruncatedMessage):
        decode_all(stream[:cut])
    assert len(botocore_decode([stream[:cut]])) < len(messages)


# --- decoder internals that must not change results --------------------------------------------


def test_header_blocks_of_equal_length_are_not_confused() -> None:
    # The decoder caches parsed header blocks; same-length blocks must still be told apart.
    names = [f"{c}{c}{c}" for c in "abcdefghijklmnopqrstuvwxyz"]  # more than the cache holds
    messages = [
        Message(headers=(Header(name=":event-type", type=HeaderType.STRING, value=n),), payload=n.encode())
        for n in names * 2
    ]
    data = encode_all(messages)
    assert feed([data]) == messages
    assert feed(split_at(data, range(0, len(data), 7))) == messages


def test_receive_data_accepts_any_bytes_like() -> None:
    data = fixture_bytes("real01_simple_text")
    expected = feed([data])
    decoder = EventStreamDecoder()
    decoder.receive_data(bytearray(data[:100]))
    decoder.receive_data(memoryview(data)[100:])
    decoder.receive_data(b"")
    got = [decoder.next_event(), decoder.next_event()]
    assert got == expected
    assert decoder.next_event() is END_OF_STREAM


def test_interleaved_tiny_reads_keep_offsets_right() -> None:
    data = fixture_bytes("real03_chinese_then_tool_start")
    expected = _expected_messages("real03_chinese_then_tool_start")
    decoder = EventStreamDecoder()
    got: list[Message] = []
    fed = 0
    for chunk in split_at(data, range(0, len(data), 3)):
        decoder.receive_data(chunk)
        fed += len(chunk)
        ev = decoder.next_event()  # at most one message per read: the buffer runs ahead
        if isinstance(ev, Message):
            got.append(ev)
        assert decoder.offset + decoder.bytes_buffered == fed
    decoder.receive_data(b"")
    while (ev := decoder.next_event()) is not END_OF_STREAM:
        assert isinstance(ev, Message)
        got.append(ev)
    assert got == expected
    assert decoder.offset == len(data)


def test_messages_are_frozen_values() -> None:
    (a,) = decode_all(fixture_bytes("syn08_all_header_types"))
    (b,) = decode_all(fixture_bytes("syn08_all_header_types"))
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.payload = b""  # type: ignore[misc]


def test_next_event_narrows_for_mypy() -> None:
    # Checked by mypy --strict: both sentinels narrow away, leaving Message.
    decoder = EventStreamDecoder()
    decoder.receive_data(fixture_bytes("syn10_no_headers"))
    ev = decoder.next_event()
    if ev is NEED_DATA or ev is END_OF_STREAM:
        raise AssertionError(ev)
    assert_type(ev, Message)
    assert ev.headers == ()


def test_complete_messages_come_out_before_the_truncation_error() -> None:
    decoder = EventStreamDecoder()
    decoder.receive_data(_GOOD + _GOOD[:20])
    decoder.receive_data(b"")
    assert decoder.next_event() == Message(
        headers=(Header(name=":message-type", type=HeaderType.STRING, value="event"),), payload=b"{}"
    )
    with pytest.raises(TruncatedMessage, match="20 of 40 bytes"):
        decoder.next_event()


def test_header_blocks_parsed_by_one_decoder_serve_the_next_and_the_cache_is_bounded() -> None:
    from kiro_protocol.wire import _eventstream as es

    frame = encode_message({":event-type": "assistantResponseEvent", ":message-type": "event"}, b"{}")
    first = decode_all(frame)[0].headers
    second = decode_all(frame)[0].headers
    assert first is second and first == decode_all(frame)[0].headers
    for i in range(es._SHARED_BLOCK_ENTRIES + 10):  # blocks nobody repeats churn it, never grow it
        decode_all(encode_message({":event-type": f"e{i}"}, b""))
    assert len(es._SHARED_BLOCKS) <= es._SHARED_BLOCK_ENTRIES
    assert decode_all(frame)[0].headers == first
