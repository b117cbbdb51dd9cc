"""No account configured: answer from the built-in simulator, as ``kiro2api serve`` does."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import anyio

from adapters.runtime.settings import Settings

__all__ = ["start_simulator", "simulator_banner"]

log = logging.getLogger("kiro2api.asgi")


async def start_simulator(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[Settings, Callable[[], dict[str, object]]]:
    """Run the simulator for the life of ``stack``; the settings pointed at it and ``/health`` details."""
    from adapters.simulator import start_simulator as start

    tg = await stack.enter_async_context(anyio.create_task_group())
    sim = await start(tg)
    stack.callback(sim.stop)
    for line in simulator_banner(sim.url):
        log.warning("%s", line)
    details = {"upstream": "simulator", "warning": simulator_banner(sim.url)[1]}
    return sim.gateway_settings(settings), lambda: dict(details)


def simulator_banner(url: str) -> tuple[str, str, str]:
    """What is logged when kiro2api answers from its simulator (the wording of ``kiro2api serve``)."""
    return (
        "NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset).",
        f"Answers come from the built-in upstream simulator at {url}, not from a model.",
        "Set KIRO_AUTH_TOKEN to serve real Kiro accounts (or SIMULATOR_WITHOUT_ACCOUNTS=false to refuse).",
    )
