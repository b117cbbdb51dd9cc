"""What adapters/runtime/upstream.py relies on inside httpcore, checked against the installed one.

upstream.py's direct connections are its own (upstream_http1.py); for proxied calls it uses
httpcore's pool and relies on one behaviour of httpcore's HTTP/1.1 connection:

* ``_Stream.write`` relies on the order of httpcore's writes and reads (a request's head written
  first and alone, its answer read only after all of its writes) to send head and body together.

pyproject.toml pins httpcore to a range for that. When these tests fail after httpcore moved
(inside the range, or because the pin was raised), each failure says what to update in
upstream.py; after editing it, run ``scripts/unasync.py`` to regenerate ``adapters/runtime/_sync``.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import httpcore
import pytest
from packaging.requirements import Requirement

from adapters.runtime import upstream
from adapters.runtime._sync import upstream as sync_upstream

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = httpcore.Origin(b"http", b"kiro.test", 80)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

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
