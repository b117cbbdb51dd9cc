"""Start the standalone server from ``Settings``: logging, the handler, TLS, signals."""

from __future__ import annotations

import logging
import sys

import anyio
import anyio.abc

from adapters.runtime.service import Prepared, open_service, prepare
from adapters.runtime.settings import Settings
from adapters.runtime.stores import StoreConfigurationError
from kiro_protocol import __version__, ConfigurationError

from ._common import ConnectionLimits
from ._handler import ApiService, App, Lifecycle
from ._server import Server, handle_signals, make_ssl_context

__all__ = ["build_server", "serve_settings", "run"]

log = logging.getLogger("kiro2api.server")


def build_server(settings: Settings, *, service: ApiService) -> Server:
    """The server for ``settings`` answering with ``service``."""
    lifecycle = Lifecycle()
    app = App(
        service=service,
        client_token=settings.client_token,
        lifecycle=lifecycle,
        max_concurrent_sessions=settings.max_concurrent_sessions,
    )
    limits = ConnectionLimits(
        max_body=settings.max_request_body_bytes,
        header_timeout=settings.server_header_timeout,
        read_timeout=settings.server_read_timeout,
        write_timeout=settings.server_write_timeout,
    )
    ssl_context = None
    if settings.tls_cert_file and settings.tls_key_file:
        ssl_context = make_ssl_context(settings.tls_cert_file, settings.tls_key_file)
    return Server(
        handler=app,
        lifecycle=lifecycle,
        host=settings.host,
        port=settings.port,
        limits=limits,
        ssl_context=ssl_context,
        shutdown_timeout=settings.shutdown_timeout,
    )


async def serve_settings(
    settings: Settings,
    prepared: Prepared | None = None,
    *,
    service: ApiService | None = None,
    signals: bool = True,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until a signal (or ``server.shutdown()``) and the drain are done.

    Args:
        prepared: the validated accounts and store (``prepare(settings)``); made here if None.
        service: serve this instead of the Kiro service (tests).
    """
    if service is not None:
        await _serve(settings, service, signals=signals, task_status=task_status)
        return
    if settings.answers_from_simulator:
        if prepared is not None:
            prepared.store.close()
        await _serve_simulated(settings, signals=signals, task_status=task_status)
        return
    async with open_service(settings, prepared or prepare(settings)) as kiro:
        await _serve(settings, kiro, signals=signals, task_status=task_status)


async def _serve_simulated(settings: Settings, *, signals: bool, task_status: anyio.abc.TaskStatus[Server]) -> None:
    # No account configured: answer from the product's own upstream simulator, so that a
    # newcomer's first `make serve` works; said loudly at start-up and in /health.
    from adapters.simulator import start_simulator

    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg)
        simulated = sim.gateway_settings(settings)
        banner = [line.replace("%s", sim.url) for line in _SIMULATOR_BANNER]
        for line in banner:
            log.warning("%s", line)
        details = {"upstream": "simulator", "warning": banner[1]}
        async with open_service(simulated, prepare(simulated), health_details=lambda: dict(details)) as kiro:
            await _serve(settings, kiro, signals=signals, task_status=task_status)
        sim.stop()


_SIMULATOR_BANNER = (
    "NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset).",
    "Answers come from the built-in upstream simulator at %s, not from a model.",
    "Set KIRO_AUTH_TOKEN to serve real Kiro accounts (or SIMULATOR_WITHOUT_ACCOUNTS=false to refuse).",
)


async def _serve(
    settings: Settings, service: ApiService, *, signals: bool, task_status: anyio.abc.TaskStatus[Server]
) -> None:
    server = build_server(settings, service=service)
    async with anyio.create_task_group() as tg:

        async def serve_then_stop(*, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
            await server.serve(task_status=task_status)
            tg.cancel_scope.cancel()  # drained: stop listening for signals too

        if signals:
            tg.start_soon(handle_signals, server)
        await tg.start(serve_then_stop)
        scheme = "https" if settings.tls_enabled else "http"
        protocols = "HTTP/1.1 and HTTP/2 (ALPN)" if settings.tls_enabled else "HTTP/1.1 and h2c"
        log.info("kiro2api %s listening on %s://%s:%d (%s)", __version__, scheme, settings.host, server.port, protocols)
        if settings.client_token_generated:
            # Printed once, to the console only (not to LOG_FILE): the operator needs it to connect.
            print(
                f"kiro2api: KIRO_CLIENT_TOKEN is not set; clients must use this generated token for this run:\n"
                f"  {settings.client_token}",
                file=sys.stderr,
                flush=True,
            )
        if settings.auth_token_json is None and not settings.simulator_without_accounts:
            log.warning("NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset): model requests are answered 503")
        task_status.started(server)


def run(settings: Settings) -> int:
    """Run the server in the foreground until SIGTERM/SIGINT; the process exit status."""
    try:
        prepared = prepare(settings)
    except (ConfigurationError, StoreConfigurationError) as exc:
        print(f"kiro2api: {exc}", file=sys.stderr)
        return 2
    anyio.run(serve_settings, settings, prepared)
    return 0
