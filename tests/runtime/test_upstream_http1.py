"""The direct upstream connection (adapters/runtime/upstream_http1.py) and its synchronous twin,
over scripted network streams: one write per request, the chunks of one read joined, the
connection reusable after a whole answer, and closed-while-idle connections told apart."""

from __future__ import annotations

import math

import httpcore
import pytest

from adapters.runtime import upstream, upstream_http1
from adapters.runtime._sync import upstream_http1 as sync_upstream_http1
from tests.runtime.test_httpcore_internals import AsyncScripted, SyncScripted
from tests.runtime.test_httpcore_internals import _Script as ScriptBase

#: A chunked answer: two chunks in the first read, the last chunk and the end in the second.
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n",
    b"1\r\nf\r\n0\r\n\r\n",
)
REQUEST = b"POST /generateAssistantResponse HTTP/1.1\r\nHost: kiro.test\r\nContent-Length: 2\r\n\r\n{}"


class _Script(ScriptBase):
    """The fake socket of tests/runtime/test_httpcore_internals.py, answering reads from
    ``reads`` (again and again with ``repeat``, else then EOF) and logging what each gave."""

    def __init__(self, *reads: bytes, repeat: bool = True) -> None:
        super().__init__()
        self.answer = list(reads)
        self.pending: list[bytes] = [] if repeat else list(reads)
        self.repeat = repeat

    def read(self) -> bytes:
        if not self.pending and self.repeat:
            self.pending = list(self.answer)
        data = self.pending.pop(0) if self.pending else b""
        self.log.append(("read", data))
        return data


@pytest.mark.anyio
async def test_a_request_is_one_write_and_the_chunks_of_one_read_leave_joined() -> None:
    script = _Script(*CHUNKED)
    connection = upstream_http1.Http1Connection(AsyncScripted(script), keepalive_expiry=30)
    flushes: list[int] = []

    async def flush() -> None:
        flushes.append(len(script.log))

    connection.wait_hook.callback = flush
    for _ in range(2):  # the second answer on the same connection
        head = await connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)
        assert head.status == 200 and ("transfer-encoding", "chunked") in head.headers
        pieces = [piece async for piece in connection.body(5)]
        assert pieces == [b"abcde", b"f"] and all(type(p) is bytes for p in pieces)
        assert connection.is_idle()
    writes = [data for kind, data in script.log if kind == "write"]
    assert writes == [REQUEST, REQUEST]
    assert flushes, "the caller's flush runs before a read that waits"


def test_the_sync_twin_reads_alike() -> None:
    script = _Script(*CHUNKED)
    connection = sync_upstream_http1.Http1Connection(SyncScripted(script), keepalive_expiry=30)
    for _ in range(2):
        head = connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)
        assert head.status == 200
        assert list(connection.body(5)) == [b"abcde", b"f"]
        assert connection.is_idle()


@pytest.mark.anyio
async def test_a_body_cut_short_is_a_connection_error() -> None:
    script = _Script(CHUNKED[0], repeat=False)
    connection = upstream_http1.Http1Connection(AsyncScripted(script), keepalive_expiry=30)
    await connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)
    pieces = []
    with pytest.raises(upstream.UpstreamConnectionError, match="broke the HTTP protocol"):
        async for piece in upstream._body(connection, 5, "http://kiro.test/", math.inf):
            pieces.append(piece)
    assert pieces == [b"abcde"]
    assert not connection.is_idle()


@pytest.mark.anyio
async def test_an_answer_that_closes_the_connection_leaves_it_unusable() -> None:
    script = _Script(b"HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", repeat=False)
    connection = upstream_http1.Http1Connection(AsyncScripted(script), keepalive_expiry=30)
    head = await connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)
    assert head.status == 400
    assert [p async for p in connection.body(5)] == [b"no"]
    assert not connection.is_idle()


@pytest.mark.anyio
async def test_a_server_that_closed_before_answering_is_told_apart_from_one_that_answered_badly() -> None:
    silent = upstream_http1.Http1Connection(AsyncScripted(_Script(repeat=False)), keepalive_expiry=30)
    with pytest.raises(ValueError, match="without answering"):
        await silent.request("POST", REQUEST, write_timeout=5, read_timeout=5)
    assert not silent.answer_started  # may be asked again on another connection
    garbled = upstream_http1.Http1Connection(AsyncScripted(_Script(b"SSH-2.0\r\n\r\n", repeat=False)),
                                            keepalive_expiry=30)
    with pytest.raises(ValueError, match="status line"):
        await garbled.request("POST", REQUEST, write_timeout=5, read_timeout=5)
    assert garbled.answer_started


@pytest.mark.anyio
async def test_the_wait_hooks_clock_ticks_while_the_upstream_is_silent_and_while_bytes_flow() -> None:
    """The runner's keep-alive clock runs in the reads: through silences (a read that timed out
    is retried) and while bytes keep coming that the client may not see (held tool calls)."""

    class Silent(AsyncScripted):
        def __init__(self, script: _Script, silences: int) -> None:
            super().__init__(script)
            self.silences = silences

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            if self.silences and self.script.log[-1:] != [("read", b"")] and len(self.script.log) > 2:
                self.silences -= 1
                raise httpcore.ReadTimeout("silence")
            return await super().read(max_bytes, timeout)

    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    script = _Script(head, b"3\r\nabc\r\n", b"2\r\nde\r\n", b"0\r\n\r\n", repeat=False)
    stream = Silent(script, silences=2)
    connection = upstream_http1.Http1Connection(stream, keepalive_expiry=30)
    ticks: list[int] = []

    async def tick() -> None:
        ticks.append(len(script.log))

    await connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)
    connection.wait_hook.tick, connection.wait_hook.tick_interval = tick, 0.0
    assert [p async for p in connection.body(5)] == [b"abc", b"de"]
    assert stream.silences == 0, "the silences were waited through, not raised"
    assert len(ticks) >= 5, f"a tick per silence and per read: {ticks}"
    assert connection.is_idle()


@pytest.mark.anyio
async def test_a_silence_longer_than_the_read_timeout_still_ends_the_read() -> None:
    class Mute(AsyncScripted):
        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            if len(self.script.log) > 2:
                raise httpcore.ReadTimeout("silence")
            return await super().read(max_bytes, timeout)

    script = _Script(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"", repeat=False)
    script.log.append(("read", b"x"))  # past the head from here on
    connection = upstream_http1.Http1Connection(Mute(script), keepalive_expiry=30)
    await connection.request("POST", REQUEST, write_timeout=5, read_timeout=5)

    async def tick() -> None:
        pass

    connection.wait_hook.tick, connection.wait_hook.tick_interval = tick, 10.0
    with pytest.raises(httpcore.ReadTimeout):
        async for _ in connection.body(0.01):
            pass
