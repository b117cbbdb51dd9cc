"""Chaos for the state store on every serving mode (issue 18): redis-server killed mid-run and
restarted; the SQLite file locked by another process. While the store is away, model requests get
the core's 503 in the client's dialect (never a 500, a hang or a traceback); when it returns,
the gateway recovers by itself and no account state, counter or usage record is lost.

The simulator and the gateway run as processes; the test process plays the operator's bad day
(SIGKILL to redis-server, a sqlite3 connection holding ``BEGIN EXCLUSIVE``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from adapters.runtime.stores import StateStore, open_store
from adapters.simulator import gateway_environment
from kiro_protocol import parse_accounts

from tests.e2e.conformance.conftest import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "client-token-for-the-store-chaos-tests"
ACCOUNT = "aorAAAAAG-account-for-the-store-chaos-tests"
#: Hang guard of one request: far above the SQLite busy timeout (3 s); never a timing assertion.
REQUEST_GUARD = 60.0


@dataclass
class Answer:
    status: int
    body: bytes
    dialect: str
    headers: list[tuple[str, str]]

    def check(self) -> None:
        """A success, or the store's 503 in the client's dialect; anything else fails the test."""
        if self.status == 200:
            return
        assert self.status == 503, (self.status, self.body)
        error = json.loads(self.body)
        if self.dialect == "anthropic":
            assert error["type"] == "error" and error["error"]["type"] == "overloaded_error", error
            message = error["error"]["message"]
        else:
            message = error["error"]["message"]
            assert error["error"]["type"], error
        assert "state store is unavailable" in message, error


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    #: Every answer to a model request so far, in order.
    answers: list[Answer] = field(default_factory=list)

    def successes(self) -> int:
        return sum(a.status == 200 for a in self.answers)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def ask(self, dialect: str = "anthropic", *, stream: bool = False) -> Answer:
        """One model request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_GUARD)
        try:
            if dialect == "anthropic":
                path = "/v1/messages"
                body: dict[str, object] = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
                                           "messages": [{"role": "user", "content": "hello"}]}
                headers = {"x-api-key": TOKEN}
            else:
                path = "/v1/chat/completions"
                body = {"model": "claude-sonnet-4-5", "stream": stream, "messages": [{"role": "user", "content": "hello"}]}
                headers = {"authorization": f"Bearer {TOKEN}"}
            connection.request("POST", path, json.dumps(body), {**headers, "content-type": "application/json"})
            response = connection.getresponse()
            answer = Answer(response.status, response.read(), dialect, [(k.lower(), v) for k, v in response.getheaders()])
        finally:
            connection.close()
        self.answers.append(answer)
        answer.check()
        return answer

    def ask_until_ok(self, seconds: float = 60) -> Answer:
        """Ask until a request succeeds: the gateway recovers by itself (no restart, no signal)."""
        deadline = time.monotonic() + seconds
        while True:
            answer = self.ask()
            if answer.status == 200:
                return answer
            assert self.proc.poll() is None and time.monotonic() < deadline, "the gateway did not recover"
            time.sleep(0.2)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**_clean_env(), "PYTHONPATH": str(ROOT)}
    sim = subprocess.Popen(
        [sys.executable, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0", "--log-level", "WARNING"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(sim, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(sim)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_", "WORKERS"))}


#: ``kiro2api serve``, the ASGI app under uvicorn and hypercorn, the synchronous twin under gevent.
MODES: dict[str, list[str]] = {
    "serve": [sys.executable, "-m", "adapters.cli", "serve", "--port", "{port}"],
    "uvicorn": [sys.executable, "-m", "uvicorn", "adapters.asgi:create_app", "--factory", "--host", "127.0.0.1",
                "--port", "{port}", "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
    "hypercorn": [sys.executable, "-m", "hypercorn", "adapters.asgi:create_app()", "--bind", "127.0.0.1:{port}",
                  "--graceful-timeout", "2"],
    "gevent": [sys.executable, "-m", "adapters.wsgi_gevent", "--port", "{port}"],
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def _gateway(tmp_path: Path, simulator: str, state: str, mode: str = "serve") -> Iterator[Gateway]:
    port = free_port()
    env = {
        **_clean_env(),
        "PYTHONPATH": str(ROOT),
        **gateway_environment(simulator, accounts=[{"auth": "Social", "refreshToken": ACCOUNT}]),
        "KIRO_CLIENT_TOKEN": TOKEN,
        "KIRO_STATE": state,
        "SHUTDOWN_TIMEOUT_SECONDS": "2",
    }
    log = tmp_path / "gateway.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [part.replace("{port}", str(port)) for part in MODES[mode]],
                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )
        wait_for_port(proc, port)
        yield Gateway(proc=proc, port=port, log=log)
    finally:
        stop_process(proc)


def _settled(read: Callable[[], int], expected: int, seconds: float = 30) -> int:
    """``read()`` once it reaches ``expected`` (background writers run every second), or its
    last value at the hang guard."""
    deadline = time.monotonic() + seconds
    value = read()
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def _check_nothing_lost(url: str, gateway: Gateway) -> None:
    store = open_store(url)
    try:
        _check_store(store, gateway.successes(), len(gateway.answers))
    finally:
        store.close()


def _check_store(store: StateStore, successes: int, requests: int) -> None:
    (account,) = parse_accounts(json.dumps([{"auth": "Social", "refreshToken": ACCOUNT}]))
    account_id = account.account_id
    # Every success counted once (a held write applied once, not lost, not twice).
    assert _settled(lambda: int(store.counters(account_id).get("requests", 0)), successes) == successes
    state = store.load_many([account_id])[account_id]
    assert state.access_token and state.expires_at > time.time()
    # One usage record per model request, the refused ones included.
    assert _settled(lambda: len(store.usage()), requests) == requests


class RedisServer:
    """A redis-server that survives SIGKILL with its data: append-only file, fsync per write."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; run scripts/ensure-redis-server")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        try:
            while True:
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    client.ping()
                    return
                assert self.proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_redis_killed_mid_run_gets_503_then_recovers_with_nothing_lost(tmp_path: Path, simulator: str, mode: str) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        with _gateway(tmp_path, simulator, server.url, mode) as gateway:
            up = [gateway.ask(), gateway.ask("openai"), gateway.ask(stream=True)]
            assert [a.status for a in up] == [200, 200, 200]
            server.kill()
            down = [gateway.ask(), gateway.ask("openai"), gateway.ask(stream=True), gateway.ask("openai", stream=True)]
            assert [a.status for a in down] == [503] * 4
            assert all(int(dict(a.headers)["retry-after"]) >= 1 for a in down)
            server.start()
            gateway.ask_until_ok()
            assert [gateway.ask().status, gateway.ask("openai").status] == [200, 200]
            _check_nothing_lost(server.url, gateway)
            log = gateway.text()
        assert "Traceback" not in log and "status=500" not in log
        # One warning line per refused request, no traceback.
        assert log.count("state store is unavailable") >= 4
    finally:
        server.stop()


def test_a_locked_sqlite_file_gets_success_or_503_and_recovers_when_released(tmp_path: Path, simulator: str, mode: str) -> None:
    path = tmp_path / "state.db"
    with _gateway(tmp_path, simulator, f"sqlite:///{path}", mode) as gateway:
        assert [gateway.ask().status, gateway.ask("openai").status] == [200, 200]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process's writer that does not let go
        try:
            # Each answer is a success (it waited briefly) or the clear 503 (Answer.check); the
            # request guard turns a hang into a failure. Ask until the lock is felt.
            locked: list[Answer] = []
            while not any(a.status == 503 for a in locked):
                locked.append(gateway.ask("openai" if len(locked) % 2 else "anthropic"))
                assert len(locked) < 20, "the lock was never felt"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        gateway.ask_until_ok()
        assert [gateway.ask(stream=True).status, gateway.ask("openai").status] == [200, 200]
        _check_nothing_lost(f"sqlite:///{path}", gateway)
        log = gateway.text()
    assert "Traceback" not in log and "status=500" not in log
