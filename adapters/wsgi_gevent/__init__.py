"""The WSGI adapter: kiro2api as a WSGI application, served by gevent's pywsgi.

``create_app()`` returns the WSGI callable; ``python -m adapters.wsgi_gevent`` serves it on
gevent (the only place that monkey-patches). It runs the synchronous runtime generated from the
async one (``adapters/runtime/_sync``), so routes, limits, errors and logs are the standalone
server's. Importing this package does not import gevent.
"""

from ._app import KiroWSGI, create_app

__all__ = ["KiroWSGI", "create_app"]
