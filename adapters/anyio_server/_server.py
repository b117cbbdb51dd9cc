"""The listener: accept, pick HTTP/1.1 or HTTP/2, run the pump; graceful shutdown.

The server runs on asyncio's event loop only (anyio's default, and what ``kiro2api serve``
uses): its sockets are asyncio protocols (``adapters.runtime.aio``), which cost much less per
read and write than anyio's streams. Under trio it refuses to start; the upstream client still
works there.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import ssl

import anyio
import anyio.abc

from adapters.runtime.aio import AioStream, open_server, running_asyncio

from ._common import IO_ERRORS, ConnectionLimits
from ._h2_pump import H2_PREFACE, H2Pump
from ._h11_pump import H11Pump
from adapters.runtime.app import Handler, Lifecycle

__all__ = ["Server", "make_ssl_context", "handle_signals"]

log = logging.getLogger("kiro2api.server")

_IO_ERRORS = (*IO_ERRORS, ssl.SSLError)


def make_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context offering HTTP/2 and HTTP/1.1 by ALPN (RFC 7301)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class Server:
    """An HTTP/1.1 + HTTP/2 server running ``handler`` for every request.

    Args:
        handler: the shared request handler (``App`` in production).
        lifecycle: shared with the handler, so it can see the shutdown coming.
        host, port: where to listen (port 0 picks a free one; see ``port`` once started).
        limits: per-connection limits.
        ssl_context: serve TLS with ALPN when given; cleartext otherwise (h2c by prior knowledge).
        shutdown_timeout: how long running requests may continue after ``shutdown()``.
        terminate_grace: after that, how long handlers get to end their streams before cancellation.
        sock: listen on this bound socket instead of ``host:port`` (a worker of ``--workers``).
        name: what the log lines call this server (``gateway``; the simulator beside it has its own).
    """

    def __init__(
        self,
        *,
        handler: Handler,
        lifecycle: Lifecycle,
        host: str = "127.0.0.1",
        port: int = 8080,
        limits: ConnectionLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        shutdown_timeout: float = 30.0,
        terminate_grace: float = 2.0,
        sock: socket.socket | None = None,
        name: str = "server",
    ) -> None:
        self._handler = handler
        self.name = name
        self.lifecycle = lifecycle
        self._host = host
        self.port = port
        self._limits = limits or ConnectionLimits()
        self._ssl_context = ssl_context
        self._shutdown_timeout = shutdown_timeout
        self._terminate_grace = terminate_grace
        self._sock = sock
        self._pumps: set[H11Pump | H2Pump] = set()
        self._connections = 0
        self._accept_scope: anyio.CancelScope | None = None

    @property
    def connections(self) -> int:
        """Open client connections."""
        return self._connections

    def shutdown(self) -> None:
        """Begin a graceful shutdown: stop accepting, close idle connections, let requests finish."""
        if self.lifecycle.shutting_down.is_set():
            return
        log.info(
            "%s: shutting down: no new connections; waiting up to %s s for running requests",
            self.name,
            f"{self._shutdown_timeout:g}",
        )
        self.lifecycle.shutting_down.set()
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for pump in list(self._pumps):
            pump.on_shutdown()

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until ``shutdown()`` and the drain finish. Reports the bound port."""
        if not running_asyncio():
            raise RuntimeError("the kiro2api server runs on asyncio's event loop (anyio's default backend)")
        # asyncio also runs the TLS handshake, before a connection is accepted.
        listener = await open_server(
            self._host,
            self.port,
            ssl_context=self._ssl_context,
            handshake_timeout=self._limits.header_timeout,
            sock=self._sock,
        )
        self.port = listener.port
        async with anyio.create_task_group() as connections:
            async with listener:  # leaving it stops accepting; open connections are not touched
                task_status.started(self.port)
                with anyio.CancelScope() as scope:
                    self._accept_scope = scope
                    if self.lifecycle.shutting_down.is_set():
                        scope.cancel()
                    await listener.serve(self._connection, task_group=connections)
            await self._drain()
            connections.cancel_scope.cancel()

    async def _wait_closed(self, timeout: float, *, until_terminating: bool = False) -> bool:
        with anyio.move_on_after(timeout):
            while self._connections and not (until_terminating and self.lifecycle.terminating.is_set()):
                await anyio.sleep(0.02)
        return self._connections == 0

    async def _drain(self) -> None:
        if await self._wait_closed(self._shutdown_timeout, until_terminating=True):
            return
        log.warning("%s: shutdown deadline reached: ending %d open connection(s)", self.name, self._connections)
        self.lifecycle.terminate()
        await self._wait_closed(self._terminate_grace)

    async def _connection(self, stream: AioStream) -> None:
        self._connections += 1
        pump: H11Pump | H2Pump | None = None
        try:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _address(stream)
            pump = await self._negotiate(stream, client)
            if pump is None:
                return
            self._pumps.add(pump)
            if self.lifecycle.shutting_down.is_set():
                pump.on_shutdown()
            await pump.run()
        except _IO_ERRORS:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            if pump is not None:
                self._pumps.discard(pump)
            self._connections -= 1
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.aclose()

    async def _negotiate(self, stream: AioStream, client: str | None) -> H11Pump | H2Pump | None:
        initial = b""
        with anyio.move_on_after(self._limits.header_timeout):
            use_h2 = stream.ssl_object is not None and stream.ssl_object.selected_alpn_protocol() == "h2"
            if not use_h2:
                # Cleartext (or TLS without ALPN h2): the HTTP/2 preface means prior-knowledge h2.
                while len(initial) < len(H2_PREFACE) and H2_PREFACE.startswith(initial):
                    chunk = await stream.receive(65536)
                    if not chunk:
                        return None
                    initial += chunk
                use_h2 = initial.startswith(H2_PREFACE)
            pump_class = H2Pump if use_h2 else H11Pump
            return pump_class(
                stream, handler=self._handler, limits=self._limits, lifecycle=self.lifecycle, client=client, initial=initial
            )
        return None


def _address(stream: AioStream) -> str | None:
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except Exception:
        return None
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)


async def handle_signals(
    server: Server, signums: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """SIGTERM/SIGINT (or ``signums``): graceful shutdown; a second signal ends running requests at once."""
    with anyio.open_signal_receiver(*signums) as signals:
        async for signum in signals:
            if server.lifecycle.shutting_down.is_set():
                log.warning("%s again: ending running requests now", signal.Signals(signum).name)
                server.lifecycle.terminate()
                continue
            log.info("%s received", signal.Signals(signum).name)
            server.shutdown()
