"""The WSGI adapter: kiro2api as a WSGI application, served by gevent's pywsgi.

``create_app()`` returns the WSGI callable; ``python -m adapters.wsgi_gevent`` serves it on
gevent (the only place that monkey-patches). It runs the synchronous runtime generated from the
async one (``adapters/runtime/_sync``), so routes, limits, errors and logs are the standalone
server's. Importing this package imports neither gevent nor the runtime: ``python -m`` imports
the package before ``__main__`` can patch, so the application is loaded on first use.

``create_app`` is this adapter's composition root: it alone decides that the built-in simulator
answers when no account is configured (``adapters/compose.py``); ``KiroWSGI`` is only handed it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.runtime._sync.app import ApiService
    from adapters.runtime.settings import Settings

    from ._app import KiroWSGI, StandIn

__all__ = ["KiroWSGI", "StandIn", "create_app"]


def create_app(settings: Settings | None = None, *, service: ApiService | None = None) -> KiroWSGI:
    """The WSGI application serving every route of ``kiro2api serve``.

    Args:
        settings: the operator settings; None reads the environment and ``./.env``.
        service: the endpoints (tests); None opens the Kiro service from the settings, in front of
            the built-in simulator (a child process) when no account is configured.
    """
    from adapters.runtime.settings import load_settings

    from ._app import KiroWSGI

    if settings is None:
        settings = load_settings(environ=os.environ)
    stand_in: StandIn | None = None
    if service is None and settings.answers_from_simulator:
        from adapters.compose import simulator_process

        stand_in = simulator_process
    return KiroWSGI(settings, service=service, stand_in=stand_in)


def __getattr__(name: str) -> Any:
    if name in ("KiroWSGI", "StandIn"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
