"""Fuzz targets for the upstream connection's HTTP/1.1 answer reader (invariants in
fuzz/README.md, "Upstream HTTP/1.1 answers")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol import NEED_DATA, HttpAnswerReader, ResponseEnd, ResponseHead, UpstreamHttpError
from kiro_protocol.wire._http1_client import MAX_HEAD

SEEDS = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"e\":\"bad\"}",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end",
    b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:]
    return bytes(data)


def _run(pieces: list[bytes], method: str) -> tuple[list[object], BaseException | None]:
    reader = HttpAnswerReader()
    reader.expect(method)
    events: list[object] = []
    try:
        for piece in [*pieces, b""]:
            reader.receive_data(piece)
            while (event := reader.next_event()) is not NEED_DATA:
                events.append(event)
                assert len(events) < 10_000, "the reader must not loop"
                if isinstance(event, ResponseEnd):
                    break
            if events and isinstance(events[-1], ResponseEnd):
                break
    except UpstreamHttpError as exc:
        return events, exc
    return events, None


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(c % (len(data) + 1) for c in cuts)
    return [p for p in (data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])) if p]


@given(st.one_of(mutated(), st.binary(max_size=300)), st.lists(st.integers(0, 10_000), max_size=6),
       st.sampled_from(["POST", "GET", "HEAD"]))
def test_arbitrary_bytes_give_an_answer_or_the_peers_fault(data: bytes, cuts: list[int], method: str) -> None:
    whole, error = _run([data] if data else [], method)
    split, split_error = _run(_split(data, cuts), method)
    heads = [e for e in whole if isinstance(e, ResponseHead)]
    assert len(heads) <= 1 and (not whole or whole[0] is heads[0])
    body = b"".join(e for e in whole if isinstance(e, bytes))
    assert len(body) <= len(data)
    if error is None:
        assert isinstance(whole[-1], ResponseEnd), "an answer read without error ends"
        assert 100 <= heads[0].status <= 999 and not 100 <= heads[0].status < 200
    # The same bytes, however they arrive, make the same answer or fail alike. (Before a failure,
    # pieces may have left already: body bytes are handed out as they arrive.)
    assert (error is None) == (split_error is None)
    if error is None:
        assert b"".join(e for e in split if isinstance(e, bytes)) == body
        # The head alike; the end alike but for reuse, which judges what arrived by then.
        assert [e for e in split if isinstance(e, ResponseHead)] == heads
        assert isinstance(split[-1], ResponseEnd)


@given(st.binary(min_size=1, max_size=64))
def test_a_head_that_never_ends_is_refused_at_the_limit(filler: bytes) -> None:
    reader = HttpAnswerReader()
    reader.expect("GET")
    reader.receive_data(b"HTTP/1.1 200 OK\r\nX: " + (filler.replace(b"\r", b"").replace(b"\n", b"") or b"a")
                        * (MAX_HEAD // len(filler) + 2))
    try:
        event = reader.next_event()
    except UpstreamHttpError:
        return
    assert event is NEED_DATA or isinstance(event, ResponseHead)
