"""Running the simulator: in-process (tests, ``make serve`` without accounts) or as a command.

The simulator uses the gateway's own server (``adapters.anyio_server.Server``: h11 and h2 pumps)
with ``SimulatorApp`` as the handler; the server never imports the simulator. Deciding to put it
in front of the gateway is the composition roots' business (``adapters/compose.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio
import anyio.abc

from adapters.anyio_server import ConnectionLimits, Lifecycle, Server, handle_signals
from adapters.runtime.settings import Settings

from ._app import SimulatorApp
from ._state import SimulatorConfig, SimulatorState

__all__ = [
    "SimulatorHandle",
    "start_simulator",
    "run",
    "main",
    "add_arguments",
    "run_from_args",
    "gateway_environment",
    "gateway_settings",
    "simulated_upstream",
    "DEMO_REFRESH_TOKEN",
    "DEMO_IDC_CLIENT_ID",
    "DEMO_IDC_CLIENT_SECRET",
    "DEMO_IDC_REFRESH_TOKEN",
    "DEFAULT_PORT",
]

#: A Social refresh token the simulator accepts (any token of 20+ printable characters would do).
DEMO_REFRESH_TOKEN = "aorAAAAAG-kiro2api-simulator-demo-account"
#: An IdC account the simulator accepts.
DEMO_IDC_CLIENT_ID = "kiro2api-simulator-client"
DEMO_IDC_CLIENT_SECRET = "kiro2api-simulator-client-secret"
DEMO_IDC_REFRESH_TOKEN = "aorAAAAAG-kiro2api-simulator-idc-account"
#: ``kiro2api simulator`` listens here unless told otherwise.
DEFAULT_PORT = 8081


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def gateway_environment(url: str, *, accounts: Sequence[dict[str, object]] | None = None) -> dict[str, str]:
    """The settings that point the gateway at a simulator at ``url``.

    ``KIRO_UPSTREAM_URL``, the two refresh URLs and ``KIRO_AUTH_TOKEN`` (by default the demo
    Social account; pass ``accounts`` for others, e.g. one tagged ``sim-throttle``).
    """
    if accounts is None:
        accounts = [{"auth": "Social", "refreshToken": DEMO_REFRESH_TOKEN, "description": "simulator demo"}]
    return {
        "KIRO_UPSTREAM_URL": url,
        "KIRO_SOCIAL_REFRESH_URL": f"{url}/refreshToken",
        "KIRO_IDC_REFRESH_URL": f"{url}/token",
        "KIRO_AUTH_TOKEN": json.dumps(list(accounts)),
    }


def gateway_settings(
    settings: Settings, url: str, *, accounts: Sequence[dict[str, object]] | None = None
) -> Settings:
    """``settings`` pointed at a simulator at ``url`` (upstream and refresh URLs, accounts).

    For ``kiro2api serve`` without accounts: start the simulator, then serve with these settings.
    The state store is switched to ``memory://`` so demo accounts never mix with a real store.
    """
    env = gateway_environment(url, accounts=accounts)
    return dataclasses.replace(
        settings,
        upstream_url=env["KIRO_UPSTREAM_URL"],
        social_refresh_url=env["KIRO_SOCIAL_REFRESH_URL"],
        idc_refresh_url=env["KIRO_IDC_REFRESH_URL"],
        auth_token_json=env["KIRO_AUTH_TOKEN"],
        state_url="memory://",
    )


@dataclass(slots=True)
class SimulatorHandle:
    """A running simulator."""

    server: Server
    state: SimulatorState
    app: SimulatorApp
    host: str

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """``http://host:port``: the value for ``KIRO_UPSTREAM_URL``."""
        return _base_url(self.host, self.port)

    def gateway_environment(self, *, accounts: Sequence[dict[str, object]] | None = None) -> dict[str, str]:
        """``gateway_environment`` for this simulator."""
        return gateway_environment(self.url, accounts=accounts)

    def gateway_settings(self, settings: Settings, *, accounts: Sequence[dict[str, object]] | None = None) -> Settings:
        """``gateway_settings`` for this simulator."""
        return gateway_settings(settings, self.url, accounts=accounts)

    def stop(self) -> None:
        """Stop accepting, close idle connections; running streams get a short grace period."""
        self.server.shutdown()


async def start_simulator(
    task_group: anyio.abc.TaskGroup,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: SimulatorConfig | None = None,
) -> SimulatorHandle:
    """Start a simulator in ``task_group`` and return once it listens (port 0: a free port).

    ``handle.stop()`` ends it; cancelling the task group does too.
    """
    state = SimulatorState(config or SimulatorConfig())
    app = SimulatorApp(state)
    server = Server(
        handler=app,
        lifecycle=Lifecycle(),
        host=host,
        port=port,
        limits=ConnectionLimits(header_timeout=state.config.keepalive_seconds),
        shutdown_timeout=2.0,
        terminate_grace=0.5,
        name="upstream simulator",
    )
    await task_group.start(_serve, server)
    return SimulatorHandle(server=server, state=state, app=app, host=host)


@contextlib.asynccontextmanager
async def simulated_upstream(
    settings: Settings, *, config: SimulatorConfig | None = None
) -> AsyncIterator[tuple[SimulatorHandle, Settings]]:
    """An in-process simulator and ``settings`` pointed at it, stopped when the context ends::

        async with simulated_upstream(settings) as (sim, demo_settings):
            await serve_settings(demo_settings)
    """
    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg, config=config)
        try:
            yield sim, sim.gateway_settings(settings)
        finally:
            sim.stop()


async def _serve(server: Server, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    await server.serve(task_status=task_status)


async def _run(host: str, port: int, config: SimulatorConfig) -> None:
    async with anyio.create_task_group() as signals:
        async with anyio.create_task_group() as serving:
            handle = await start_simulator(serving, host=host, port=port, config=config)
            signals.start_soon(handle_signals, handle.server)
            env = handle.gateway_environment()
            print(
                f"kiro2api upstream simulator listening on {handle.url}\n"
                "Point kiro2api at it with:\n"
                + "".join(f"  {name}={_shell_quote(value)}\n" for name, value in env.items())
                + "Scenario markers such as [[sim:throttle]] in a prompt are described in docs/simulator.md.",
                file=sys.stderr,
                flush=True,
            )
        # The server returned (shutdown and drain done): stop waiting for signals too.
        signals.cancel_scope.cancel()


def _shell_quote(value: str) -> str:
    return value if all(c.isalnum() or c in "/:._-" for c in value) else "'" + value.replace("'", "'\\''") + "'"


def run(host: str = "127.0.0.1", port: int = DEFAULT_PORT, config: SimulatorConfig | None = None) -> int:
    """Run a simulator in the foreground until SIGTERM/SIGINT; the process exit status."""
    anyio.run(_run, host, port, config or SimulatorConfig())
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``kiro2api simulator`` options, added to ``parser``."""
    defaults = SimulatorConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})")
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=defaults.pace_ms,
        help=f"pause between EventStream frames in milliseconds (default {defaults.pace_ms:g}; 0: no pause)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=defaults.token_ttl,
        help=f"lifetime of issued access tokens in seconds (default {defaults.token_ttl:g})",
    )
    parser.add_argument("--no-rotate", action="store_true", help="refreshes return the same refresh token")
    parser.add_argument(
        "--revoke-rotated", action="store_true", help="a refresh token stops working once it was rotated"
    )
    parser.add_argument(
        "--history", type=int, default=defaults.history_size, help="requests kept for GET /_sim/requests"
    )
    parser.add_argument(
        "--keepalive-seconds",
        type=float,
        default=defaults.keepalive_seconds,
        help=f"an idle kept-alive connection is closed after this many seconds (default {defaults.keepalive_seconds:g})",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the simulator with options parsed by a parser that ``add_arguments`` prepared."""
    if (
        args.pace_ms < 0
        or args.token_ttl <= 0
        or args.history < 1
        or not 0 <= args.port <= 65535
        or not args.keepalive_seconds > 0
    ):
        print(
            "kiro2api simulator: --pace-ms must be >= 0, --token-ttl > 0, --history >= 1, --port 0..65535, "
            "--keepalive-seconds > 0",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = SimulatorConfig(
        pace_ms=args.pace_ms,
        token_ttl=args.token_ttl,
        rotate_refresh_tokens=not args.no_rotate,
        revoke_rotated=args.revoke_rotated,
        history_size=args.history,
        keepalive_seconds=args.keepalive_seconds,
        log_requests=True,
    )
    try:
        return run(args.host, args.port, config)
    except OSError as exc:
        print(f"kiro2api simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adapters.simulator [--host H] [--port N] ...``."""
    parser = argparse.ArgumentParser(
        prog="kiro2api simulator",
        description="A stand-in for Kiro's upstream endpoints (generateAssistantResponse, the Social and "
        "IdC refresh endpoints, getUsageLimits, ListAvailableModels) for tests and demos.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
