"""An unlucky upstream, end to end (issue 18: items 4 and 5, and the chaos list).

Real gateway processes (``kiro2api serve``, uvicorn, hypercorn, and the gevent WSGI app for the synchronous runtime)
in front of one simulator process that closes idle kept-alive connections after a second:

* idle upstream connections that the simulator closed are let go in the background: the gateway
  holds no socket in CLOSE-WAIT to the simulator once they are closed;
* an upstream error that echoes the request's ``Authorization`` reaches the client masked;
* the upstream connection cut mid-stream: the stream ends with an ``error`` event, never with
  ``message_stop`` (docs/response.md, Failures after the stream started; 502 ``api_error``);
* the upstream connection reset (a TCP RST, from a relay in front of the simulator) mid-stream:
  the same;
* upstream silent past ``UPSTREAM_READ_TIMEOUT_SECONDS``: the same;
* the refresh endpoint down: a clear error naming the refresh failure, no hang; back up: the
  gateway recovers by itself (docs/accounts.md, Failure rules).

Every wait is bounded by a generous guard; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conformance.conftest import PYTHON, TOKEN, Process, base_env, free_port, gateway_env, request, start
from tests.runtime.test_upstream_reaper import close_wait_sockets

pytestmark = pytest.mark.slow

#: ``kiro2api serve``, the ASGI app under uvicorn and hypercorn, and the synchronous twin under gevent.
MODES: dict[str, list[str]] = {
    "serve": [PYTHON, "-m", "adapters.cli", "serve", "--port", "{port}"],
    "uvicorn": [PYTHON, "-m", "uvicorn", "adapters.asgi:create_app", "--factory", "--host", "127.0.0.1", "--port", "{port}",
                "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
    "hypercorn": [PYTHON, "-m", "hypercorn", "adapters.asgi:create_app()", "--bind", "127.0.0.1:{port}",
                  "--graceful-timeout", "5"],
    "gevent": [PYTHON, "-m", "adapters.wsgi_gevent", "--port", "{port}"],
}
READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def simulator() -> Iterator[Process]:
    port = free_port()
    command = [PYTHON, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0", "--keepalive-seconds", "1",
               "--log-level", "WARNING"]
    process = start("chaos-simulator", command, port, base_env())
    yield process
    process.stop()


@pytest.fixture(scope="module", params=list(MODES))
def gateway(request: pytest.FixtureRequest, simulator: Process) -> Iterator[Process]:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in MODES[request.param]]
    env = gateway_env(simulator, UPSTREAM_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT))
    process = start(f"chaos-{request.param}", command, port, env)
    yield process
    process.stop()
    assert "Traceback" not in process.log.read_text(errors="replace"), process.output()


def sim_post(simulator: Process, path: str, body: dict[str, Any]) -> None:
    status, _, answer = request(simulator.port, "POST", path, json.dumps(body).encode(), {"content-type": "application/json"})
    assert status == 200, answer


def ask(gateway: Process, prompt: str, *, stream: bool, timeout: float = 60.0) -> tuple[int, bytes]:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    headers = {"content-type": "application/json", "x-api-key": TOKEN, "anthropic-version": "2023-06-01"}
    status, _, answer = request(gateway.port, "POST", "/v1/messages", json.dumps(body).encode(), headers, timeout=timeout)
    return status, answer


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.decode().split("\n\n"):
        name = data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if name is not None and data is not None:
            events.append((name, json.loads(data)))
    return events


def poll(condition: Callable[[], bool], guard: float = 60.0) -> None:
    """Wait until ``condition()``; ``guard`` only turns a hang into a failure."""
    deadline = time.monotonic() + guard
    while not condition():
        assert time.monotonic() < deadline, "still not so after the hang guard"
        time.sleep(0.1)


def test_idle_connections_closed_upstream_do_not_stay_half_closed(gateway: Process, simulator: Process) -> None:
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda i: ask(gateway, f"burst {i}", stream=True), range(12)))
    assert all(status == 200 and b"message_stop" in body for status, body in answers)
    # The simulator closes each of them a second after its answer; the gateway must let go of its
    # end in the background, without another request coming.
    poll(lambda: close_wait_sockets(gateway.popen.pid, simulator.port) == 0)
    status, body = ask(gateway, "after the burst", stream=False)
    assert status == 200, body


def test_an_upstream_echoing_the_authorization_header_is_masked(gateway: Process) -> None:
    status, body = ask(gateway, "echo please [[sim:echo-auth]]", stream=False)
    assert status == 400
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    message = error["error"]["message"]
    assert "Unexpected header Authorization" in message and "***" in message
    assert not re.search(r"Bearer\s+(?!\*\*\*)\S", message), message


@pytest.mark.parametrize("prompt", ["cut me [[sim:drop]]", f"go quiet [[sim:stall:{(READ_TIMEOUT + 3) * 1000}]]"])
def test_a_stream_that_breaks_ends_with_an_error_event(gateway: Process, prompt: str) -> None:
    status, body = ask(gateway, prompt, stream=True)
    assert status == 200
    events = sse_events(body)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names  # text had reached the client
    assert names[-1] == "error", names
    assert "message_stop" not in names and "message_delta" not in names
    assert events[-1][1]["error"]["type"] == "api_error"


@pytest.mark.parametrize("prompt", ["cut me [[sim:drop]]", f"go quiet [[sim:stall:{(READ_TIMEOUT + 3) * 1000}]]"])
def test_a_non_streamed_answer_that_breaks_is_a_502(gateway: Process, prompt: str) -> None:
    status, body = ask(gateway, prompt, stream=False)
    assert status == 502, body
    assert json.loads(body)["error"]["type"] == "api_error"


def test_the_refresh_endpoint_down_then_back(gateway: Process, simulator: Process) -> None:
    status, body = ask(gateway, "before the outage", stream=False)
    assert status == 200, body
    sim_post(simulator, "/_sim/refresh-outage", {"seconds": 3600})
    try:
        # Kiro forgets the access token: the gateway must refresh, and the refresh endpoint is down.
        sim_post(simulator, "/_sim/expire-tokens", {})
        status, body = ask(gateway, "during the outage", stream=False)
        # docs/accounts.md: the account is out ("token refresh failed"), and this request met
        # upstream failures (the 403), so their status: 502 api_error.
        assert status == 502, body
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == "api_error"
        assert "token refresh failed" in error["error"]["message"], error
        status, body = ask(gateway, "during the outage, streamed", stream=True)
        assert status in (429, 502, 503), body  # refused before the stream began, in the client's dialect
        assert json.loads(body)["type"] == "error"
    finally:
        sim_post(simulator, "/_sim/refresh-outage", {"seconds": 0})

    # Back up: after its refresh back-off (10 s) the account serves again, by itself.
    def served() -> bool:
        return ask(gateway, "after the outage", stream=False)[0] == 200

    poll(served, guard=120.0)


#: A request holding this word has its connection reset by ``ResettingRelay`` once its answer began.
RESET_WORD = b"chaos-reset-me"


class ResettingRelay:
    """A loopback TCP relay in front of the simulator. Transparent, except that the connection of a
    request holding ``RESET_WORD`` is reset (RST, SO_LINGER 0) after three reads of its answer's
    body were passed on, which is what a middlebox or a crashed upstream host does."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.resets = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(down,), daemon=True).start()

    def _relay(self, down: socket.socket) -> None:
        armed = threading.Event()
        with down, socket.create_connection(("127.0.0.1", self._target)) as up:

            def upward() -> None:
                try:
                    while data := down.recv(65536):
                        if RESET_WORD in data:
                            armed.set()
                        up.sendall(data)
                    up.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            reader = threading.Thread(target=upward, daemon=True)
            reader.start()
            answer, body_reads = b"", 0
            try:
                while data := up.recv(65536):
                    down.sendall(data)
                    if not armed.is_set():
                        continue
                    if b"\r\n\r\n" in answer:
                        body_reads += 1
                    answer += data
                    if body_reads >= 3:
                        # The reader thread's recv() holds the socket open: wake it (SHUT_RD sends
                        # nothing), then close with linger 0, which sends the RST.
                        down.shutdown(socket.SHUT_RD)
                        reader.join(10)
                        down.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.resets += 1
                        return  # leaving the block closes ``down``
                down.shutdown(socket.SHUT_WR)
            except OSError:
                pass


@pytest.fixture(scope="module", params=list(MODES))
def reset_gateway(request: pytest.FixtureRequest, simulator: Process) -> Iterator[tuple[Process, ResettingRelay]]:
    relay = ResettingRelay(simulator.port)
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in MODES[request.param]]
    env = gateway_env(simulator, KIRO_UPSTREAM_URL=f"http://127.0.0.1:{relay.port}")
    process = start(f"chaos-reset-{request.param}", command, port, env)
    yield process, relay
    process.stop()
    relay.close()
    assert "Traceback" not in process.log.read_text(errors="replace"), process.output()


def test_an_upstream_reset_mid_stream_ends_with_an_error_event(reset_gateway: tuple[Process, ResettingRelay]) -> None:
    gateway, relay = reset_gateway
    status, body = ask(gateway, f"{RESET_WORD.decode()} [[sim:slow:150]]", stream=True, timeout=60)
    assert status == 200
    names = [name for name, _ in sse_events(body)]
    assert relay.resets == 1
    assert names[0] == "message_start" and names[-1] == "error", names
    assert "message_stop" not in names and "message_delta" not in names
    assert sse_events(body)[-1][1]["error"]["type"] == "api_error"
    # Non-streamed: the documented 502 api_error; and the gateway still serves afterwards.
    status, body = ask(gateway, f"{RESET_WORD.decode()} again [[sim:slow:150]]", stream=False, timeout=60)
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error", body
    assert ask(gateway, "no reset this time", stream=False)[0] == 200
