"""The admin API and the dashboard on every way of serving: the admin token alone opens them,
accounts are listed without secrets and added and removed at run time, every change is
audited, and the dashboard's login makes an HttpOnly, SameSite session without a token in any
URL."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from .conftest import ADMIN_TOKEN, TOKEN, Gateway, request

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"}
NEW_ACCOUNT = {"auth": "Social", "refreshToken": "aorAAAAAG-conformance-admin-added-account",
               "description": "added by test_admin"}


def admin(gateway: Gateway, method: str, path: str, body: object | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    status, head, data = request(gateway.port, method, path, json.dumps(body).encode() if body is not None else None,
                                 headers if headers is not None else ADMIN)
    return status, head, json.loads(data) if data else None


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": TOKEN}, {"authorization": f"Bearer {TOKEN}"}, {"authorization": "Bearer not-the-admin-token-000"}],
    ids=["no-token", "client-key", "client-bearer", "wrong-token"],
)
def test_the_admin_api_refuses_all_but_the_admin_token(gateway: Gateway, headers: dict[str, str]) -> None:
    status, head, body = admin(gateway, "GET", "/admin/api/accounts", headers=headers)
    assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert TOKEN not in json.dumps(body) and ADMIN_TOKEN not in json.dumps(body)
    assert head.get("www-authenticate") == 'Bearer realm="kiro2api"'


def test_the_admin_token_opens_no_model_endpoint(gateway: Gateway) -> None:
    status, _, body = request(gateway.port, "POST", "/v1/messages", b"{}", {"x-api-key": ADMIN_TOKEN})
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"


def test_accounts_are_listed_added_and_removed_at_run_time_and_audited(gateway: Gateway) -> None:
    status, head, listed = admin(gateway, "GET", "/admin/api/accounts")
    assert status == 200 and head["cache-control"] == "no-store"
    demo = listed["accounts"][0]
    assert demo["description"] == "simulator demo" and demo["source"] == "configured" and demo["status"] == "usable"
    for field in ("remaining_credits", "quota_resets_at", "cooldown_until", "last_error", "counters"):
        assert field in demo
    status, _, added = admin(gateway, "POST", "/admin/api/accounts", NEW_ACCOUNT)
    assert status == 201 and added["source"] == "added" and added["description"] == "added by test_admin"
    try:
        text = json.dumps(admin(gateway, "GET", "/admin/api/accounts")[2])
        assert "aorAAAAAG" not in text and "refresh" not in text.lower().replace("refresh_failing", "")
        status, _, again = admin(gateway, "POST", "/admin/api/accounts", NEW_ACCOUNT)
        assert status == 409 and again["error"]["type"] == "invalid_request_error"
        status, _, bad = admin(gateway, "POST", "/admin/api/accounts", {"refreshToken": "tiny-secret-x"})
        assert status == 400 and "tiny-secret-x" not in bad["error"]["message"]
        status, _, configured = admin(gateway, "DELETE", f"/admin/api/accounts/{demo['id']}")
        assert status == 409 and "KIRO_AUTH_TOKEN" in configured["error"]["message"]
    finally:
        status, _, removed = admin(gateway, "DELETE", f"/admin/api/accounts/{added['id']}")
    assert status == 200 and removed == {"id": added["id"], "removed": True}
    entries = admin(gateway, "GET", "/admin/api/audit?limit=5")[2]["entries"]
    assert [e["action"] for e in entries[:5]] == [
        "accounts.remove", "accounts.remove", "accounts.add", "accounts.add", "accounts.add"
    ]
    assert [e["status"] for e in entries[:5]] == [200, 409, 400, 409, 201]
    assert entries[0]["actor"] == "admin-api" and entries[0]["address"].startswith("127.0.0.1")
    assert "aorAAAAAG" not in json.dumps(entries)


def test_unknown_admin_paths_and_methods(gateway: Gateway) -> None:
    assert admin(gateway, "GET", "/admin/api/nothing")[0] == 404
    status, head, _ = admin(gateway, "PUT", "/admin/api/accounts")
    assert status == 405 and "POST" in head["allow"]


def test_the_dashboard_logs_in_with_a_session_cookie_and_no_token_in_a_url(gateway: Gateway) -> None:
    status, head, page = request(gateway.port, "GET", "/admin")
    assert status == 200 and b'action="/admin/login"' in page and b"simulator demo" not in page
    assert "script-src" not in head["content-security-policy"] and "default-src 'none'" in head["content-security-policy"]
    form = {"content-type": "application/x-www-form-urlencoded"}
    status, _, page = request(gateway.port, "POST", "/admin/login", urlencode({"token": TOKEN}).encode(), form)
    assert status == 401 and b"not the admin token" in page
    status, head, _ = request(gateway.port, "POST", "/admin/login", urlencode({"token": ADMIN_TOKEN}).encode(), form)
    assert status == 303 and head["location"] == "/admin"
    cookie = head["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin"):
        assert flag in cookie
    assert ADMIN_TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    status, _, page = request(gateway.port, "GET", "/admin", headers={"cookie": session})
    html = page.decode()
    assert status == 200 and "simulator demo" in html and '<svg id="chart-requests"' in html
    assert ADMIN_TOKEN not in html and TOKEN not in html and "aorAAAAAG" not in html
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert csrf is not None
    # A form without the session's CSRF token, or from another site, changes nothing.
    forged = {"cookie": session, **form}
    status, _, _ = request(gateway.port, "POST", "/admin/keys", urlencode({"name": "forged"}).encode(), forged)
    assert status == 403
    status, _, _ = request(gateway.port, "POST", "/admin/keys", urlencode({"name": "forged", "csrf": csrf.group(1)}).encode(),
                           {**forged, "origin": "https://evil.example"})
    assert status == 403
    status, _, _ = request(gateway.port, "POST", "/admin/logout", urlencode({"csrf": csrf.group(1)}).encode(), forged)
    assert status == 303
