"""``kiro2api serve --workers N``: N server processes on one port, watched by a supervisor.

The supervisor binds one listening socket per worker on the same port (``SO_REUSEPORT``: the
kernel spreads new connections over them evenly), forks the workers and restarts one that dies,
on the same socket: connections queued there while it was down are served by its successor. It
runs no event loop and holds no store connection; the workers share account state through
KIRO_STATE, as replicas do.

Signals: SIGTERM or SIGINT to the supervisor starts a graceful shutdown of every worker (each
drains as a lone server does, for up to SHUTDOWN_TIMEOUT_SECONDS); a second one ends their
running requests; a worker still alive well after the timeout is killed. The workers ignore
SIGTERM and SIGINT themselves and hear the supervisor's SIGUSR1 instead: a Ctrl-C on the terminal
or a service manager signalling the whole group would otherwise reach each worker twice, and a
second signal means "end the running requests now". A worker whose supervisor dies shuts down.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import anyio
import anyio.abc

from adapters.runtime.client_token_file import announce_generated_token
from adapters.runtime.logging import set_worker
from adapters.runtime.settings import Settings
from adapters.runtime.startup import STARTUP_FAILED, listen_problem

from ._server import Server, handle_signals

__all__ = ["bind_sockets", "run_workers"]

log = logging.getLogger("kiro2api.server")

#: The supervisor's word to a worker: shut down gracefully (a second one: end running requests).
STOP_SIGNAL = signal.SIGUSR1
#: A worker that dies sooner than this after its start is restarted after a growing delay.
_QUICK_DEATH = 5.0
_MAX_RESTART_DELAY = 30.0
#: Beyond the shutdown timeout and the terminate grace, before a worker is killed.
_KILL_MARGIN = 5.0
_TERMINATE_GRACE = 2.0
_TICK = 0.1
_PR_SET_PDEATHSIG = 1

#: ``serve_settings`` or ``serve_gateway``: ``serve(settings, prepared, *, signals, sock, task_status)``.
Serve = Callable[..., Awaitable[None]]


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one ``host:port`` (port 0: a free one, the same for all).

    Raises:
        OSError: the address is not ours or the port is taken, also by another ``--workers`` server
            (a probe without ``SO_REUSEPORT`` goes first, so this one cannot share its port).
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = (address[0], probe.getsockname()[1], *address[2:])
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclasses.dataclass(slots=True)
class _Slot:
    """One worker's place: its number, socket, the process in it now and its restart back-off."""

    worker: int
    sock: socket.socket
    pid: int | None = None
    started: float = 0.0
    restart_at: float = 0.0
    delay: float = 0.0


class _Supervisor:
    def __init__(self, settings: Settings, serve: Serve, sockets: list[socket.socket]) -> None:
        self._settings = settings
        self._serve = serve
        self._slots = [_Slot(worker=n, sock=sock) for n, sock in enumerate(sockets, start=1)]
        self._signals: list[int] = []
        self._stopping_since: float | None = None

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for slot in self._slots:
            self._start(slot)
        while True:
            self._reap()
            now = time.monotonic()
            while self._signals:
                self._stop(signal.Signals(self._signals.pop(0)))
            if self._stopping_since is None:
                for slot in self._slots:
                    if slot.pid is None and now >= slot.restart_at:
                        self._start(slot)
            elif all(slot.pid is None for slot in self._slots):
                log.info("every worker stopped")
                return 0
            elif now > self._stopping_since + self._settings.shutdown_timeout + _TERMINATE_GRACE + _KILL_MARGIN:
                for slot in self._slots:
                    if slot.pid is not None:
                        log.warning("worker %d (pid %d) did not stop in time: killed", slot.worker, slot.pid)
                        self._send(slot, signal.SIGKILL)
                self._stopping_since = now - self._settings.shutdown_timeout - _TERMINATE_GRACE
            time.sleep(_TICK)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _stop(self, signum: signal.Signals) -> None:
        if self._stopping_since is None:
            log.info("%s received: stopping %d worker(s)", signum.name, len(self._slots))
            self._stopping_since = time.monotonic()
        else:
            log.warning("%s again: workers end their running requests now", signum.name)
        for slot in self._slots:
            self._send(slot, STOP_SIGNAL)

    def _send(self, slot: _Slot, signum: int) -> None:
        if slot.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signum)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self._slots if s.pid == pid), None)
            if slot is None:
                continue
            slot.pid = None
            if self._stopping_since is not None:
                log.info("worker %d (pid %d) stopped", slot.worker, pid)
                continue
            now = time.monotonic()
            # A worker that keeps dying at start (a store that cannot open) is not restarted in a loop.
            slot.delay = min(_MAX_RESTART_DELAY, max(1.0, slot.delay * 2)) if now - slot.started < _QUICK_DEATH else 0.0
            slot.restart_at = now + slot.delay
            log.warning(
                "worker %d (pid %d) %s; restarting it%s",
                slot.worker,
                pid,
                _how_it_ended(status),
                f" in {slot.delay:.0f} s" if slot.delay else "",
            )

    def _start(self, slot: _Slot) -> None:
        # Whatever sits in a stdio buffer would otherwise be written twice.
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _worker_process(slot.worker, slot.sock, self._slots, parent, self._settings, self._serve)
        slot.pid = pid
        slot.started = time.monotonic()
        log.info("worker %d started (pid %d)", slot.worker, pid)


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _worker_process(
    worker: int, sock: socket.socket, slots: list[_Slot], parent: int, settings: Settings, serve: Serve
) -> NoReturn:
    status = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        for slot in slots:
            if slot.sock is not sock:
                slot.sock.close()
        set_worker(worker)
        _stop_with_parent(parent)
        anyio.run(_serve_worker, settings, serve, sock)
        status = 0
    except BaseException:
        log.exception("worker %d failed", worker)
    finally:
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        # Not the supervisor's exit path: its atexit handlers and buffers are not this process's.
        os._exit(status)


def _stop_with_parent(parent: int) -> None:
    # Linux: the kernel sends STOP_SIGNAL when the supervisor dies, even by SIGKILL.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(STOP_SIGNAL))
    if os.getppid() != parent:
        raise SystemExit("the supervisor is gone")


async def _serve_worker(settings: Settings, serve: Serve, sock: socket.socket) -> None:
    async with anyio.create_task_group() as tg:

        async def serve_then_stop(*, task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED) -> None:
            await serve(settings, None, signals=False, sock=sock, task_status=task_status)
            tg.cancel_scope.cancel()

        server: Server = await tg.start(serve_then_stop)
        tg.start_soon(handle_signals, server, (STOP_SIGNAL,))


def run_workers(settings: Settings, serve: Serve) -> int:
    """Serve with ``settings.workers`` processes until SIGTERM/SIGINT; the exit status."""
    try:
        sockets = bind_sockets(settings.host, settings.port, settings.workers)
    except OSError as exc:
        print(f"kiro2api: {listen_problem(settings, exc)}", file=sys.stderr)
        return STARTUP_FAILED
    if settings.client_token_generated:
        # Generated once, here, so every worker accepts the same token; said once, not per worker.
        announce_generated_token(settings)
        settings = dataclasses.replace(settings, client_token_generated=False)
    if settings.state_url.startswith("memory://") and settings.auth_token_json is not None:
        log.warning("KIRO_STATE is memory://: each worker keeps its own account state (use SQLite or Redis to share it)")
    set_worker(0)
    log.info("starting %d workers on %s:%d", settings.workers, settings.host, sockets[0].getsockname()[1])
    try:
        return _Supervisor(settings, serve, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
