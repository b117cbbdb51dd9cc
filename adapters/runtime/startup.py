"""Start-up failures as one line naming the setting and the cause (exit status 2, like bad settings).

A port already taken, a port below 1024 without the privilege, an unreadable or broken TLS file:
the operator can fix each in the configuration, so each gets a sentence, never a traceback.
Every serving command we start ourselves (``kiro2api serve``, ``python -m adapters.anyio_server``,
``python -m adapters.wsgi_gevent``) says them alike.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from .settings import Settings

__all__ = ["STARTUP_FAILED", "StartupError", "check_listen", "check_tls", "listen_problem", "sole_error", "sole_os_error"]

_E = TypeVar("_E", bound=BaseException)

#: The exit status of a start-up the configuration prevents (as for invalid settings).
STARTUP_FAILED = 2


class StartupError(Exception):
    """The server cannot start as configured; ``str()`` is the one line to print (no ``kiro2api:``)."""


_BIND_CAUSES = {
    errno.EADDRINUSE: "the address is already in use (another server on this port?)",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port above 1023)",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
}


def listen_problem(settings: Settings, error: OSError) -> str:
    """The line for a listening socket that could not be opened on HOST:PORT."""
    cause = _BIND_CAUSES.get(error.errno or 0) or _plain(error)
    return f"HOST/PORT: cannot listen on {settings.host}:{settings.port}: {cause}"


def check_listen(settings: Settings) -> None:
    """Bind HOST:PORT once and let go, before anything starts (the simulator, the store, logs of both).

    Raises:
        OSError: the port is taken or privileged, or the address is not ours (``listen_problem``).
    """
    if settings.port == 0:
        return
    for family, kind, proto, _, address in socket.getaddrinfo(
        settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            # As the server binds: a port left in TIME_WAIT is free, one with a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)


def check_tls(settings: Settings, load: Callable[[str, str], object]) -> None:
    """Load TLS_CERT_FILE/TLS_KEY_FILE with ``load`` now, before anything starts listening.

    Raises:
        StartupError: a file is unreadable, or not a PEM certificate chain and its private key.
    """
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return
    for name, path in (("TLS_CERT_FILE", settings.tls_cert_file), ("TLS_KEY_FILE", settings.tls_key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise StartupError(f"{name}: cannot read {path!r}: {_plain(exc)}") from None
    try:
        load(settings.tls_cert_file, settings.tls_key_file)
    except (ssl.SSLError, OSError) as exc:
        # OpenSSL's messages are terse ("[SSL] PEM lib"): say what is wrong in words.
        reason = getattr(exc, "reason", None)
        raise StartupError(
            f"TLS_CERT_FILE/TLS_KEY_FILE: {settings.tls_cert_file!r} and {settings.tls_key_file!r} are not a PEM "
            f"certificate chain and its matching private key" + (f" ({reason})" if reason else "")
        ) from None


def sole_os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` inside ``exc`` when it is the only failure (task groups wrap one in groups of one)."""
    return sole_error(exc, OSError)


def sole_error(exc: BaseException, kind: type[_E]) -> _E | None:
    """The ``kind`` inside ``exc``, unwrapping exception groups (several failures: the first ``kind``)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        # Several failures (the server and the simulator beside it): one of ``kind`` is the cause.
        errors = [e for e in (sole_error(e, kind) for e in exc.exceptions) if e is not None]
        return errors[0] if errors else None
    return exc if isinstance(exc, kind) else None


def _plain(error: OSError) -> str:
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]
