"""The admin JSON API (``/admin/api/...``): one request in, one ``Reply`` out.

The front door already checked the admin token and named the action (``AdminCall``); this
module reads the JSON body, runs the action on the ``AdminConsole`` and writes the audit entry
of every change. Errors are the core's ``LocalProtocolError``s, which ``App`` answers in
Anthropic's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kiro_protocol import AdminAction, AdminCall, ErrorKind, LocalProtocolError, ProtocolError, Reply

from .admin_console import AdminConsole, AuditEntry

__all__ = ["admin_api_reply", "NO_STORE"]

#: Headers of every admin answer: nothing in it may be cached, framed or sniffed.
NO_STORE: tuple[tuple[str, str], ...] = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with the
    # dashboard's own forms, which the CSRF check must refuse.
    ("referrer-policy", "same-origin"),
)
_JSON = (("content-type", "application/json"),) + NO_STORE


def _json(status: int, body: object) -> Reply:
    return Reply(status=status, headers=_JSON, body=json.dumps(body, separators=(",", ":")).encode())


def _body(raw: bytes) -> Mapping[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise LocalProtocolError("The body is not valid JSON.", kind=ErrorKind.INVALID_REQUEST) from None
    if not isinstance(data, dict):
        raise LocalProtocolError("The body must be a JSON object.", kind=ErrorKind.INVALID_REQUEST)
    return data


def _limit(query: Mapping[str, str], default: int) -> int:
    try:
        return max(1, int(query.get("limit", default)))
    except ValueError:
        raise LocalProtocolError("limit must be a whole number.", kind=ErrorKind.INVALID_REQUEST, param="limit") from None


def _run(console: AdminConsole, call: AdminCall, body: bytes) -> tuple[int, Any, str | None]:
    """(status, JSON body, audit detail) of ``call``."""
    action, target, query = call.action, call.target or "", call.query
    if action is AdminAction.ACCOUNTS:
        return 200, {"accounts": console.accounts()}, None
    if action is AdminAction.ACCOUNT_ADD:
        view = console.add_account(_body(body))
        return 201, view, f"added account {view['id']} ({view.get('description') or 'no description'})"
    if action in (AdminAction.ACCOUNT_DISABLE, AdminAction.ACCOUNT_ENABLE):
        disabled = action is AdminAction.ACCOUNT_DISABLE
        return 200, console.set_account_disabled(target, disabled), "disabled" if disabled else "enabled"
    if action is AdminAction.ACCOUNT_REMOVE:
        return 200, console.remove_account(target), "removed"
    if action is AdminAction.KEYS:
        return 200, {"keys": console.keys()}, None
    if action is AdminAction.KEY_ADD:
        view, secret = console.add_key(_body(body))
        # The key is in this answer and nowhere else, ever (the store keeps its digest).
        return 201, {**view, "key": secret}, f"added key {view['name']} (limits {json.dumps(view['limits'])})"
    if action in (AdminAction.KEY_DISABLE, AdminAction.KEY_ENABLE):
        disabled = action is AdminAction.KEY_DISABLE
        return 200, console.set_key_disabled(target, disabled), "disabled" if disabled else "enabled"
    if action is AdminAction.KEY_REMOVE:
        return 200, console.remove_key(target), "removed"
    if action is AdminAction.USAGE:
        return 200, console.usage(by=query.get("by", "key"), since=query.get("since", "7d")), None
    if action is AdminAction.REQUESTS:
        return 200, {"requests": console.recent_requests(_limit(query, 50))}, None
    if action is AdminAction.AUDIT:
        return 200, {"entries": console.audit_log(_limit(query, 100))}, None
    raise LocalProtocolError(f"Not found: {action.value}", kind=ErrorKind.NOT_FOUND)


def admin_api_reply(console: AdminConsole, call: AdminCall, body: bytes, *, address: str | None) -> Reply:
    """Answer one admin API request; changes are audited whether they succeed or not.

    Raises:
        ProtocolError: the request is refused (the caller answers it in Anthropic's shape).
    """
    try:
        status, data, detail = _run(console, call, body)
    except ProtocolError as exc:
        if call.action.changes:
            console.audit(AuditEntry(time=console.clock(), actor="admin-api", action=call.action.value,
                                     target=call.target, address=address, status=exc.status_hint,
                                     detail=f"refused: {exc.message}"))
        raise
    if call.action.changes:
        # An addition's subject is the new account's id or key's name.
        target = call.target or (data.get("id") or data.get("name") if isinstance(data, dict) else None)
        console.audit(AuditEntry(time=console.clock(), actor="admin-api", action=call.action.value, target=target,
                                 address=address, status=status, detail=detail))
    return _json(status, data)
