"""``GET /health``: readiness by default, liveness with ``?live``; the status code decided here.

An orchestrator reads the status code, not the body. 200 means "send model requests here";
503 means "not now": shutting down, the state store unreadable, or no account configured (every
model request would be answered 503 too). ``/health?live`` answers 200 whenever the process
answers at all, for a liveness probe that must not restart a gateway merely waiting for its
configuration (docs/deployment.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._messages import Reply

__all__ = ["HealthFacts", "health_reply", "wants_liveness"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthFacts:
    """What the runtime knows about the gateway when ``/health`` is asked."""

    version: str
    #: A graceful shutdown began.
    shutting_down: bool = False
    #: Account counts by state (``configured``, ``usable``...); None: the service has no account
    #: pool to count (a stand-in serving no model requests it could fail).
    accounts: Mapping[str, object] | None = None
    #: The state store could not be read, so the accounts' state is unknown.
    store_unavailable: bool = False
    #: The admin API is on: accounts may be added at run time.
    admin_enabled: bool = False
    #: Extra fields of the composition root (the simulator's warning, the upstream mode).
    details: Mapping[str, object] = field(default_factory=dict)


_JSON = (("content-type", "application/json"),)


def wants_liveness(target: str) -> bool:
    """Whether the request target asks for liveness only (``/health?live``, also ``?live=1``)."""
    query = target.partition("?")[2].partition("#")[0]
    return any(part.partition("=")[0] == "live" for part in query.split("&"))


def health_reply(target: str, facts: HealthFacts) -> Reply:
    """The answer to ``GET /health`` (``target`` as received, for ``?live``)."""
    body: dict[str, object] = {"version": facts.version}
    if wants_liveness(target):
        body = {"status": "shutting_down" if facts.shutting_down else "alive", **body}
        return _reply(200, body)
    status, code = "ok", 200
    configured = facts.accounts.get("configured") if facts.accounts is not None else None
    if facts.shutting_down:
        status, code = "shutting_down", 503
    elif facts.store_unavailable:
        status, code = "degraded", 503
    elif configured == 0:
        # Every model request would get 503: an orchestrator must not route here yet.
        status, code = "not_ready", 503
        how = "set KIRO_AUTH_TOKEN" + (" or add one with the admin API" if facts.admin_enabled else "")
        body["reason"] = f"No Kiro account is configured: {how} (see docs/accounts.md)."
    elif facts.accounts is not None and facts.accounts.get("usable") == 0:
        # Accounts exist but are all out for now (throttled, refreshing): they come back by
        # themselves, so the gateway stays routable and requests wait or get 429.
        status = "degraded"
    body = {"status": status, **body}
    if facts.accounts is not None:
        body["accounts"] = dict(facts.accounts)
    body.update(facts.details)
    return _reply(code, body)


def _reply(status: int, body: Mapping[str, object]) -> Reply:
    return Reply(status=status, headers=_JSON, body=json.dumps(body, separators=(",", ":")).encode())
