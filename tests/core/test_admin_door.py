"""The admin door (kiro_protocol.http._admin and the front door's admin branch): on only with an
admin token, the API opened by that token alone, dashboard sessions and CSRF."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from kiro_protocol import (
    AdminAction,
    ClientAuth,
    DashboardDoor,
    Endpoint,
    ErrorKind,
    LocalProtocolError,
    ReplyNow,
    RequestHead,
    Serve,
    ServerState,
    account_status,
    front_door,
    parse_account,
    AccountState,
    ConfigurationError,
)
from kiro_protocol.http import MethodNotAllowed, admin_call

CLIENT = "client-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef-XYZ"
NOW = 1_750_000_000.0
NONCE = "0123456789abcdef0123456789abcdef"


def head(method: str, target: str, *headers: tuple[str, str]) -> RequestHead:
    return RequestHead(method=method, target=target, headers=headers, client="10.0.0.7:5000")


def decide(h: RequestHead, admin: str | None = ADMIN) -> ReplyNow | Serve:
    return front_door(h, ClientAuth(CLIENT, admin_token=admin), ServerState(now=NOW), "00ff")


def refused(h: RequestHead, admin: str | None = ADMIN) -> tuple[int, str, str]:
    decision = decide(h, admin)
    assert isinstance(decision, ReplyNow), decision
    error = json.loads(decision.reply.body)
    assert error["type"] == "error"  # the Anthropic shape
    return decision.reply.status, error["error"]["type"], error["error"]["message"]


def test_the_admin_door_is_shut_without_an_admin_token() -> None:
    for target in ("/admin", "/admin/api/accounts", "/admin/login"):
        status, kind, message = refused(head("GET", target, ("authorization", f"Bearer {CLIENT}")), admin=None)
        assert (status, kind) == (404, "not_found_error")
        assert "KIRO_ADMIN_TOKEN" in message


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("x-api-key", CLIENT),),
        (("authorization", f"Bearer {CLIENT}"),),
        (("authorization", "Bearer wrong-admin-token"),),
        (("authorization", f"Basic {ADMIN}"),),
        (("x-api-key", ADMIN[:-1]),),
    ],
    ids=["none", "client-key-header", "client-bearer", "wrong", "basic-scheme", "prefix"],
)
def test_the_admin_api_refuses_anything_but_the_admin_token(headers: tuple[tuple[str, str], ...]) -> None:
    status, kind, message = refused(head("GET", "/admin/api/accounts", *headers))
    assert (status, kind) == (401, "authentication_error")
    assert CLIENT not in message and ADMIN not in message


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_the_admin_token_opens_the_api_in_either_header(header: str) -> None:
    value = ADMIN if header == "x-api-key" else f"Bearer {ADMIN}"
    decision = decide(head("POST", "/admin/api/accounts/acct-0011223344556677/disable", (header, value)))
    assert isinstance(decision, Serve)
    assert decision.route.endpoint is Endpoint.ADMIN_API and not decision.session
    assert decision.admin is not None and decision.admin.api
    assert decision.admin.action is AdminAction.ACCOUNT_DISABLE and decision.admin.target == "acct-0011223344556677"


def test_the_admin_token_is_no_client_key() -> None:
    status, kind, _ = refused(head("POST", "/v1/messages", ("x-api-key", ADMIN)))
    assert (status, kind) == (401, "authentication_error")


def test_the_api_is_authenticated_before_its_paths_are_told_apart() -> None:
    assert refused(head("GET", "/admin/api/nothing-here"))[:2] == (401, "authentication_error")
    assert refused(head("GET", "/admin/api/nothing-here", ("x-api-key", ADMIN)))[:2] == (404, "not_found_error")


def test_the_dashboard_is_served_without_a_token_for_its_login_form() -> None:
    decision = decide(head("GET", "/admin"))
    assert isinstance(decision, Serve) and decision.route.endpoint is Endpoint.DASHBOARD
    assert decision.admin is not None and decision.admin.action is AdminAction.PAGE and not decision.admin.api
    login = decide(head("POST", "/admin/login"))
    assert isinstance(login, Serve) and login.admin is not None and login.admin.action is AdminAction.LOGIN


@pytest.mark.parametrize(
    ("method", "target", "action", "subject"),
    [
        ("GET", "/admin/api/accounts", AdminAction.ACCOUNTS, None),
        ("HEAD", "/admin/api/accounts", AdminAction.ACCOUNTS, None),
        ("POST", "/admin/api/accounts", AdminAction.ACCOUNT_ADD, None),
        ("POST", "/admin/api/accounts/acct-1/enable", AdminAction.ACCOUNT_ENABLE, "acct-1"),
        ("DELETE", "/admin/api/accounts/acct-1", AdminAction.ACCOUNT_REMOVE, "acct-1"),
        ("POST", "/admin/api/accounts/acct-1/remove", AdminAction.ACCOUNT_REMOVE, "acct-1"),
        ("GET", "/admin/api/keys/", AdminAction.KEYS, None),
        ("POST", "/admin/api/keys", AdminAction.KEY_ADD, None),
        ("POST", "/admin/api/keys/ci-bot/disable", AdminAction.KEY_DISABLE, "ci-bot"),
        ("POST", "/admin/api/keys/ci%2Dbot/enable", AdminAction.KEY_ENABLE, "ci-bot"),
        ("DELETE", "/admin/api/keys/ci-bot", AdminAction.KEY_REMOVE, "ci-bot"),
        ("GET", "/admin/api/usage?by=model&since=7d", AdminAction.USAGE, None),
        ("GET", "/admin/api/requests", AdminAction.REQUESTS, None),
        ("GET", "/admin/api/audit?limit=5", AdminAction.AUDIT, None),
        ("GET", "/admin/", AdminAction.PAGE, None),
        ("POST", "/admin/logout", AdminAction.LOGOUT, None),
        ("POST", "/admin/keys", AdminAction.KEY_ADD, None),
        ("POST", "/admin/accounts/acct-9/disable", AdminAction.ACCOUNT_DISABLE, "acct-9"),
    ],
)
def test_admin_paths_name_their_actions(method: str, target: str, action: AdminAction, subject: str | None) -> None:
    call = admin_call(method, target)
    assert (call.action, call.target) == (action, subject)
    assert call.api == target.startswith("/admin/api")


def test_query_parameters_reach_the_action() -> None:
    assert dict(admin_call("GET", "/admin/api/usage?by=model&since=7d").query) == {"by": "model", "since": "7d"}


def test_reads_are_not_audited_and_changes_are() -> None:
    assert not AdminAction.ACCOUNTS.changes and not AdminAction.PAGE.changes
    assert AdminAction.ACCOUNT_ADD.changes and AdminAction.LOGIN.changes and AdminAction.KEY_REMOVE.changes


def test_wrong_methods_and_unknown_paths() -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        admin_call("PUT", "/admin/api/accounts")
    assert caught.value.allow == ("GET", "HEAD", "POST", "OPTIONS")
    with pytest.raises(MethodNotAllowed):
        admin_call("GET", "/admin/accounts/acct-1/remove")
    with pytest.raises(LocalProtocolError):
        admin_call("DELETE", "/admin/accounts/acct-1")  # a browser's form cannot DELETE: POST .../remove
    for target in ("/admin/api/accounts/a/b/c", "/admin/api/accounts/bad%20name/disable", "/admin/nothing",
                   "/admin/api/accounts/" + "x" * 129 + "/disable"):
        with pytest.raises(LocalProtocolError) as error:
            admin_call("POST", target)
        assert error.value.kind is ErrorKind.NOT_FOUND
    status, kind, _ = refused(head("PUT", "/admin/api/accounts", ("x-api-key", ADMIN)))
    assert (status, kind) == (405, "invalid_request_error")


def test_a_login_with_the_admin_token_makes_a_session_the_cookie_brings_back() -> None:
    door = DashboardDoor(ADMIN)
    assert door.login(CLIENT, NOW, NONCE) is None
    assert door.login("", NOW, NONCE) is None
    session = door.login(ADMIN, NOW, NONCE)
    assert session is not None and ADMIN not in session.cookie and session.expires_at == NOW + 12 * 3600
    set_cookie = door.cookie(session, NOW)
    assert set_cookie.startswith(f"kiro2api_admin={session.cookie};")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=43200"):
        assert flag in set_cookie
    assert "Secure" not in set_cookie and "Secure" in DashboardDoor(ADMIN, secure=True).cookie(session, NOW)
    cookie = ("cookie", f"theme=dark; kiro2api_admin={session.cookie}")
    assert door.session([cookie], NOW + 60) == session
    assert door.session([cookie], session.expires_at) is None  # expired
    assert DashboardDoor(ADMIN + "-rotated").session([cookie], NOW) is None  # a new token ends every session
    assert "Max-Age=0" in door.logout_cookie()


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "1.2", "99999999999.0123456789abcdef0123.00", "abc.0123456789abcdef.00", "1.NOTHEX0123456789.00"],
)
def test_forged_or_broken_cookies_open_nothing(value: str) -> None:
    assert DashboardDoor(ADMIN).session([("cookie", f"kiro2api_admin={value}")], NOW) is None


@given(st.integers(min_value=int(NOW) + 1, max_value=int(NOW) + 10**7), st.from_regex(r"[0-9a-f]{16,64}", fullmatch=True))
def test_a_session_cookie_cannot_be_extended_by_editing_its_expiry(expires: int, nonce: str) -> None:
    door = DashboardDoor(ADMIN)
    session = door.login(ADMIN, NOW, nonce)
    assert session is not None
    _, _, mac = session.cookie.split(".")
    forged = f"{expires}.{nonce}.{mac}"
    found = door.session([("cookie", f"kiro2api_admin={forged}")], NOW)
    assert found is None or found.expires_at == session.expires_at


def test_a_nonce_must_be_randomness_of_a_sane_size() -> None:
    with pytest.raises(ValueError):
        DashboardDoor(ADMIN).login(ADMIN, NOW, "short")
    with pytest.raises(ValueError):
        DashboardDoor("")


def test_forms_need_the_sessions_csrf_token_and_a_same_site_origin() -> None:
    door = DashboardDoor(ADMIN)
    session = door.login(ADMIN, NOW, NONCE)
    other = door.login(ADMIN, NOW, "f" * 32)
    assert session is not None and other is not None and session.csrf != other.csrf
    host = ("host", "gw.example:8080")
    assert door.form_allowed([host], session, session.csrf)
    assert door.form_allowed([host, ("origin", "http://gw.example:8080")], session, session.csrf)
    assert not door.form_allowed([host], session, None)
    assert not door.form_allowed([host], session, other.csrf)
    assert not door.form_allowed([host, ("origin", "https://evil.example")], session, session.csrf)
    assert not door.form_allowed([host, ("origin", "null")], session, session.csrf)
    assert not door.form_allowed([("origin", "http://gw.example:8080")], session, session.csrf)  # no host to compare
    assert door.form_allowed([(":authority", "gw.example:8080"), ("origin", "https://gw.example:8080")], session, session.csrf)
    assert not DashboardDoor.same_origin([host, ("origin", "http://[bad")])


def test_a_runtime_account_is_parsed_like_a_configured_one_and_its_errors_name_no_value() -> None:
    account = parse_account({"refreshToken": "r" * 40, "description": "extra"}, index=3)
    assert account.index == 3 and account.label == "#3 (extra)" and account.account_id.startswith("acct-")
    with pytest.raises(ConfigurationError) as caught:
        parse_account({"refreshToken": "short-secret"}, index=2)
    assert str(caught.value) == "account 2: `refreshToken` looks truncated (too short or contains '...')"
    with pytest.raises(ConfigurationError, match="must be a JSON object"):
        parse_account(["r" * 40], index=0)


def test_the_account_status_shows_cooldown_and_the_last_error_but_no_secret() -> None:
    account = parse_account({"auth": "IdC", "refreshToken": "r" * 40, "clientId": "cid-123", "clientSecret": "s" * 30},
                            index=0)
    state = AccountState(access_token="t" * 30, expires_at=NOW + 900, cooldown_until=NOW + 30,
                         cooldown_reason="HTTP 429", refresh_token="n" * 40)
    status = account_status(account, state, NOW)
    assert status["status"] == "cooling_down" and status["cooldown_until"] == "2025-06-15T15:07:10Z"
    assert status["last_error"] == "HTTP 429" and status["id"] == account.account_id
    text = json.dumps(status)
    for secret in ("r" * 40, "s" * 30, "t" * 30, "n" * 40, "cid-123"):
        assert secret not in text
    calm = account_status(account, AccountState(), NOW)
    assert calm["cooldown_until"] is None and calm["last_error"] is None
