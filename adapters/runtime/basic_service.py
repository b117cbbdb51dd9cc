"""The endpoints that need no upstream: health, root, the model list; an error for the rest.

``BasicService`` refuses the model endpoints (``open_service`` uses it when no account is
configured); ``service.KiroService`` (the driver of the account pool, conversion and the
translator) inherits from it and serves them.
"""

from __future__ import annotations

import json
from datetime import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

from kiro_protocol import __version__, AdminCall, ErrorKind, HealthFacts, LocalProtocolError, health_reply, list_models

from .admin_face import AdminFace
from .app import Request, RequestContext, Responder, send_reply

__all__ = ["BasicService", "ModelEntry", "model_entries", "models_body"]

_JSON = (("content-type", "application/json"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """One item of ``GET /v1/models``."""

    id: str
    display_name: str
    #: RFC 3339 release date, as Anthropic's list gives it.
    created_at: str


#: Kiro publishes no release dates; clients only need a valid one.
_CREATED_AT = "2025-05-22T00:00:00Z"


def model_entries(model_map: Mapping[str, str] | None = None) -> tuple[ModelEntry, ...]:
    """The ``GET /v1/models`` entries: the core's model table (``list_models``), ``KIRO_MODEL_MAP`` first."""
    return tuple(
        ModelEntry(id=m.name, display_name=m.display_name or m.name, created_at=_CREATED_AT) for m in list_models(model_map)
    )


def _unix(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def models_body(models: Sequence[ModelEntry]) -> bytes:
    """The model list in Anthropic's shape, with OpenAI's ``object``/``created``/``owned_by`` too.

    Anthropic clients read ``data[].id``/``type``/``display_name``/``created_at`` and the paging
    fields; OpenAI clients read ``object: "list"`` and ``data[].id``/``object``/``created``.
    """
    data = [
        {
            "type": "model",
            "id": m.id,
            "display_name": m.display_name,
            "created_at": m.created_at,
            "object": "model",
            "created": _unix(m.created_at),
            "owned_by": "anthropic",
        }
        for m in models
    ]
    page = {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "object": "list",
    }
    return json.dumps(page, separators=(",", ":")).encode()


class BasicService:
    """Health, root and models; the model endpoints answer ``unavailable``.

    Args:
        health_details: extra fields for ``/health`` (account counts by state, upstream mode).
        models: the entries of ``GET /v1/models``; None: ``model_entries()``.
        unavailable: status and message (``{path}`` is replaced) of the model endpoints.
        admin: the admin API and dashboard (``KIRO_ADMIN_TOKEN``); None: both are off.
        accounts: the account counts ``/health`` reports (``{"configured": 0}``: not ready, 503);
            None: a stand-in with no account pool.
    """

    def __init__(
        self,
        *,
        health_details: Callable[[], dict[str, object]] = lambda: {},
        models: Sequence[ModelEntry] | None = None,
        unavailable: tuple[int, str] = (501, "{path} is not served here."),
        admin: AdminFace | None = None,
        accounts: Mapping[str, int] | None = None,
    ) -> None:
        self._admin = admin
        self._accounts = accounts
        self._health_details = health_details
        self._models = model_entries() if models is None else tuple(models)
        self._unavailable = unavailable

    async def _not_yet(self, ctx: RequestContext) -> None:
        status, message = self._unavailable
        raise LocalProtocolError(message.format(path=ctx.route.path), kind=ErrorKind.API, status_hint=status)

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._not_yet(ctx)

    async def count_tokens(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._not_yet(ctx)

    async def chat_completions(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._not_yet(ctx)

    async def responses(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._not_yet(ctx)

    async def models(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await respond.send_response(200, _JSON, models_body(self._models))

    async def health(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        facts = HealthFacts(
            version=__version__,
            shutting_down=ctx.lifecycle.shutting_down.is_set(),
            accounts=self._accounts,
            details=self._health_details(),
        )
        await send_reply(respond, health_reply(request.target, facts))

    async def root(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        text = (
            f"kiro2api {__version__}: Anthropic Messages at /v1/messages, OpenAI Chat Completions at "
            "/v1/chat/completions, status at /health.\n"
        )
        await respond.send_response(200, (("content-type", "text/plain; charset=utf-8"),), text.encode())

    @property
    def admin_token(self) -> str | None:
        """The token that opens ``/admin`` (``App`` hands it to the front door); None: closed."""
        return self._admin.token if self._admin is not None else None

    def _admin_call(self, ctx: RequestContext) -> tuple[AdminFace, AdminCall]:
        if self._admin is None or ctx.admin is None:
            raise LocalProtocolError(f"Not found: {ctx.route.path}", kind=ErrorKind.NOT_FOUND)
        return self._admin, ctx.admin

    async def admin_api(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        admin, call = self._admin_call(ctx)
        reply = await anyio.to_thread.run_sync(admin.api, call, request.body, request.client)
        self._admin_changed()
        await send_reply(respond, reply)

    async def dashboard(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        admin, call = self._admin_call(ctx)
        reply = await anyio.to_thread.run_sync(admin.dashboard, call, request.headers, request.body, request.client)
        self._admin_changed()
        await send_reply(respond, reply)

    def _admin_changed(self) -> None:
        """An admin request ran: what it changed is served from now on (``KiroService``)."""
