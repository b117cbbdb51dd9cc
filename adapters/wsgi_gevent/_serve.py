"""gevent's pywsgi server around the WSGI app: settings, logging, signals, graceful shutdown.

Imported only by ``__main__`` after ``monkey.patch_all()``.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from adapters.runtime.command_line import parse_serve_command
from adapters.runtime.settings import Settings
from adapters.runtime.startup import STARTUP_FAILED, listen_problem
from kiro_protocol import __version__

from . import create_app

__all__ = ["main", "serve"]

log = logging.getLogger("kiro2api.server")


def serve(settings: Settings) -> int:
    """Serve ``settings`` on pywsgi until a signal; the process exit status."""
    if settings.tls_enabled:
        # Serving cleartext when the operator asked for TLS would be a silent downgrade.
        print("kiro2api: TLS_CERT_FILE/TLS_KEY_FILE are set, but the gevent server has no TLS: use "
              "kiro2api serve, or a TLS proxy in front", file=sys.stderr)
        return 2
    try:
        listener = socket.create_server((settings.host, settings.port), backlog=1024)
    except OSError as exc:
        print(f"kiro2api: {listen_problem(settings, exc)}", file=sys.stderr)
        return STARTUP_FAILED
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    app = create_app(settings)
    pool = Pool()
    server = WSGIServer(listener, app, log=None, spawn=pool)
    stopping = Event()

    def stop(signum: int) -> None:
        if stopping.is_set():
            app.lifecycle.terminate()
            return
        log.info("%s received", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop, signum)
    server.start()
    log.info("kiro2api %s listening on http://%s:%d (HTTP/1.1, gevent)", __version__, settings.host, server.server_port)
    if settings.client_token_generated:
        print(
            f"kiro2api: KIRO_CLIENT_TOKEN is not set; clients must use this generated token for this run:\n"
            f"  {settings.client_token}",
            file=sys.stderr,
            flush=True,
        )
    stopping.wait()
    app.lifecycle.shutting_down.set()
    server.close()
    deadline = time.monotonic() + settings.shutdown_timeout
    while len(pool) and time.monotonic() < deadline and not app.lifecycle.terminating.is_set():
        gevent.sleep(0.05)
    app.lifecycle.terminate()
    server.stop(timeout=2.0)
    app.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_serve_command(
        argv,
        prog="python -m adapters.wsgi_gevent",
        description="Serve kiro2api on gevent's pywsgi (HTTP/1.1; the WSGI app of adapters.wsgi_gevent).",
        docs="docs/adapters.md",
    )
    return 2 if settings is None else serve(settings)
