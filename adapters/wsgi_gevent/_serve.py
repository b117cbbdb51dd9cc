"""gevent's pywsgi server around the WSGI app: settings, logging, signals, graceful shutdown.

Imported only by ``__main__`` after ``monkey.patch_all()``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from adapters.runtime.client_token_file import announce_generated_token
from adapters.runtime.command_line import parse_serve_command
from adapters.runtime.settings import Settings
from adapters.runtime.startup import STARTUP_FAILED, listen_problem
from adapters.runtime.stores import StoreConfigurationError, StoreUnavailable
from adapters.runtime.app import log_rejection
from kiro_protocol import ConfigurationError, Reply, __version__, malformed_request

from . import KiroWSGI, create_app
from ._app import CLOSE_KEY, DROPPED_LENGTH_KEY, raw_response

__all__ = ["main", "serve"]

log = logging.getLogger("kiro2api.server")


class _Handler(WSGIHandler):  # type: ignore[misc]  # gevent is untyped
    """pywsgi's handler, made to close the connection after a framing error and to answer the
    framing errors it finds itself in the core's words, with an access line.

    - pywsgi reads a body that has both Content-Length and Transfer-Encoding as chunked, drops
      the Content-Length and keeps the connection, where RFC 9112 §6.1 says to close it (a proxy
      in front may have read the body by its length: the rest would be a smuggled request). The
      dropped length is put back in the environ so the app's head has both and the core answers
      400; the connection then closes.
    - It takes the first of two different Content-Lengths, and skips a header line without a
      colon: both are refused here, as h11 refuses them in ``kiro2api serve``.
    - After an answer given with a body unread that is too long to drop (the app says so in the
      environ), it reads on for ``discard_timeout`` at most, then closes, where pywsgi would
      wait for the whole body.
    """

    close_connection: bool
    discard_timeout = 2.0
    _dropped_length: str | None = None
    _bad_framing: str | None = None

    def MessageClass(self, *args: Any) -> Any:  # noqa: N802 (pywsgi's name)
        headers = super().MessageClass(*args)
        lengths = set(headers.get_all("content-length") or ())
        both = headers.get("transfer-encoding") is not None and lengths
        self._dropped_length = headers.get("content-length") if both else None
        if len(lengths) > 1:
            self._bad_framing = "conflicting Content-Length headers"
        elif headers.defects:
            self._bad_framing = "malformed header line"
        return headers

    def read_request(self, raw_requestline: str) -> Any:
        self._dropped_length = self._bad_framing = None
        result = super().read_request(raw_requestline)
        if self._bad_framing is not None:
            raise ValueError(self._bad_framing)  # pywsgi answers through _handle_client_error
        if self._dropped_length is not None:
            self.close_connection = True
        return result

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        if self._dropped_length is not None:
            environ[DROPPED_LENGTH_KEY] = self._dropped_length
        return environ

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        if isinstance(result, tuple) and result[0] == "414":  # a request line over 8 KiB
            return self._refuse(malformed_request(414, "request line too long"))
        return result

    def _handle_client_error(self, ex: BaseException) -> tuple[str, bytes]:
        super()._handle_client_error(ex)  # pywsgi's own log line
        detail = str(ex.args[0]) if ex.args else ""
        # pywsgi says "Line too long" of a header over http.client's limit: the 431 of RFC 6585.
        return self._refuse(malformed_request(431 if "too long" in detail.lower() else 400, detail))

    def _refuse(self, reply: Reply) -> tuple[str, bytes]:
        """What pywsgi writes for bytes that never became a WSGI call: ``reply``, logged."""
        address = self.client_address
        client = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else None
        started = time.monotonic() - (time.time() - self.time_start)  # pywsgi times with the wall clock
        log_rejection(reply, client=client, started=started)
        return str(reply.status), raw_response(reply)

    def run_application(self) -> None:
        try:
            super().run_application()
        finally:
            if self.environ.get(CLOSE_KEY):
                self.close_connection = True
                wsgi_input = self.wsgi_input
                with gevent.Timeout(self.discard_timeout, False), contextlib.suppress(OSError, ValueError):
                    wsgi_input._discard()  # a broken body raises: it is not read further
                # What is still unsent is not waited for: the connection closes.
                wsgi_input.content_length, wsgi_input.chunked_input = wsgi_input.position, False


#: After SHUTDOWN_TIMEOUT_SECONDS, how long running streams get to end before they are cancelled.
_TERMINATE_GRACE = 0.5


class _Running:
    """The WSGI app, counting the requests in progress.

    The drain waits for these, not for pywsgi's greenlets: a kept-alive idle connection has a
    greenlet too, and waiting for it held every shutdown to its deadline and beyond.
    """

    def __init__(self, app: KiroWSGI) -> None:
        self._app = app
        self.lifecycle = app.lifecycle
        self.count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.count += 1
        try:
            body = self._app(environ, start_response)
        except BaseException:
            self.count -= 1
            raise
        if isinstance(body, list):
            self.count -= 1  # complete: pywsgi writes it and is done
            return body
        return _Counted(body, self)

    def close(self) -> None:
        self._app.close()


class _Counted:
    """A streamed body: the request is in progress until pywsgi closes it (WSGI's ``close()``)."""

    def __init__(self, body: Iterable[bytes], running: _Running) -> None:
        self._body = body
        self._running: _Running | None = running

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._running is not None:
                self._running.count -= 1
                self._running = None


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
    try:
        app = _Running(create_app(settings))
    except (ConfigurationError, StoreConfigurationError, StoreUnavailable) as exc:
        # As kiro2api serve says them: the accounts or the store, one line, no traceback.
        listener.close()
        where = "KIRO_STATE: " if isinstance(exc, StoreUnavailable) else ""
        print(f"kiro2api: {where}{exc}", file=sys.stderr)
        return STARTUP_FAILED
    pool = Pool()
    server = WSGIServer(listener, app, log=None, spawn=pool, handler_class=_Handler)
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
    announce_generated_token(settings)
    stopping.wait()
    log.info(
        "gateway: shutting down: no new connections; waiting up to %s s for running requests",
        f"{settings.shutdown_timeout:g}",
    )
    app.lifecycle.shutting_down.set()
    server.close()
    _wait_for(app, settings.shutdown_timeout, until_terminating=True)
    if app.count:
        log.warning("gateway: shutdown deadline reached: ending %d running request(s)", app.count)
    app.lifecycle.terminate()
    _wait_for(app, _TERMINATE_GRACE)
    # What is left are idle kept-alive connections (and streams past the grace): closed at once.
    server.stop(timeout=0)
    app.close()
    return 0


def _wait_for(app: _Running, seconds: float, *, until_terminating: bool = False) -> None:
    """Until no request is running or ``seconds`` pass (or, ``until_terminating``, a second signal ends them)."""
    deadline = time.monotonic() + seconds
    while app.count and time.monotonic() < deadline:
        if until_terminating and app.lifecycle.terminating.is_set():
            return
        gevent.sleep(0.02)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_serve_command(
        argv,
        prog="python -m adapters.wsgi_gevent",
        description="Serve kiro2api on gevent's pywsgi (HTTP/1.1; the WSGI app of adapters.wsgi_gevent).",
        docs="docs/adapters.md",
    )
    return 2 if settings is None else serve(settings)
