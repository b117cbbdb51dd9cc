"""One access line per request (issue 18 item 3), read from the log file of a real server: the
requests refused before they were whole, a client that left mid-stream, a stream the shutdown
ended. On ``kiro2api serve`` and on gevent, whose HTTP parsing is ours (uvicorn and hypercorn log
their own parse errors: docs/deployment.md)."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conformance.conftest import PYTHON, TOKEN, Process, base_env, free_port, start
from tests.e2e.conformance.raw_http import RawConnection, request_bytes

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

COMMANDS = {
    "serve": [PYTHON, "-m", "adapters.cli", "serve", "--port", "{port}"],
    "gevent": [PYTHON, "-m", "adapters.wsgi_gevent", "--port", "{port}"],
}
JSON_AUTH = [("x-api-key", TOKEN), ("content-type", "application/json")]


def stream_request(prompt: str) -> bytes:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    return request_bytes("POST", "/v1/messages", JSON_AUTH, json.dumps(body).encode())


class Server:
    def __init__(self, name: str, tmp_path: Path) -> None:
        self.log_file = tmp_path / f"{name}.log"
        port = free_port()
        env = base_env()
        # No account: the built-in simulator answers (paced, so a stream lasts).
        env.update(
            KIRO_CLIENT_TOKEN=TOKEN, KIRO_STATE="memory://", LOG_LEVEL="INFO", LOG_FORMAT="json",
            LOG_FILE=str(self.log_file), SHUTDOWN_TIMEOUT_SECONDS="1",
        )
        self.process: Process = start(name, [p.replace("{port}", str(port)) for p in COMMANDS[name]], port, env)

    def access(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log_file.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line["logger"] == "kiro2api.access" and line.get("path") != "/health"]

    def wait_for_access(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10  # hang guard
        while len(lines := self.access()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return lines


@pytest.fixture(params=list(COMMANDS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    s = Server(request.param, tmp_path)
    yield s
    s.process.stop()


def send(port: int, data: bytes, *, cut: bool = False) -> int | None:
    conn = RawConnection.open(port)
    try:
        conn.send(data)
        if cut:
            conn.sock.shutdown(socket.SHUT_WR)
        response = conn.response()
        return None if response is None else response.status
    finally:
        conn.close()


REFUSED = [
    ("413", request_bytes("POST", "/v1/messages", JSON_AUTH, length=False)[:-2] + b"content-length: 999999999\r\n\r\n", 413),
    ("431", request_bytes("GET", "/v1/models", [("x-big", "a" * 100_000)]), 431),
    ("bad request line", b"HELLO\r\n\r\n", 400),
    # serve: 431 (the whole head is over 64 KiB); gevent: 414 (pywsgi's 8 KiB request line).
    ("long request line", request_bytes("GET", "/v1/models?" + "a" * 100_000, []), (431, 414)),
    ("bad content-length", request_bytes("POST", "/v1/messages", JSON_AUTH + [("content-length", "abc")], length=False), 400),
    ("bad chunk", request_bytes("POST", "/v1/messages", JSON_AUTH + [("transfer-encoding", "chunked")], length=False) + b"zz\r\n", 400),
]


def test_requests_refused_before_they_were_whole_have_an_access_line(server: Server) -> None:
    port = server.process.port
    statuses = [send(port, data) for _, data, _ in REFUSED]
    statuses.append(send(port, request_bytes("POST", "/v1/messages", JSON_AUTH, length=False)[:-2] + b"content-length: 50\r\n\r\n{", cut=True))
    expected = [status for _, _, status in REFUSED] + [400]
    assert all(got == want or (isinstance(want, tuple) and got in want) for got, want in zip(statuses, expected)), statuses
    lines = server.wait_for_access(len(statuses))
    logged = sorted(line["status"] for line in lines)
    assert logged == sorted(s for s in statuses if s is not None), lines
    assert all(line.get("error") for line in lines), lines


def test_a_client_that_left_mid_stream_is_logged_as_such(server: Server) -> None:
    conn = RawConnection.open(server.process.port)
    conn.send(stream_request("tell a story [[sim:long:400]] [[sim:slow:20]]"))
    assert conn.sock.recv(1000).startswith(b"HTTP/1.1 200")
    conn.close()
    (line,) = server.wait_for_access(1)
    assert line["status"] == 200 and line["error"] == "client_left", line


def test_a_stream_ended_by_the_shutdown_is_logged_as_such(server: Server) -> None:
    conn = RawConnection.open(server.process.port)
    try:
        conn.send(stream_request("tell a story [[sim:long:400]] [[sim:slow:20]]"))
        assert conn.sock.recv(1000).startswith(b"HTTP/1.1 200")
        server.process.popen.send_signal(signal.SIGTERM)
        while conn.sock.recv(65536):  # until the server ends the stream and closes
            pass
    finally:
        conn.close()
    server.process.popen.wait(15)
    (line,) = server.access()
    assert line["status"] == 200 and line["error"] == "shutdown", line
