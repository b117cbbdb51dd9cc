"""Every way of serving kiro2api, each in its own process on 127.0.0.1, in front of one simulator.

``gateway`` is parametrised over the four servers (``kiro2api serve``, the ASGI app under uvicorn,
the ASGI app under hypercorn, the WSGI app on gevent), so every test of this directory runs
against each: a behaviour that differs between them is a bug in an adapter. The simulator runs
with no pacing and is shared; tests tell their requests apart by a unique prompt.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator import gateway_environment

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "conformance-client-token-0123456789"
#: Opens /admin on every gateway here (test_admin.py); never a client key.
ADMIN_TOKEN = "conformance-admin-token-0123456789"
PYTHON = sys.executable
_scratch_dirs: list[str] = []


def scratch() -> str:
    """Where logs and working directories of the processes go (removed at the end of the session)."""
    if not _scratch_dirs:
        _scratch_dirs.append(tempfile.mkdtemp(prefix="kiro2api-conformance-"))
    return _scratch_dirs[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[bytes], port: int, seconds: float = 30) -> None:
    """Until ``proc`` accepts connections on ``port`` (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        assert proc.poll() is None, "the process exited before it listened"
        assert time.monotonic() < deadline, "the process did not listen"
        time.sleep(0.05)


@dataclass
class Process:
    """A server started by a fixture (ended by its own pid only)."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process(self.popen, 10)


def stop_process(popen: subprocess.Popen[bytes] | None, seconds: float = 20) -> None:
    """SIGTERM, and SIGKILL if it is still running ``seconds`` later (a hang guard)."""
    if popen is not None and popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(seconds)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)


def get(port: int, path: str, headers: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 request (no SDK), for status, headers and body."""
    return request(port, "GET", path, headers=headers, timeout=timeout)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def start(name: str, command: Sequence[str], port: int, env: Mapping[str, str], ready_path: str = "/health") -> Process:
    log = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=scratch())[1])
    workdir = tempfile.mkdtemp(prefix=f"{name}-", dir=scratch())
    with log.open("wb") as sink:
        popen = subprocess.Popen(list(command), cwd=workdir, env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
    process = Process(name=name, port=port, popen=popen, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}:\n{process.output()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _, _ = get(port, ready_path, timeout=2)
            if status < 500:
                return process
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{name} did not answer within 30 s:\n{process.output()}")


def base_env() -> dict[str, str]:
    # KIRO_JSON_CODEC passes through: `make test` runs the main suites once more with the standard
    # library's json in the gateways (the optional orjson codec is installed for the first run).
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV", "KIRO_JSON_CODEC")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


@pytest.fixture(scope="session", autouse=True)
def _scratch() -> Iterator[None]:
    yield
    for path in _scratch_dirs:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def simulator() -> Iterator[Process]:
    port = free_port()
    env = base_env()
    process = start(
        "simulator",
        [PYTHON, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0", "--history", "1000", "--log-level", "WARNING"],
        port,
        env,
    )
    yield process
    process.stop()


#: name -> (command template, serves h2c)
SERVERS: dict[str, tuple[list[str], bool]] = {
    "serve": ([PYTHON, "-m", "adapters.cli", "serve", "--port", "{port}"], True),
    "uvicorn": (
        [PYTHON, "-m", "uvicorn", "adapters.asgi:create_app", "--factory", "--host", "127.0.0.1", "--port", "{port}",
         "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
        False,
    ),
    "hypercorn": (
        [PYTHON, "-m", "hypercorn", "adapters.asgi:create_app()", "--bind", "127.0.0.1:{port}", "--graceful-timeout", "5"],
        True,
    ),
    "gevent": ([PYTHON, "-m", "adapters.wsgi_gevent", "--port", "{port}"], False),
}


@dataclass
class Gateway:
    """A running kiro2api in front of the simulator."""

    name: str
    process: Process
    simulator: Process
    #: Whether it also speaks HTTP/2 in cleartext (prior knowledge).
    h2c: bool
    token: str = TOKEN

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        return self.process.url

    def sim_requests(self) -> list[dict[str, Any]]:
        _, _, body = get(self.simulator.port, "/_sim/requests")
        records: list[dict[str, Any]] = json.loads(body)["requests"]
        return records

    def generate_calls(self, marker: str) -> list[dict[str, Any]]:
        """The simulator's records of generate calls whose body mentions ``marker``."""
        return [r for r in self.sim_requests() if r.get("endpoint") == "generateAssistantResponse" and marker in json.dumps(r.get("body"))]


def gateway_env(simulator: Process, **extra: str) -> dict[str, str]:
    env = base_env()
    env.update(gateway_environment(simulator.url))
    env.update(
        {
            "KIRO_CLIENT_TOKEN": TOKEN,
            "KIRO_ADMIN_TOKEN": ADMIN_TOKEN,
            "KIRO_STATE": "memory://",
            "LOG_LEVEL": "WARNING",
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
        }
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session", params=list(SERVERS))
def gateway(request: pytest.FixtureRequest, simulator: Process) -> Iterator[Gateway]:
    name: str = request.param
    template, h2c = SERVERS[name]
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in template]
    process = start(name, command, port, gateway_env(simulator))
    yield Gateway(name=name, process=process, simulator=simulator, h2c=h2c)
    process.stop()


@pytest.fixture
def marker() -> str:
    """A unique word to put in a prompt, to find its upstream request in the simulator's records."""
    return f"conformance-{uuid.uuid4().hex[:12]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here starts server processes: mark them ``slow``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)
