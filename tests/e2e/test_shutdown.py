"""SIGTERM with a stream held open: the process ends, and each shutdown log line names its component.

``kiro2api serve`` runs two servers in one process without accounts (the gateway and the built-in
upstream simulator): their "waiting up to N s" lines must say which is which. The timeouts
here are hang guards only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "shutdown-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect(proc: subprocess.Popen[str], port: int) -> socket.socket:
    deadline = time.monotonic() + 40
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=20)
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("adapter", ["anyio", "gevent"])
def test_sigterm_with_a_held_stream_ends_the_process_and_names_each_component(adapter: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_", "SHUTDOWN_"))}
    env.update(KIRO_STATE="memory://", KIRO_CLIENT_TOKEN=TOKEN, SHUTDOWN_TIMEOUT_SECONDS="0.5", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--adapter", adapter, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = json.dumps({
            "model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": "[[sim:long:2000]] [[sim:slow:50]] a long story"}],
        }).encode()
        with _connect(proc, port) as sock:
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"x-api-key: {TOKEN}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body
            )
            received = b""
            while b"content_block_delta" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
            while chunk := sock.recv(65536):
                received += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"event: error" in received and b"overloaded_error" in received  # ended past the deadline, said so
    assert proc.stderr is not None
    lines = [line for line in proc.stderr.read().splitlines() if "shutting down" in line or "deadline" in line]
    assert any("gateway: shutting down: no new connections; waiting up to 0.5 s" in line for line in lines), lines
    assert any("gateway: shutdown deadline reached: ending 1" in line for line in lines), lines
    if adapter == "anyio":
        # The built-in simulator runs in this process: its own line says it is the simulator.
        assert any("upstream simulator: shutting down" in line for line in lines), lines
    assert all("gateway:" in line or "upstream simulator:" in line for line in lines), lines
