"""What adapters/runtime/upstream.py relies on inside httpcore, checked against the installed one.

upstream.py pools httpcore's HTTP/1.1 connections itself and reaches past httpcore's public API
in two places:

* ``_DirectPool.send`` overwrites the private ``_state_lock`` of each ``AsyncHTTP11Connection``
  (and, in the generated twin, ``HTTP11Connection``) with ``_UncontendedLock``;
* ``_Stream.write`` relies on the order of httpcore's writes and reads (a request's head written
  first and alone, its answer read only after all of its writes) to send head and body together;
* ``_body`` reads a pooled connection's answer through its private ``_h11_state``,
  ``_network_stream`` and ``READ_NUM_BYTES``, leaving closing the answer to httpcore.

pyproject.toml pins httpcore to a range for that. When these tests fail after httpcore moved
(inside the range, or because the pin was raised), each failure says what to update in
upstream.py; after editing it, run ``scripts/unasync.py`` to regenerate ``adapters/runtime/_sync``.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import httpcore
import httpcore._synchronization
import pytest
from packaging.requirements import Requirement

from adapters.runtime import upstream
from adapters.runtime._sync import upstream as sync_upstream

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = httpcore.Origin(b"http", b"kiro.test", 80)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

LOCK_CHANGED = (
    "httpcore's HTTP/1.1 connection no longer keeps its state lock as `_state_lock`, entered only"
    " with `async with` (sync: `with`) once when a request starts and once when its answer is"
    " closed. adapters/runtime/upstream.py (_DirectPool.send) replaces that lock with"
    " _UncontendedLock to save a turn of the event loop per call: read httpcore/_async/http11.py,"
    " then adapt _UncontendedLock and that assignment to the new lock, or drop the assignment"
    " (correct, only slower), and run scripts/unasync.py."
)
BODY_CHANGED = (
    "httpcore's HTTP/1.1 connection no longer keeps its h11 connection as `_h11_state` and its"
    " stream as `_network_stream`, or no longer takes an answer whose body was read through them"
    " as ended and the connection as idle. adapters/runtime/upstream.py (_body) reads bodies that"
    " way to join the chunks of one read: read httpcore/_async/http11.py, adapt _body or use"
    " httpcore's reader (UpstreamClient._chunks: correct, only slower), and run scripts/unasync.py."
)
WRITES_CHANGED = (
    "httpcore's HTTP/1.1 connection no longer writes a request as its head alone first and then"
    " its body, all before it reads the answer. adapters/runtime/upstream.py (_Stream) holds the"
    " first write after a read (the head) to send it with the next write (the body) in one"
    " segment; that is correct as long as every request's writes are followed by a read (which"
    " sends what is held), but the saving may be gone or, if httpcore now writes before reading"
    " a previous answer, a write may wait for the next read. Read httpcore/_async/http11.py,"
    " update _Stream.write/read, and run scripts/unasync.py."
)


class _Script:
    """Both twins' fake socket: records what httpcore writes and reads, answers every read."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []

    def read(self) -> bytes:
        self.log.append(("read", b""))
        return ANSWER

    def write(self, buffer: bytes) -> None:
        self.log.append(("write", buffer))

    def extra(self, info: str) -> object:
        return False if info == "is_readable" else None  # no socket: upstream's _Stream asks httpcore's question


class AsyncScripted(httpcore.AsyncNetworkStream):
    def __init__(self, script: _Script) -> None:
        self.script = script

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.script.read()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.script.write(buffer)

    async def aclose(self) -> None:
        self.script.log.append(("close", b""))

    def get_extra_info(self, info: str) -> object:
        return self.script.extra(info)


class SyncScripted(httpcore.NetworkStream):
    def __init__(self, script: _Script) -> None:
        self.script = script

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.script.read()

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.script.write(buffer)

    def close(self) -> None:
        self.script.log.append(("close", b""))

    def get_extra_info(self, info: str) -> object:
        return self.script.extra(info)


class AsyncCountingLock(upstream._UncontendedLock):
    """upstream.py's replacement lock, counting how often httpcore enters it."""

    __slots__ = ("entered",)

    def __init__(self) -> None:
        super().__init__()
        self.entered = 0

    async def __aenter__(self) -> None:
        self.entered += 1
        await super().__aenter__()


class SyncCountingLock(sync_upstream._UncontendedLock):
    __slots__ = ("entered",)

    def __init__(self) -> None:
        super().__init__()
        self.entered = 0

    def __enter__(self) -> None:
        self.entered += 1
        super().__enter__()


#: (method, body) of the requests of one exchange: with a body and without.
CALLS = ((b"POST", b"{}"), (b"GET", b""))
TARGET = b"/generateAssistantResponse"


def _requests() -> list[httpcore.Request]:
    """The ``CALLS``, made as upstream.py makes them (Host and Content-Length given)."""
    url = httpcore.URL(b"http://kiro.test" + TARGET)
    requests = []
    for method, body in CALLS:
        length = [(b"Content-Length", str(len(body)).encode())] if body else []
        requests.append(httpcore.Request(method, url, headers=[(b"Host", b"kiro.test"), *length], content=body))
    return requests


async def _exchange_async(connection: httpcore.AsyncHTTP11Connection) -> None:
    for request in _requests():
        response = await connection.handle_async_request(request)
        assert await response.aread() == b"ok"
        await response.aclose()
        assert connection.is_idle(), "the connection is kept alive for the next call"


def _exchange_sync(connection: httpcore.HTTP11Connection) -> None:
    for request in _requests():
        response = connection.handle_request(request)
        assert response.read() == b"ok"
        response.close()
        assert connection.is_idle(), "the connection is kept alive for the next call"


def _check_writes(log: list[tuple[str, bytes]]) -> None:
    """Each request: its head alone, then its body, then (only then) reads of its answer."""
    cycles: list[list[tuple[str, bytes]]] = [[]]
    for i, (kind, data) in enumerate(log):
        cycles[-1].append((kind, data))
        if kind == "read" and (i + 1 == len(log) or log[i + 1][0] == "write"):
            cycles.append([])
    cycles = [c for c in cycles if c]
    assert len(cycles) == len(CALLS), f"{WRITES_CHANGED}\nlog: {log}"
    for (method, content), cycle in zip(CALLS, cycles):
        kinds = [kind for kind, _ in cycle]
        first_read = kinds.index("read")
        assert first_read > 0 and "write" not in kinds[first_read:], f"{WRITES_CHANGED}\nlog: {cycle}"
        head = cycle[0][1]
        line = method + b" " + TARGET + b" HTTP/1.1\r\n"
        assert head.startswith(line) and head.endswith(b"\r\n\r\n"), f"{WRITES_CHANGED}\nfirst write: {head!r}"
        assert head.count(b"\r\n\r\n") == 1, f"{WRITES_CHANGED}\nfirst write: {head!r}"
        body = b"".join(data for _, data in cycle[1:first_read])
        assert body == content, f"{WRITES_CHANGED}\nlog: {cycle}"


def test_the_pin_holds_the_installed_httpcore() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {
        str(requirement.specifier)
        for extra in project["project"]["optional-dependencies"].values()
        for requirement in map(Requirement, extra)
        if requirement.name == "httpcore"
    }
    assert len(pins) == 1, f"every extra of pyproject.toml should pin httpcore alike: {pins}"
    specifier = Requirement(f"httpcore{pins.pop()}").specifier
    assert any(s.operator in ("<", "<=", "==", "~=") for s in specifier), "httpcore needs an upper bound (see this file)"
    assert specifier.contains(version("httpcore")), f"httpcore {version('httpcore')} is outside the pin {specifier}"


def test_the_state_lock_is_the_private_attribute_upstream_replaces() -> None:
    async_connection = httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=AsyncScripted(_Script()))
    sync_connection = httpcore.HTTP11Connection(origin=ORIGIN, stream=SyncScripted(_Script()))
    assert isinstance(getattr(async_connection, "_state_lock", None), httpcore._synchronization.AsyncLock), LOCK_CHANGED
    assert isinstance(getattr(sync_connection, "_state_lock", None), httpcore._synchronization.Lock), LOCK_CHANGED


@pytest.mark.anyio
async def test_the_replaced_lock_is_entered_once_per_call_and_once_per_close() -> None:
    connection = httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=AsyncScripted(_Script()))
    lock = AsyncCountingLock()
    connection._state_lock = lock  # type: ignore[assignment]
    try:
        await _exchange_async(connection)
    except (AttributeError, TypeError, RuntimeError) as exc:  # another method, or entered twice at once
        pytest.fail(f"{LOCK_CHANGED}\n{exc!r}")
    assert lock.entered == 2 * len(CALLS), LOCK_CHANGED


def test_the_replaced_lock_of_the_sync_twin_is_entered_once_per_call_and_once_per_close() -> None:
    connection = httpcore.HTTP11Connection(origin=ORIGIN, stream=SyncScripted(_Script()))
    lock = SyncCountingLock()
    connection._state_lock = lock  # type: ignore[assignment]
    try:
        _exchange_sync(connection)
    except (AttributeError, TypeError, RuntimeError) as exc:
        pytest.fail(f"{LOCK_CHANGED}\n{exc!r}")
    assert lock.entered == 2 * len(CALLS), LOCK_CHANGED


@pytest.mark.anyio
async def test_a_request_is_written_head_first_and_before_its_answer_is_read() -> None:
    script = _Script()
    await _exchange_async(httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=AsyncScripted(script)))
    _check_writes(script.log)


def test_the_sync_twin_writes_a_request_head_first_and_before_its_answer_is_read() -> None:
    script = _Script()
    _exchange_sync(httpcore.HTTP11Connection(origin=ORIGIN, stream=SyncScripted(script)))
    _check_writes(script.log)


@pytest.mark.anyio
async def test_through_upstreams_stream_each_request_is_one_write() -> None:
    script = _Script()
    stream = upstream._Stream(AsyncScripted(script))
    await _exchange_async(httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=stream))
    writes = [data for kind, data in script.log if kind == "write"]
    assert len(writes) == len(CALLS), f"{WRITES_CHANGED}\nlog: {script.log}"
    assert writes[0].endswith(b"\r\n\r\n{}") and writes[1].startswith(b"GET "), f"{WRITES_CHANGED}\nlog: {script.log}"


def test_through_the_sync_twins_stream_each_request_is_one_write() -> None:
    script = _Script()
    stream = sync_upstream._Stream(SyncScripted(script))
    _exchange_sync(httpcore.HTTP11Connection(origin=ORIGIN, stream=stream))
    writes = [data for kind, data in script.log if kind == "write"]
    assert len(writes) == len(CALLS), f"{WRITES_CHANGED}\nlog: {script.log}"


#: A chunked answer: two chunks in the first read, the last chunk and the end in the second.
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n",
    b"1\r\nf\r\n0\r\n\r\n",
)


class _ChunkedScript(_Script):
    """Answers every request with ``CHUNKED``, one read at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[bytes] = []

    def read(self) -> bytes:
        self.log.append(("read", b""))
        if not self.pending:
            self.pending = list(CHUNKED)
        return self.pending.pop(0)


@pytest.mark.anyio
async def test_the_body_reader_joins_the_chunks_of_one_read_and_leaves_the_connection_reusable() -> None:
    connection = httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=AsyncScripted(_ChunkedScript()))
    request = _requests()[0]
    request.extensions["timeout"] = {"read": 5.0}
    for _ in range(2):  # the second answer on the same connection
        response = await connection.handle_async_request(request)
        try:
            pieces = [piece async for piece in upstream._body(connection, request, "http://kiro.test/")]
        except AttributeError as exc:
            pytest.fail(f"{BODY_CHANGED}\n{exc!r}")
        await response.aclose()
        assert pieces == [b"abcde", b"f"] and all(type(p) is bytes for p in pieces), BODY_CHANGED
        assert connection.is_idle(), BODY_CHANGED


def test_the_sync_twins_body_reader_joins_the_chunks_of_one_read_and_leaves_the_connection_reusable() -> None:
    connection = httpcore.HTTP11Connection(origin=ORIGIN, stream=SyncScripted(_ChunkedScript()))
    request = _requests()[0]
    request.extensions["timeout"] = {"read": 5.0}
    for _ in range(2):
        response = connection.handle_request(request)
        try:
            pieces = list(sync_upstream._body(connection, request, "http://kiro.test/"))
        except AttributeError as exc:
            pytest.fail(f"{BODY_CHANGED}\n{exc!r}")
        response.close()
        assert pieces == [b"abcde", b"f"] and all(type(p) is bytes for p in pieces), BODY_CHANGED
        assert connection.is_idle(), BODY_CHANGED


@pytest.mark.anyio
async def test_a_body_cut_short_is_a_connection_error() -> None:
    class Cut(_ChunkedScript):
        def read(self) -> bytes:
            return CHUNKED[0] if not self.log else b""

        def write(self, buffer: bytes) -> None:
            pass

    script = Cut()
    connection = httpcore.AsyncHTTP11Connection(origin=ORIGIN, stream=AsyncScripted(script))
    request = _requests()[0]
    request.extensions["timeout"] = {"read": 5.0}
    await connection.handle_async_request(request)
    script.log.append(("read", b""))
    pieces = []
    with pytest.raises(upstream.UpstreamConnectionError, match="broke the HTTP protocol"):
        async for piece in upstream._body(connection, request, "http://kiro.test/"):
            pieces.append(piece)
    assert pieces == [b"abcde"]
