"""The gateway benchmark's parts: the precomputed upstream answers like Kiro, the Claude Code request
has its real shape and size, and the load generator reads answers however they are split.

No timing is asserted: the benchmark reports, these tests check that what it measures is right.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.gateway_requests import REQUESTS, claude_code_body
from bench.loadgen import Client, run_load
from bench.precomputed_upstream import build_replies, chunked, start
from kiro_protocol import AssistantResponse, ContextUsage, Metering, parse_anthropic_request
from kiro_protocol.responses._upstream_parse import parse_all


def _response(raw: bytes) -> tuple[h11.Response, bytes, int]:
    """Parse ``raw`` as a client would: (head, body, how many chunks it came in)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", "0")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    head: h11.Response | None = None
    body = b""
    pieces = 0
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            pieces += 1
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected {event!r}")
    assert head is not None
    return head, body, pieces


def test_upstream_answer_is_a_chunked_eventstream_of_50_text_frames() -> None:
    head, body, _ = _response(build_replies(50)[b"generateAssistantResponse"])
    assert head.status_code == 200
    assert (b"content-type", b"application/vnd.amazon.eventstream") in head.headers
    assert (b"transfer-encoding", b"chunked") in head.headers
    events = parse_all(body)
    assert [type(e) for e in events] == [AssistantResponse] * 50 + [Metering, ContextUsage]


def test_one_http_chunk_per_frame() -> None:
    # h11 hands each chunk over as one Data event when the whole response is in one buffer.
    frames = [b"first", b"second", b"third"]
    _, body, pieces = _response(chunked("200 OK", [], frames))
    assert body == b"".join(frames)
    assert pieces == 3


def test_refresh_and_usage_answers_are_json_documents() -> None:
    replies = build_replies(50)
    for operation, field in ((b"refreshToken", "accessToken"), (b"token", "accessToken"), (b"getUsageLimits", "usageBreakdownList")):
        head, body, _ = _response(replies[operation])
        assert head.status_code == 200
        assert field in json.loads(body)
    assert _response(replies[b""])[0].status_code == 404


def test_claude_code_request_has_its_captured_shape_and_size() -> None:
    body, headers = claude_code_body()
    raw = REQUESTS["claude-code"].body
    assert b"more chars]" not in raw
    assert abs(len(raw) - 76340) < 76340 * 0.02  # the captured Content-Length
    assert isinstance(body["tools"], list) and len(body["tools"]) == 24
    assert body["stream"] is True
    assert headers["anthropic-version"] == "2023-06-01"
    request = parse_anthropic_request(raw)
    assert len(request.tools) == 24


@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_request_parses(name: str) -> None:
    parse_anthropic_request(REQUESTS[name].body)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True


_ANSWER = build_replies(50)[b"generateAssistantResponse"]
_JSON_ANSWER = b'HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{"usage":{"x":1}}'


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([(_ANSWER, b"\x00"), (_JSON_ANSWER, b'"usage"')]), st.lists(st.integers(0, len(_ANSWER)), max_size=12))
def test_load_client_reads_an_answer_split_anywhere(answer: tuple[bytes, bytes], cuts: list[int]) -> None:
    raw, expect = answer
    outcomes: list[tuple[bool, str]] = []
    client = Client(b"request", expect, lambda good, seconds, why: outcomes.append((good, why)))
    transport = _Transport()
    client.connection_made(transport)
    client.send()
    # Two answers back to back: the second must be read from the leftovers of the first.
    stream = raw + raw
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for a, b in zip(points, points[1:]):
        client.data_received(stream[a:b])
    closes = b"connection: close" in raw
    assert outcomes[:1] == [(True, "")]
    if closes:
        assert transport.closed
    else:
        assert outcomes == [(True, ""), (True, "")]
        assert len(transport.written) == 3  # the first request, then one after each answer


def test_load_client_counts_an_error_status_and_a_cut_answer() -> None:
    outcomes: list[bool] = []
    client = Client(b"request", b"message_stop", lambda good, seconds, why: outcomes.append(good))
    client.connection_made(_Transport())
    client.send()
    client.data_received(b"HTTP/1.1 529 x\r\ncontent-length: 12\r\n\r\nmessage_stop")
    client.data_received(_ANSWER[:100])
    client.connection_lost(None)
    assert outcomes == [False, False]


@pytest.fixture
def upstream_port() -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    ports: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(start("127.0.0.1", 0, 50))
        ports.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield ports[0]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_load_against_the_precomputed_upstream_has_no_errors(upstream_port: int) -> None:
    kiro = REQUESTS["small"]
    windows: list[int] = []
    call = type(kiro)("kiro", "/generateAssistantResponse", {"content-type": "application/json"}, b"{}", b"\x00")
    result = run_load(upstream_port, call, 4, warm=0.1, duration=0.3, windows=3, on_window=windows.append)
    assert windows == [0, 1, 2, 3]
    assert result.boundaries[0] == 0 and result.boundaries == sorted(result.boundaries)
    assert result.boundaries[-1] == result.answers
    assert result.errors == 0, result.first_error
    assert result.answers > 0
    assert result.percentile_ms(0.5) <= result.percentile_ms(0.99)
