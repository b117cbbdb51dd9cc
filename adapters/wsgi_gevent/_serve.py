"""gevent's pywsgi server around the WSGI app: settings, logging, signals, graceful shutdown.

Imported only by ``__main__`` after ``monkey.patch_all()``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from adapters.runtime.logging import configure_logging
from adapters.runtime.settings import Settings, SettingsError, load_settings, settings_help
from kiro_protocol import __version__

from ._app import KiroWSGI

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
        print(f"kiro2api: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    app = KiroWSGI(settings)
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
    parser = argparse.ArgumentParser(
        prog="python -m adapters.wsgi_gevent",
        description="Serve kiro2api on gevent's pywsgi (HTTP/1.1; the WSGI app of adapters.wsgi_gevent).",
        epilog=settings_help() + "\n\nEvery setting is described in docs/configuration.md; this server is in docs/adapters.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind (overrides HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (overrides PORT; default 8080)")
    parser.add_argument("--env-file", help="read settings from this file instead of ./.env")
    args = parser.parse_args(argv)
    overrides = {"HOST": args.host, "PORT": None if args.port is None else str(args.port)}
    try:
        settings = load_settings(environ=os.environ, env_file=args.env_file, overrides=overrides)
    except SettingsError as exc:
        print(f"kiro2api: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(level=settings.log_level, fmt=settings.log_format, file=settings.log_file)
    except OSError as exc:
        print(f"kiro2api: LOG_FILE: cannot open {settings.log_file!r} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    return serve(settings)
