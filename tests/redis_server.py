"""A real ``redis-server`` on loopback for the Redis store tests (import the fixture).

Started once per test session on a free port, with persistence off, and stopped by its own pid.
When ``redis-server`` is missing the tests FAIL (not skip): the Redis store is a supported
backend, and silently skipping its tests would let it rot. ``scripts/ensure-redis-server``
installs it (``make test`` calls it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Iterator

import pytest
import redis


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a private redis-server, flushed by ``fresh_redis``."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed; run scripts/ensure-redis-server "
            "(or apt-get install redis-server) to run the Redis store tests"
        )
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def fresh_redis(redis_url: str) -> str:
    """The session's server, emptied before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url
