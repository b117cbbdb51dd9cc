"""No account configured: answer from the built-in simulator, as ``kiro2api serve`` does.

The simulator is an anyio server, so under gevent it runs as a child process on a free
loopback port, for the life of the application.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["simulator_process", "simulator_banner"]

log = logging.getLogger("kiro2api.wsgi")


def simulator_banner(url: str) -> tuple[str, str, str]:
    """What is logged when kiro2api answers from its simulator (the wording of ``kiro2api serve``)."""
    return (
        "NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset).",
        f"Answers come from the built-in upstream simulator at {url}, not from a model.",
        "Set KIRO_AUTH_TOKEN to serve real Kiro accounts (or SIMULATOR_WITHOUT_ACCOUNTS=false to refuse).",
    )


@contextlib.contextmanager
def simulator_process(*, start_timeout: float = 20.0) -> Iterator[str]:
    """Run ``python -m adapters.simulator`` on a free port; yield its URL; stop it on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "adapters.simulator", "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]
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
        for line in simulator_banner(url):
            log.warning("%s", line)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
