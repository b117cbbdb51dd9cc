"""The upstream connection's HTTP/1.1 framing (kiro_protocol/wire/_http1_client.py): requests
written whole, answers read back by Content-Length, chunks or the end of the connection, and
every malformed answer refused as the peer's fault."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol import NEED_DATA, HttpAnswerReader, ResponseEnd, ResponseHead, UpstreamHttpError, encode_request, may_send_again


def read_all(reader: HttpAnswerReader, *pieces: bytes) -> list[object]:
    """Feed ``pieces`` one at a time, collecting events until each needs more data."""
    events: list[object] = []
    for piece in pieces:
        reader.receive_data(piece)
        while (event := reader.next_event()) is not NEED_DATA:
            events.append(event)
    return events


def body_of(events: list[object]) -> bytes:
    return b"".join(e for e in events if isinstance(e, bytes))


def answer(method: str, *pieces: bytes) -> list[object]:
    reader = HttpAnswerReader()
    reader.expect(method)
    return read_all(reader, *pieces)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


def test_encode_request_is_head_and_body_in_one_piece() -> None:
    data = encode_request("POST", "/generateAssistantResponse", [("Host", "q.us-east-1.amazonaws.com"),
                                                                  ("Content-Length", "2")], b"{}")
    assert data == (b"POST /generateAssistantResponse HTTP/1.1\r\nHost: q.us-east-1.amazonaws.com\r\n"
                    b"Content-Length: 2\r\n\r\n{}")


@pytest.mark.parametrize("name, value", [("X-A", "a\r\nEvil: 1"), ("X\nB", "v"), ("", "v"), ("X-A", "a\x00")])
def test_encode_request_refuses_a_header_that_could_split_the_request(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        encode_request("GET", "/", [(name, value)], b"")


def test_a_chunked_answer_leaves_everything_of_one_read_in_one_piece() -> None:
    events = answer("POST", CHUNKED_HEAD + chunked(b"abc", b"de", b"f"))
    head, piece, end = events
    assert isinstance(head, ResponseHead) and head.status == 200
    assert ("transfer-encoding", "chunked") in head.headers
    assert piece == b"abcdef" and type(piece) is bytes
    assert end == ResponseEnd(reusable=True)


def test_chunk_extensions_and_trailers_are_read_and_ignored() -> None:
    body = b"3;name=value\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n"
    assert body_of(answer("POST", CHUNKED_HEAD + body)) == b"abc"


def test_a_large_chunk_is_handed_out_as_it_arrives() -> None:
    reader = HttpAnswerReader()
    reader.expect("POST")
    events = read_all(reader, CHUNKED_HEAD + b"a\r\n01234", b"56789\r\n0\r\n\r\n")
    assert [e for e in events if isinstance(e, bytes)] == [b"01234", b"56789"]
    assert events[-1] == ResponseEnd(True)


def test_content_length_and_a_second_answer_on_the_same_connection() -> None:
    reader = HttpAnswerReader()
    reader.expect("POST")
    first = read_all(reader, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nno", b" go")
    assert body_of(first) == b"no go" and first[-1] == ResponseEnd(True) and reader.idle
    reader.expect("GET")
    second = read_all(reader, b"HTTP/1.1 204 No Content\r\n\r\n")
    assert second == [ResponseHead(204, ()), ResponseEnd(True)]


def test_interim_answers_are_skipped() -> None:
    events = answer("POST", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert isinstance(events[0], ResponseHead) and events[0].status == 200 and body_of(events) == b"x"


def test_a_head_answer_has_no_body_whatever_its_length_says() -> None:
    events = answer("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    assert events[-1] == ResponseEnd(True)


@pytest.mark.parametrize("head, reusable", [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
])
def test_whether_the_connection_may_carry_another_request(head: bytes, reusable: bool) -> None:
    reader = HttpAnswerReader()
    reader.expect("GET")
    events = read_all(reader, head)
    assert events[-1] == ResponseEnd(reusable) and reader.idle is reusable


def test_a_body_without_length_runs_to_the_end_of_the_connection() -> None:
    events = answer("GET", b"HTTP/1.1 200 OK\r\n\r\nsome", b" text", b"")
    assert body_of(events) == b"some text" and events[-1] == ResponseEnd(False)


def test_an_answer_longer_than_its_frame_spoils_the_connection() -> None:
    reader = HttpAnswerReader()
    reader.expect("GET")
    events = read_all(reader, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA")
    assert events[-1] == ResponseEnd(False) and not reader.idle
    with pytest.raises(RuntimeError):
        reader.expect("GET")


@pytest.mark.parametrize("data, message", [
    (b"", "without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "before a complete answer head"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
    (b"HTTP/2 200\r\n\r\n", "status line"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 000 Zero\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "control character"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a number"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "3 bytes before the end"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    (CHUNKED_HEAD + b"zz\r\n", "not hexadecimal"),
    (CHUNKED_HEAD + b"\r\n", "not hexadecimal"),
    (CHUNKED_HEAD + b"2\r\nabc\r\n", "longer than its size"),
    (CHUNKED_HEAD + b"3\r\nab", "in the middle of the answer's body"),
    (CHUNKED_HEAD + b"0\r\nbad trailer\r\n\r\n", "malformed header"),
    (CHUNKED_HEAD + b"1" * 5000, "size line is too long"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000, "longer than"),
])
def test_malformed_answers_are_the_peers_fault(data: bytes, message: str) -> None:
    reader = HttpAnswerReader()
    reader.expect("POST")
    with pytest.raises(UpstreamHttpError, match=message):
        read_all(reader, data, b"")


def test_data_after_the_end_of_the_connection_is_refused() -> None:
    reader = HttpAnswerReader()
    reader.expect("GET")
    reader.receive_data(b"")
    with pytest.raises(UpstreamHttpError, match="after the end"):
        reader.receive_data(b"x")


def test_a_second_request_before_the_answer_was_read_is_the_callers_fault() -> None:
    reader = HttpAnswerReader()
    reader.expect("GET")
    with pytest.raises(RuntimeError):
        reader.expect("GET")


@given(st.lists(st.binary(max_size=40), max_size=12), st.data())
def test_any_split_of_a_chunked_answer_gives_the_same_body(chunks: list[bytes], data: st.DataObject) -> None:
    chunks = [c for c in chunks if c]
    wire = CHUNKED_HEAD + chunked(*chunks, trailer=b"X-T: 1\r\n")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    events = answer("POST", *[p for p in pieces if p])
    assert body_of(events) == b"".join(chunks)
    assert events[-1] == ResponseEnd(True)
    assert sum(isinstance(e, ResponseHead) for e in events) == 1


def test_a_request_may_go_again_only_after_a_reused_connection_broke_before_any_answer() -> None:
    reader = HttpAnswerReader()
    reader.expect("POST")
    assert not reader.answer_started
    assert may_send_again(reused_connection=True, answer_started=reader.answer_started)
    assert not may_send_again(reused_connection=False, answer_started=False)  # a new connection's failure is the call's
    reader.receive_data(b"HTTP/1.1 5")
    assert reader.answer_started
    assert not may_send_again(reused_connection=True, answer_started=reader.answer_started)
    assert read_all(reader, b"00 Oops\r\nContent-Length: 0\r\n\r\n")[-1] == ResponseEnd(True)
    reader.expect("POST")  # the next request on the connection starts afresh
    assert not reader.answer_started
