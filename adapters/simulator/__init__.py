"""The upstream simulator: a faithful stand-in for Kiro, for tests, benchmarks and demos.

``kiro2api simulator --port N`` (or ``python -m adapters.simulator``) serves Kiro's endpoints
on loopback: ``generateAssistantResponse`` (answers scripted like a model, streamed as real
EventStream frames, with failure scenarios chosen by ``[[sim:...]]`` markers in the prompt), the
Social and IdC refresh endpoints, ``getUsageLimits`` and ``ListAvailableModels``, plus
``/_sim/*`` control routes. docs/simulator.md describes it all.

In-process::

    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg)            # sim.url, sim.port
        env = sim.gateway_environment()            # KIRO_UPSTREAM_URL, ..., KIRO_AUTH_TOKEN
        settings = sim.gateway_settings(settings)  # or a Settings pointed at it
        ...
        sim.stop()
"""

from ._app import KNOWN_MODEL_IDS, SimulatorApp
from ._markers import MARKERS, parse_markers
from ._script import Ending, ErrorReply, StreamReply, answer, read_turn
from ._serve import (
    DEFAULT_PORT,
    DEMO_IDC_CLIENT_ID,
    DEMO_IDC_CLIENT_SECRET,
    DEMO_IDC_REFRESH_TOKEN,
    DEMO_REFRESH_TOKEN,
    SimulatorHandle,
    add_arguments,
    gateway_environment,
    gateway_settings,
    main,
    run,
    run_from_args,
    simulated_upstream,
    start_simulator,
)
from ._state import ACCOUNT_TAGS, DEMO_PROFILE_ARN, SimulatorConfig, SimulatorState
from ._text import UNICODE_TEXT

__all__ = [
    "ACCOUNT_TAGS",
    "DEFAULT_PORT",
    "DEMO_IDC_CLIENT_ID",
    "DEMO_IDC_CLIENT_SECRET",
    "DEMO_IDC_REFRESH_TOKEN",
    "DEMO_PROFILE_ARN",
    "DEMO_REFRESH_TOKEN",
    "KNOWN_MODEL_IDS",
    "MARKERS",
    "UNICODE_TEXT",
    "Ending",
    "ErrorReply",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorHandle",
    "SimulatorState",
    "StreamReply",
    "add_arguments",
    "answer",
    "gateway_environment",
    "gateway_settings",
    "main",
    "parse_markers",
    "read_turn",
    "run",
    "run_from_args",
    "simulated_upstream",
    "start_simulator",
]
