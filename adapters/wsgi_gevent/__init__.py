"""The WSGI adapter: kiro2api as a WSGI application, served by gevent's pywsgi.

``create_app()`` returns the WSGI callable; ``python -m adapters.wsgi_gevent`` serves it on
gevent (the only place that monkey-patches). It runs the synchronous runtime generated from the
async one (``adapters/runtime/_sync``), so routes, limits, errors and logs are the standalone
server's. Importing this package imports neither gevent nor the runtime: ``python -m`` imports
the package before ``__main__`` can patch, so the application is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import KiroWSGI, create_app

__all__ = ["KiroWSGI", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
