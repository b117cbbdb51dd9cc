"""Who stands in for Kiro when no account is configured: the composition roots' one decision.

A first ``make serve`` without accounts should still answer, so the composition roots (the CLI in
``adapters/cli.py``, ``adapters.asgi.create_app`` and ``adapters.wsgi_gevent.create_app``) put the
built-in upstream simulator in front of the gateway and hand the gateway settings whose upstream
URLs point at it. They say so loudly: a WARNING banner at start-up and two fields in ``/health``.

Servers and adapters never import this module or the simulator; the simulator in turn only uses
the standalone server to listen (``tests/runtime/test_layering.py`` keeps both directions so).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import anyio.abc

from adapters.anyio_server import Server, serve_settings
from adapters.runtime.service import Prepared
from adapters.runtime.settings import Settings
from adapters.simulator import gateway_settings, simulated_upstream

__all__ = ["HealthDetails", "embedded_simulator", "serve_gateway", "simulator_banner", "simulator_process"]

log = logging.getLogger("kiro2api.server")

#: What the stand-in adds to ``/health``.
HealthDetails = Callable[[], dict[str, object]]


def simulator_banner(url: str) -> tuple[str, str, str]:
    """The start-up warning when the simulator at ``url`` answers instead of Kiro."""
    return (
        "NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset).",
        f"Answers come from the built-in upstream simulator at {url}, not from a model.",
        "Set KIRO_AUTH_TOKEN to serve real Kiro accounts (or SIMULATOR_WITHOUT_ACCOUNTS=false to refuse).",
    )


def _announce(url: str) -> HealthDetails:
    banner = simulator_banner(url)
    for line in banner:
        log.warning("%s", line)
    details: dict[str, object] = {"upstream": "simulator", "warning": banner[1]}
    return lambda: dict(details)


@contextlib.asynccontextmanager
async def embedded_simulator(settings: Settings) -> AsyncIterator[tuple[Settings, HealthDetails]]:
    """A simulator in this event loop while the context lasts: the settings to serve, the /health fields."""
    async with simulated_upstream(settings) as (sim, simulated):
        yield simulated, _announce(sim.url)


@contextlib.contextmanager
def simulator_process(settings: Settings, *, start_timeout: float = 20.0) -> Iterator[tuple[Settings, HealthDetails]]:
    """A simulator in a child process while the context lasts: the settings to serve, the /health fields.

    For the gevent server, which has no event loop to run the anyio simulator in.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "adapters.simulator", "--port", str(port), "--log-level", "WARNING"]
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the built-in simulator exited with status {child.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the built-in simulator did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        yield gateway_settings(settings, url), _announce(url)
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def serve_gateway(
    settings: Settings,
    prepared: Prepared | None = None,
    *,
    signals: bool = True,
    sock: socket.socket | None = None,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """``kiro2api serve``: the standalone server, in front of the simulator when no account is configured."""
    if not settings.answers_from_simulator:
        await serve_settings(settings, prepared, signals=signals, sock=sock, task_status=task_status)
        return
    if prepared is not None:
        # Validated with the operator's settings; the demo accounts keep their state in memory://.
        prepared.store.close()
    async with embedded_simulator(settings) as (simulated, details):
        await serve_settings(simulated, health_details=details, signals=signals, sock=sock, task_status=task_status)
