"""The ASGI adapter: kiro2api as an ASGI 3 application.

Run it under any ASGI server (``uvicorn 'adapters.asgi:create_app' --factory``, hypercorn) or
mount it inside a Starlette/FastAPI application (pass ``lifespan=kiro.lifespan`` to the host, or
the upstream client and state store are never started). Every route, limit, error and log line is
the standalone server's: both drive the same ``adapters.runtime.app.App``.
"""

from ._app import KiroASGI, create_app

__all__ = ["KiroASGI", "create_app"]
