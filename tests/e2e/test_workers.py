"""``kiro2api serve --workers 2`` as processes: one port, shared accounts, restarts, SIGTERM (issue 17 item 3).

The simulator runs as its own process (``python -m adapters.simulator``) and counts the refreshes
every worker sends it; the gateway's workers share account state through a SQLite file. Which
worker answered is read from the one log stream: the supervisor logs ``worker N started (pid P)``
and every line of worker N carries ``wN``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.simulator import gateway_environment

from tests.e2e.conformance.conftest import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "client-token-for-the-workers-tests"
ACCOUNT = "aorAAAAAG-account-shared-by-two-workers"
STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    sim_port: int
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def started(self) -> list[tuple[int, int]]:
        """(worker, pid) of every start, in order."""
        return [(int(m[1]), int(m[2])) for line in self.lines() if (m := STARTED.search(line))]

    def workers_answering(self) -> set[int]:
        return {int(m[1]) for line in self.lines() if "kiro2api.access" in line and (m := re.search(r" w(\d+) \[", line))}

    def ask(self, text: str = "hello", *, stream: bool = False) -> tuple[int, bytes]:
        """One model request on a fresh connection (the kernel picks the worker per connection)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
                    "messages": [{"role": "user", "content": text}]}
            connection.request("POST", "/v1/messages", json.dumps(body), {"x-api-key": TOKEN, "content-type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_for_log(self, predicate: object, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():  # type: ignore[operator]
            assert self.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    # A zombie has no cmdline left to read; a live process does.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    sim_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_", "WORKERS"))}
    env["PYTHONPATH"] = str(ROOT)
    sim = subprocess.Popen(
        [sys.executable, "-m", "adapters.simulator", "--port", str(sim_port), "--pace-ms", "0", "--log-level", "WARNING"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
    )
    log = tmp_path / "gateway.log"
    gateway_env = {
        **env,
        **gateway_environment(f"http://127.0.0.1:{sim_port}", accounts=[{"auth": "Social", "refreshToken": ACCOUNT}]),
        "KIRO_CLIENT_TOKEN": TOKEN,
        "KIRO_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        "SHUTDOWN_TIMEOUT_SECONDS": "2",
    }
    proc: subprocess.Popen[bytes] | None = None
    try:
        wait_for_port(sim, sim_port)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", "serve", "--workers", "2", "--port", str(port)],
                cwd=tmp_path, env=gateway_env, stdin=subprocess.DEVNULL, stderr=out, stdout=out,
            )
        gw = Gateway(proc=proc, port=port, sim_port=sim_port, log=log)
        gw.wait_for_log(lambda: sum("listening on" in line for line in gw.lines()) == 2)
        yield gw
    finally:
        for process in (proc, sim):
            stop_process(process)


def test_two_workers_answer_on_one_port_and_refresh_the_account_once(gateway: Gateway) -> None:
    workers = dict(gateway.started())
    assert sorted(workers) == [1, 2] and workers[1] != workers[2]
    # Concurrent first requests on both workers all need the account's first token.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: gateway.ask(f"question {n}"), range(24)))
    assert all(status == 200 for status, _ in answers), answers
    assert all(json.loads(body)["type"] == "message" for _, body in answers)
    gateway.wait_for_log(lambda: len(gateway.workers_answering()) == 2)
    assert {workers[w] for w in gateway.workers_answering()} == {workers[1], workers[2]}

    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", gateway.sim_port, timeout=10)) as sim:
        sim.request("GET", "/_sim/requests")
        seen = json.loads(sim.getresponse().read())
    refreshes = [r for r in seen["requests"] if r["endpoint"].lower().startswith("refresh") or r["path"] == "/refreshToken"]
    generates = [r for r in seen["requests"] if r["endpoint"] == "generateAssistantResponse"]
    assert len(refreshes) == 1, refreshes
    assert len(generates) == 24


def test_a_killed_worker_is_restarted_and_serves_again(gateway: Gateway) -> None:
    workers = dict(gateway.started())
    os.kill(workers[1], signal.SIGKILL)
    gateway.wait_for_log(lambda: len(gateway.started()) == 3)
    worker, pid = gateway.started()[-1]
    assert worker == 1 and pid not in workers.values()
    assert any("worker 1 (pid %d) was killed by SIGKILL" % workers[1] in line for line in gateway.lines())
    gateway.wait_for_log(lambda: sum("listening on" in line for line in gateway.lines()) == 3)
    before = len(gateway.lines())
    answers = [gateway.ask(f"again {n}") for n in range(16)]
    assert all(status == 200 for status, _ in answers)
    after = gateway.lines()[before:]
    assert any(" w1 [" in line and "kiro2api.access" in line for line in after)
    assert _alive(pid) and _alive(workers[2]) and not _alive(workers[1])


def test_sigterm_stops_every_worker_within_the_shutdown_timeout(gateway: Gateway) -> None:
    workers = dict(gateway.started())
    # A stream that stalls after its first frames: still running when the shutdown timeout ends.
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "tell me a story [[sim:stall:60000]]"}]}
    connection.request("POST", "/v1/messages", json.dumps(body), {"x-api-key": TOKEN, "content-type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert b"content_block_delta" in response.read1()
    gateway.proc.send_signal(signal.SIGTERM)
    # SHUTDOWN_TIMEOUT_SECONDS=2, then 2 s to end the streams; the bound leaves room for a slow machine.
    assert gateway.proc.wait(timeout=30) == 0
    rest = response.read()  # the held stream was ended, not left hanging
    connection.close()
    assert b"event: error" in rest or b"message_stop" in rest
    assert not any(_alive(pid) for pid in workers.values())
    lines = gateway.lines()
    assert any("SIGTERM received: stopping 2 worker(s)" in line for line in lines)
    assert any("every worker stopped" in line for line in lines)
    assert not any("was killed" in line or "restarting" in line for line in lines)


def test_workers_stop_when_the_supervisor_is_killed(gateway: Gateway) -> None:
    workers = dict(gateway.started())
    gateway.proc.kill()
    gateway.proc.wait(timeout=10)
    # Orphans would keep the port and the store busy; each shuts down gracefully instead.
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers.values()):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gateway.port), timeout=2).close()
