"""Start the standalone server from ``Settings``: logging, the handler, TLS, signals."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from adapters.runtime.client_token_file import announce_generated_token
from adapters.runtime.service import Prepared, open_service, prepare
from adapters.runtime.settings import Settings
from adapters.runtime.startup import (
    STARTUP_FAILED,
    StartupError,
    check_listen,
    check_tls,
    listen_problem,
    sole_error,
    sole_os_error,
)
from adapters.runtime.stores import StoreConfigurationError, StoreUnavailable
from kiro_protocol import __version__, ConfigurationError

from ._common import ConnectionLimits
from adapters.runtime.app import ApiService, App, Lifecycle
from ._server import Server, handle_signals, make_ssl_context

__all__ = ["build_server", "serve_settings", "run"]

log = logging.getLogger("kiro2api.server")

#: After SHUTDOWN_TIMEOUT_SECONDS, how long running streams get to end before they are cancelled.
TERMINATE_GRACE = 0.5


def build_server(settings: Settings, *, service: ApiService, sock: socket.socket | None = None) -> Server:
    """The server for ``settings`` answering with ``service`` (on ``sock`` when given: a worker)."""
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
        # Past the deadline, streams end with an error event at once: half a second is plenty to
        # write it, and keeps the exit close to SHUTDOWN_TIMEOUT_SECONDS.
        terminate_grace=TERMINATE_GRACE,
        sock=sock,
        name="gateway",
    )


async def serve_settings(
    settings: Settings,
    prepared: Prepared | None = None,
    *,
    service: ApiService | None = None,
    health_details: Callable[[], dict[str, object]] | None = None,
    signals: bool = True,
    sock: socket.socket | None = None,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until a signal (or ``server.shutdown()``) and the drain are done.

    Args:
        prepared: the validated accounts and store (``prepare(settings)``); made here if None.
        service: serve this instead of the Kiro service (tests).
        health_details: what ``/health`` adds about the upstream (a composition root's stand-in).
        sock: listen on this bound socket (a worker of ``--workers``) instead of HOST:PORT.
    """
    if service is not None:
        await _serve(settings, service, signals=signals, sock=sock, task_status=task_status)
        return
    async with open_service(settings, prepared or prepare(settings), health_details=health_details) as kiro:
        await _serve(settings, kiro, signals=signals, sock=sock, task_status=task_status)


async def _serve(
    settings: Settings,
    service: ApiService,
    *,
    signals: bool,
    sock: socket.socket | None,
    task_status: anyio.abc.TaskStatus[Server],
) -> None:
    server = build_server(settings, service=service, sock=sock)
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
        announce_generated_token(settings)
        if settings.auth_token_json is None:
            # The simulator is a composition root's choice (kiro2api serve); the server alone has nothing to ask.
            log.warning("NO KIRO ACCOUNTS CONFIGURED (KIRO_AUTH_TOKEN is unset): model requests are answered 503")
        task_status.started(server)


def run(settings: Settings, serve: Callable[[Settings, Prepared], Awaitable[None]] = serve_settings) -> int:
    """Run ``serve`` (the server alone by default) in the foreground until SIGTERM/SIGINT; the exit status."""
    try:
        # The TLS files and the address first: either must stop start-up before anything runs.
        check_tls(settings, make_ssl_context)
        try:
            check_listen(settings)
        except OSError as exc:
            raise StartupError(listen_problem(settings, exc)) from None
        prepared = prepare(settings)
    except (ConfigurationError, StoreConfigurationError, StartupError) as exc:
        print(f"kiro2api: {exc}", file=sys.stderr)
        return STARTUP_FAILED
    if settings.workers > 1:
        # Each worker opens its own store connection (and its own upstream pools) after the fork.
        prepared.store.close()
        from ._workers import run_workers

        return run_workers(settings, serve)
    try:
        anyio.run(serve, settings, prepared)
    except (OSError, StoreUnavailable, BaseExceptionGroup) as exc:
        unavailable = sole_error(exc, StoreUnavailable)
        if unavailable is not None:
            # The store could not be read at start-up (the accounts of the admin API live there).
            print(f"kiro2api: KIRO_STATE: {unavailable}", file=sys.stderr)
            return STARTUP_FAILED
        error = sole_os_error(exc)
        if error is None:
            raise
        # Typically the port is taken, privileged, or the address is not ours.
        print(f"kiro2api: {listen_problem(settings, error)}", file=sys.stderr)
        return STARTUP_FAILED
    return 0
