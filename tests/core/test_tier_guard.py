"""The pure tier's guard is not vacuous: each way to a socket or a process is refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.core.conftest import ImpureTestError, IoGuard


@pytest.mark.parametrize(
    ("attempt", "what"),
    [
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "open a socket"),
        (lambda: socket.create_connection(("127.0.0.1", 9)), "open a socket"),
        (lambda: socket.socketpair(), "open a socket pair"),
        (lambda: subprocess.run([sys.executable, "-c", "pass"], check=False), "start a process"),
        (lambda: os.system("true"), "start a process"),
        (lambda: os.fork(), "fork a process"),
    ],
    ids=["socket", "create_connection", "socketpair", "subprocess", "system", "fork"],
)
def test_guard_refuses(io_guard: IoGuard, attempt: Callable[[], object], what: str) -> None:
    with pytest.raises(ImpureTestError, match=f"may not {what}"):
        attempt()
    assert io_guard.attempts == [what]
    io_guard.attempts.clear()  # the refusal was the point of this test: do not fail it


def test_a_swallowed_refusal_is_still_recorded(io_guard: IoGuard) -> None:
    """Code under test that catches every exception cannot hide the attempt."""
    try:
        socket.socket()
    except Exception:
        pass
    assert io_guard.attempts == ["open a socket"]
    io_guard.attempts.clear()
