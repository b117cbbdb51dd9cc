"""The ASGI adapter: kiro2api as an ASGI 3 application.

Run it under any ASGI server (``uvicorn 'adapters.asgi:create_app' --factory``, hypercorn) or
mount it inside a Starlette/FastAPI application (pass ``lifespan=kiro.lifespan`` to the host, or
the upstream client and state store are never started). Every route, limit, error and log line is
the standalone server's: both drive the same ``adapters.runtime.app.App``.

``create_app`` is this adapter's composition root: it alone decides that the built-in simulator
answers when no account is configured (``adapters/compose.py``); ``KiroASGI`` is only handed it.
"""

from __future__ import annotations

import logging
import os

from adapters.runtime.app import ApiService
from adapters.runtime.client_token_file import keep_generated_token
from adapters.runtime.logging import configure_logging
from adapters.runtime.settings import Settings, load_settings

from ._app import KiroASGI, StandIn

__all__ = ["KiroASGI", "StandIn", "create_app"]

log = logging.getLogger("kiro2api.server")


def create_app(settings: Settings | None = None, *, service: ApiService | None = None) -> KiroASGI:
    """The ASGI 3 application serving every route of ``kiro2api serve``.

    Args:
        settings: the operator settings; None reads them from the environment and ``./.env``
            (and then also installs kiro2api's logging, as ``kiro2api serve`` does).
        service: the endpoints (tests); None opens the Kiro service from the settings at startup,
            in front of the built-in simulator when no account is configured.

    Raises:
        SettingsError: the environment holds an invalid setting (no secret in the message).
    """
    if settings is None:
        settings = load_settings(environ=os.environ)
        configure_logging(
            level=settings.log_level, fmt=settings.log_format, file=settings.log_file, console=settings.log_console
        )
        for notice in settings.notices:
            log.warning("%s", notice)
        settings = keep_generated_token(settings)
    stand_in: StandIn | None = None
    if service is None and settings.answers_from_simulator:
        from adapters.compose import embedded_simulator

        stand_in = embedded_simulator
    return KiroASGI(settings, service=service, stand_in=stand_in)
