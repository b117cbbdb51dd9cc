"""The dashboard at ``/admin``: server-rendered HTML forms and SVG charts, no script at all.

The core's ``DashboardDoor`` decides who is logged in and which forms may change something
(session cookie, CSRF token, same-origin); this module renders what the ``AdminConsole`` shows
and runs the forms' actions through it. A change answers with a redirect back to the page
(post/redirect/get), except a new key, whose value is shown once on the page that answers
the form. Nothing secret is rendered: no token, no refresh token, no client secret, no key
other than the one just made; the forms' secret fields are password inputs never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from urllib.parse import parse_qsl

from kiro_protocol import (
    __version__,
    AdminAction,
    AdminCall,
    AdminSession,
    DashboardDoor,
    ProtocolError,
    Reply,
    UsageRecord,
)

from .admin_api import NO_STORE
from .admin_console import AdminConsole, AuditEntry
from .charts import bar_chart

__all__ = ["dashboard_reply"]

# No script may run, styles only inline, forms only to ourselves, never framed.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HTML = (("content-type", "text/html; charset=utf-8"), ("content-security-policy", _CSP)) + NO_STORE

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f2d3d;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:18px;margin:0}main{padding:16px 20px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 16px;margin-bottom:16px}
h2{font-size:16px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;background:#fafbfc}.error{color:#a40000}.ok{color:#1a7f37}
.status-usable{color:#1a7f37}.status-disabled,.status-invalid,.status-exhausted{color:#a40000}
.status-cooling_down,.status-refresh_failing{color:#9a6700}
form.inline{display:inline}button{cursor:pointer}input,select{margin:2px 6px 2px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart-title{font-weight:600;font-size:12px}.axis{font-size:10px;fill:#555}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px;margin-bottom:12px}
.problem{background:#ffebe9;border:1px solid #cf222e;padding:8px 12px;border-radius:6px;margin-bottom:12px}
code{background:#eef;padding:1px 4px;border-radius:3px}tr.failed td{background:#fff5f5}
"""


def _page(title: str, body: str, status: int = 200, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )
    return Reply(status=status, headers=_HTML + extra, body=html.encode())


def _redirect(extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status=303, headers=(("location", "/admin"),) + NO_STORE + extra, body=b"")


def _login_page(problem: str | None = None, status: int = 200) -> Reply:
    note = f'<p class="problem" id="login-problem">{escape(problem)}</p>' if problem else ""
    body = (
        f"<header><h1>kiro2api admin</h1><span>{escape(__version__)}</span></header><main><section>"
        f"<h2>Log in</h2>{note}"
        '<form method="post" action="/admin/login" id="login">'
        '<label>Admin token <input type="password" name="token" autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form>'
        "<p>The token is <code>KIRO_ADMIN_TOKEN</code>; the session lasts 12 hours.</p>"
        "</section></main>"
    )
    return _page("kiro2api admin: log in", body, status)


def _form(action: str, session: AdminSession, label: str, *, css: str = "inline") -> str:
    return (
        f'<form class="{css}" method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrf" value="{escape(session.csrf)}">'
        f'<button type="submit">{escape(label)}</button></form>'
    )


def _text(value: object) -> str:
    return "" if value is None else escape(str(value))


def _accounts(console: AdminConsole, session: AdminSession) -> str:
    rows = []
    for view in console.accounts():
        account_id = str(view["id"])
        counters = view.get("counters") or {}
        assert isinstance(counters, Mapping)
        counts = ", ".join(f"{escape(str(k))} {float(v):g}" for k, v in sorted(counters.items()))
        status = str(view["status"])
        switch = (
            _form(f"/admin/accounts/{account_id}/enable", session, "Enable")
            if status == "disabled"
            else _form(f"/admin/accounts/{account_id}/disable", session, "Disable")
        )
        if view.get("source") == "added":
            switch += " " + _form(f"/admin/accounts/{account_id}/remove", session, "Remove")
        rows.append(
            f'<tr class="account" data-id="{escape(account_id)}"><td>#{_text(view["index"])} {_text(view.get("description"))}'
            f"<br><small><code>{escape(account_id)}</code> {_text(view.get('auth'))}, {_text(view.get('source'))}</small></td>"
            f'<td class="status-{escape(status)}">{escape(status)}<br><small>{_text(view.get("reason"))}</small></td>'
            f"<td>{_text(view.get('remaining_credits'))}<br><small>{_text(view.get('subscription'))}</small></td>"
            f"<td>{_text(view.get('quota_resets_at'))}</td><td>{_text(view.get('cooldown_until'))}</td>"
            f'<td class="error">{_text(view.get("last_error"))}</td><td><small>{counts}</small></td><td>{switch}</td></tr>'
        )
    table = (
        '<table id="accounts"><tr><th>Account</th><th>State</th><th>Credits left</th><th>Resets</th>'
        "<th>Cooldown until</th><th>Last error</th><th>Counters</th><th></th></tr>"
        + ("".join(rows) or '<tr><td colspan="8">No account yet: add one below.</td></tr>')
        + "</table>"
    )
    add = (
        f'<details><summary>Add an account</summary><form method="post" action="/admin/accounts" id="add-account">'
        f'<input type="hidden" name="csrf" value="{escape(session.csrf)}">'
        '<label>Auth <select name="auth"><option>Social</option><option>IdC</option></select></label>'
        '<label>Refresh token <input type="password" name="refreshToken" autocomplete="off" required></label>'
        '<label>Client id <input type="password" name="clientId" autocomplete="off"></label>'
        '<label>Client secret <input type="password" name="clientSecret" autocomplete="off"></label>'
        '<label>Region <input name="region" placeholder="us-east-1"></label>'
        '<label>Description <input name="description"></label>'
        '<button type="submit">Add account</button></form>'
        "<p><small>Refresh tokens and client secrets are kept in the state store and never shown again.</small></p>"
        "</details>"
    )
    return f'<section><h2>Accounts</h2>{table}{add}</section>'


def _keys(console: AdminConsole, session: AdminSession) -> str:
    rows = []
    for view in console.keys():
        name = str(view["name"])
        limits = view.get("limits") or {}
        assert isinstance(limits, Mapping)
        shown = ", ".join(
            f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in limits.items() if v not in (0, [], None)
        ) or "none"
        usage = view.get("usage_30d") or {}
        assert isinstance(usage, Mapping)
        state = "disabled" if view.get("disabled") else ("expired" if view.get("expired") else "active")
        switch = (
            _form(f"/admin/keys/{name}/enable", session, "Enable")
            if view.get("disabled")
            else _form(f"/admin/keys/{name}/disable", session, "Disable")
        ) + " " + _form(f"/admin/keys/{name}/remove", session, "Remove")
        rows.append(
            f'<tr class="key" data-name="{escape(name)}"><td>{escape(name)}<br><small><code>{_text(view.get("hint"))}…</code></small></td>'
            f"<td>{escape(state)}</td><td><small>{escape(shown)}</small></td><td>{_text(view.get('expires_at'))}</td>"
            f"<td>{_text(usage.get('requests'))}</td><td>{_text(usage.get('errors'))}</td>"
            f"<td>{_text(int(usage.get('input_tokens') or 0) + int(usage.get('output_tokens') or 0))}</td>"
            f"<td>{float(usage.get('credits') or 0):g}</td><td>{switch}</td></tr>"
        )
    table = (
        '<table id="keys"><tr><th>Key</th><th>State</th><th>Limits</th><th>Expires</th><th>Requests (30 d)</th>'
        "<th>Errors</th><th>Tokens</th><th>Credits</th><th></th></tr>"
        + ("".join(rows) or '<tr><td colspan="9">No named key yet (KIRO_CLIENT_TOKEN is the built-in one).</td></tr>')
        + "</table>"
    )
    add = (
        f'<details><summary>Add a key</summary><form method="post" action="/admin/keys" id="add-key">'
        f'<input type="hidden" name="csrf" value="{escape(session.csrf)}">'
        '<label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}"></label>'
        '<label>Requests/min <input name="rpm" type="number" min="0" size="5"></label>'
        '<label>Concurrency <input name="concurrency" type="number" min="0" size="4"></label>'
        '<label>Tokens/day <input name="tokens_per_day" type="number" min="0"></label>'
        '<label>Tokens/month <input name="tokens_per_month" type="number" min="0"></label>'
        '<label>Models <input name="models" placeholder="claude-sonnet-4-5,claude-haiku*"></label>'
        '<label>Expires <input name="expires" placeholder="30d or 2026-01-31"></label>'
        '<button type="submit">Add key</button></form></details>'
    )
    return f'<section><h2>Client keys</h2>{table}{add}</section>'


def _hours(now: float, records: Sequence[UsageRecord]) -> str:
    start = math.floor(now / 3600) * 3600 - 23 * 3600
    requests = [0.0] * 24
    tokens = [0.0] * 24
    errors = [0.0] * 24
    for record in records:
        slot = int((record.time - start) // 3600)
        if 0 <= slot < 24:
            requests[slot] += 1
            tokens[slot] += record.input_tokens + record.output_tokens
            if record.error is not None or record.status >= 400:
                errors[slot] += 1
    labels = [datetime.fromtimestamp(start + i * 3600, timezone.utc).strftime("%H:00") for i in range(24)]
    return (
        '<section><h2>Last 24 hours (UTC)</h2><div class="charts">'
        + bar_chart("Requests per hour", list(zip(labels, requests)), chart_id="chart-requests")
        + bar_chart("Tokens per hour", list(zip(labels, tokens)), color="#6a4c93", chart_id="chart-tokens")
        + bar_chart("Errors per hour", list(zip(labels, errors)), color="#c0392b", chart_id="chart-errors")
        + "</div></section>"
    )


def _recent(console: AdminConsole) -> str:
    rows = []
    for r in console.recent_requests(30):
        failed = r["error"] is not None or int(str(r["status"])) >= 400
        rows.append(
            f'<tr class="{"failed" if failed else "served"}"><td>{_text(r["time"])}</td><td>{_text(r["key"])}</td>'
            f"<td>{_text(r['account'])}</td><td>{_text(r['model'])}</td><td>{_text(r['dialect'])}"
            f"{' stream' if r['stream'] else ''}</td><td>{_text(r['status'])}</td>"
            f'<td class="error">{_text(r["error"])}</td><td>{_text(r["input_tokens"])} / {_text(r["output_tokens"])}</td>'
            f"<td>{float(str(r['duration'] or 0)):.2f} s</td></tr>"
        )
    return (
        '<section><h2>Recent requests (errors first)</h2><table id="requests"><tr><th>Time</th><th>Key</th>'
        "<th>Account</th><th>Model</th><th>Dialect</th><th>Status</th><th>Error</th><th>Tokens in / out</th>"
        "<th>Duration</th></tr>" + ("".join(rows) or '<tr><td colspan="9">No request in the last day.</td></tr>')
        + "</table></section>"
    )


def _audit(console: AdminConsole) -> str:
    rows = "".join(
        f"<tr><td>{_text(e.get('time'))}</td><td>{_text(e.get('actor'))}</td><td>{_text(e.get('action'))}</td>"
        f"<td>{_text(e.get('target'))}</td><td>{_text(e.get('address'))}</td><td>{_text(e.get('status'))}</td>"
        f"<td>{_text(e.get('detail'))}</td></tr>"
        for e in console.audit_log(20)
    )
    return (
        '<section><h2>Audit log</h2><table id="audit"><tr><th>Time</th><th>Who</th><th>What</th><th>On</th>'
        f"<th>From</th><th>Status</th><th>Detail</th></tr>{rows}</table></section>"
    )


def _dashboard(console: AdminConsole, session: AdminSession, *, note: str = "", status: int = 200) -> Reply:
    now = console.clock()
    body = (
        f"<header><h1>kiro2api admin</h1><span>{escape(__version__)} "
        + _form("/admin/logout", session, "Log out")
        + f"</span></header><main>{note}"
        + _accounts(console, session)
        + _keys(console, session)
        + _hours(now, console.records(now - 24 * 3600))
        + _recent(console)
        + _audit(console)
        + "</main>"
    )
    return _page("kiro2api admin", body, status)


def _fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _account_entry(fields: Mapping[str, str]) -> dict[str, object]:
    keys = ("auth", "refreshToken", "clientId", "clientSecret", "region", "description")
    return {k: fields[k].strip() for k in keys if fields.get(k, "").strip()}


def dashboard_reply(
    console: AdminConsole,
    door: DashboardDoor,
    call: AdminCall,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    address: str | None,
    nonce_hex: str,
) -> Reply:
    """Answer one dashboard request (``call`` routed by the front door)."""
    now = console.clock()
    session = door.session(headers, now)
    if call.action is AdminAction.LOGIN:
        fields = _fields(body)
        if not door.same_origin(headers):
            return _login_page("This form was sent from another site.", 403)
        fresh = door.login(fields.get("token", ""), now, nonce_hex)
        console.audit(AuditEntry(time=now, actor="dashboard", action="login", target=None, address=address,
                                 status=303 if fresh else 401, detail=None if fresh else "wrong token"))
        if fresh is None:
            return _login_page("That is not the admin token.", 401)
        return _redirect((("set-cookie", door.cookie(fresh, now)),))
    if session is None:
        if call.action is AdminAction.PAGE:
            return _login_page()
        return _redirect()  # the session ended: log in again
    if call.action is AdminAction.PAGE:
        return _dashboard(console, session)
    fields = _fields(body)
    actor = f"dashboard:{session.cookie.split('.')[1][:8]}"
    if not door.form_allowed(headers, session, fields.get("csrf")):
        console.audit(AuditEntry(time=now, actor=actor, action=call.action.value, target=call.target, address=address,
                                 status=403, detail="refused: CSRF check failed"))
        return _page("kiro2api admin", '<main><p class="problem">This form is stale or came from another site: '
                     '<a href="/admin">reload the dashboard</a>.</p></main>', 403)
    if call.action is AdminAction.LOGOUT:
        console.audit(AuditEntry(time=now, actor=actor, action="logout", target=None, address=address, status=303))
        return _redirect((("set-cookie", door.logout_cookie()),))
    target = call.target or ""
    try:
        note = ""
        if call.action is AdminAction.ACCOUNT_ADD:
            view = console.add_account(_account_entry(fields))
            detail = f"added account {view['id']}"
            target = str(view["id"])
        elif call.action in (AdminAction.ACCOUNT_DISABLE, AdminAction.ACCOUNT_ENABLE):
            console.set_account_disabled(target, call.action is AdminAction.ACCOUNT_DISABLE)
            detail = "disabled" if call.action is AdminAction.ACCOUNT_DISABLE else "enabled"
        elif call.action is AdminAction.ACCOUNT_REMOVE:
            console.remove_account(target)
            detail = "removed"
        elif call.action is AdminAction.KEY_ADD:
            view, secret = console.add_key(fields)
            target = str(view["name"])
            detail = f"added key {target}"
            note = (
                f'<div class="banner">New key <b>{escape(target)}</b>: <code id="new-key">{escape(secret)}</code> '
                "(copy it now: it is shown only this once).</div>"
            )
        elif call.action in (AdminAction.KEY_DISABLE, AdminAction.KEY_ENABLE):
            console.set_key_disabled(target, call.action is AdminAction.KEY_DISABLE)
            detail = "disabled" if call.action is AdminAction.KEY_DISABLE else "enabled"
        elif call.action is AdminAction.KEY_REMOVE:
            console.remove_key(target)
            detail = "removed"
        else:
            return _redirect()
    except ProtocolError as exc:
        console.audit(AuditEntry(time=now, actor=actor, action=call.action.value, target=target or None,
                                 address=address, status=exc.status_hint, detail=f"refused: {exc.message}"))
        problem = f'<div class="problem" id="problem">{escape(exc.message)}</div>'
        return _dashboard(console, session, note=problem, status=exc.status_hint)
    console.audit(AuditEntry(time=now, actor=actor, action=call.action.value, target=target or None, address=address,
                             status=200 if note else 303, detail=detail))
    return _dashboard(console, session, note=note) if note else _redirect()
