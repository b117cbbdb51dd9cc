"""Tier (a), the pure core: a test here may open no socket and start no process.

Every test in this directory runs under ``io_guard``: creating, binding or connecting a socket,
or starting a process (``subprocess``, ``os.fork``/``posix_spawn``/``system``/``exec*``), raises
``ImpureTestError`` at the call and fails the test even if the code under test swallowed that
exception (the guard records each attempt and checks the record when the test ends).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest

from adapters.runtime.json_codec import install_json_codec


class ImpureTestError(AssertionError):
    """A test of the pure tier tried to open a socket or start a process."""


class IoGuard:
    """What the tests of the pure tier tried and were refused (one line each)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def refuse(self, what: str) -> Callable[..., object]:
        def refused(*args: object, **kwargs: object) -> object:
            self.attempts.append(what)
            raise ImpureTestError(f"the pure test tier may not {what} (move the test to tests/runtime or tests/e2e)")

        return refused


#: (owner, attribute, what the call does) for every entry point to a socket or a process.
_GUARDED: tuple[tuple[object, str, str], ...] = (
    (socket.socket, "__init__", "open a socket"),
    (socket.socket, "bind", "bind a socket"),
    (socket.socket, "connect", "connect a socket"),
    (socket.socket, "connect_ex", "connect a socket"),
    (socket, "socketpair", "open a socket pair"),
    (subprocess.Popen, "__init__", "start a process"),
    (os, "fork", "fork a process"),
    (os, "forkpty", "fork a process"),
    (os, "posix_spawn", "start a process"),
    (os, "posix_spawnp", "start a process"),
    (os, "system", "start a process"),
    (os, "execv", "replace the process"),
    (os, "execve", "replace the process"),
)


@pytest.fixture(autouse=True, scope="session")
def json_codec() -> Iterator[str]:
    """The core's JSON codec for the whole tier: ``KIRO_JSON_CODEC`` (``stdlib`` when unset).

    ``make test`` runs the tier twice, with ``stdlib`` and with ``orjson``: every test passes
    with and without the optional accelerator."""
    name = install_json_codec(os.environ.get("KIRO_JSON_CODEC", "stdlib"))
    yield name
    install_json_codec("stdlib")


@pytest.fixture(autouse=True)
def io_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoGuard]:
    guard = IoGuard()
    for owner, name, what in _GUARDED:
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, guard.refuse(what))
    yield guard
    if guard.attempts:
        pytest.fail(f"the pure test tier may open no socket and start no process; this test tried to: {', '.join(guard.attempts)}")
