"""A Starlette application with its own route and kiro2api mounted at ``/kiro`` (used by a test).

    uvicorn tests.e2e.conformance.starlette_host:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from adapters.asgi import create_app

kiro = create_app()


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "from the host application"})


# Starlette does not pass the lifespan on to mounted apps: the host runs kiro2api's.
app = Starlette(routes=[Route("/hello", hello), Mount("/kiro", app=kiro)], lifespan=kiro.lifespan)
