"""The admin face: which admin action a request names, who may take it, dashboard sessions, CSRF.

Two doors lead in, both on only when the operator set an admin token (``KIRO_ADMIN_TOKEN``):

* the JSON API under ``/admin/api/``: every request carries the admin token (``Authorization:
  Bearer`` or ``x-api-key``), checked by the front door before the body is read;
* the dashboard under ``/admin``: a browser logs in once with the token and gets a session
  cookie. The cookie holds no token: an expiry, a random nonce and an HMAC keyed by a digest of
  the admin token, so every replica that knows the token can check it without a shared session
  table, and changing the token ends every session. Each form carries a CSRF token derived from
  the session (a cross-site page cannot read it), and a form whose ``Origin`` names another host
  is refused as well.

No client key ever opens either door: only the admin token is compared here. Pure: time and
randomness are arguments.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from .._errors import ErrorKind, LocalProtocolError
from ._routing import MethodNotAllowed, extract_client_token, split_target

__all__ = [
    "AdminAction",
    "AdminCall",
    "AdminSession",
    "admin_call",
    "authenticate_admin",
    "admin_token_matches",
    "DashboardDoor",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
]

#: The dashboard's cookie; scoped to ``/admin`` so no other route ever receives it.
SESSION_COOKIE = "kiro2api_admin"
#: How long a dashboard login lasts.
SESSION_SECONDS = 12 * 3600


class AdminAction(enum.Enum):
    """What an admin request asks for (the JSON API and the dashboard's forms share them)."""

    ACCOUNTS = "accounts.list"
    ACCOUNT_ADD = "accounts.add"
    ACCOUNT_DISABLE = "accounts.disable"
    ACCOUNT_ENABLE = "accounts.enable"
    ACCOUNT_REMOVE = "accounts.remove"
    KEYS = "keys.list"
    KEY_ADD = "keys.add"
    KEY_DISABLE = "keys.disable"
    KEY_ENABLE = "keys.enable"
    KEY_REMOVE = "keys.remove"
    USAGE = "usage"
    REQUESTS = "requests"
    AUDIT = "audit"
    #: The dashboard page (or the login form, without a session).
    PAGE = "page"
    LOGIN = "login"
    LOGOUT = "logout"

    @property
    def changes(self) -> bool:
        """Whether the action changes something (and so goes to the audit log)."""
        return self not in _READS


_READS = frozenset({AdminAction.ACCOUNTS, AdminAction.KEYS, AdminAction.USAGE, AdminAction.REQUESTS,
                    AdminAction.AUDIT, AdminAction.PAGE})


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminCall:
    """One admin request, routed."""

    action: AdminAction
    #: The account id or key name the path names, if any.
    target: str | None = None
    #: The query string's parameters (the last value of each name).
    query: Mapping[str, str]
    #: True for the JSON API, False for the dashboard.
    api: bool


# (method, relative path with * for one segment) -> action. The dashboard is a browser's: forms
# can only GET and POST, so every change is a POST there; the API also takes DELETE.
_SHARED: tuple[tuple[str, str, AdminAction], ...] = (
    ("POST", "accounts", AdminAction.ACCOUNT_ADD),
    ("POST", "accounts/*/disable", AdminAction.ACCOUNT_DISABLE),
    ("POST", "accounts/*/enable", AdminAction.ACCOUNT_ENABLE),
    ("POST", "accounts/*/remove", AdminAction.ACCOUNT_REMOVE),
    ("POST", "keys", AdminAction.KEY_ADD),
    ("POST", "keys/*/disable", AdminAction.KEY_DISABLE),
    ("POST", "keys/*/enable", AdminAction.KEY_ENABLE),
    ("POST", "keys/*/remove", AdminAction.KEY_REMOVE),
)
_API: tuple[tuple[str, str, AdminAction], ...] = _SHARED + (
    ("GET", "accounts", AdminAction.ACCOUNTS),
    ("DELETE", "accounts/*", AdminAction.ACCOUNT_REMOVE),
    ("GET", "keys", AdminAction.KEYS),
    ("DELETE", "keys/*", AdminAction.KEY_REMOVE),
    ("GET", "usage", AdminAction.USAGE),
    ("GET", "requests", AdminAction.REQUESTS),
    ("GET", "audit", AdminAction.AUDIT),
)
_DASHBOARD: tuple[tuple[str, str, AdminAction], ...] = _SHARED + (
    ("GET", "", AdminAction.PAGE),
    ("POST", "login", AdminAction.LOGIN),
    ("POST", "logout", AdminAction.LOGOUT),
)
_METHOD_ORDER = ("GET", "HEAD", "POST", "DELETE", "OPTIONS")
# Account ids (acct-<hex>) and key names; anything else in a path is nothing we hold.
_SEGMENT = re.compile(r"[A-Za-z0-9._@:-]{1,128}")


def _match(pattern: str, parts: list[str]) -> str | None | bool:
    """The ``*`` segment of ``parts`` if they match ``pattern`` (None when it has none), else False."""
    want = pattern.split("/") if pattern else []
    if len(want) != len(parts):
        return False
    target: str | None = None
    for expected, part in zip(want, parts):
        if expected == "*":
            if not _SEGMENT.fullmatch(part):
                return False
            target = part
        elif expected != part:
            return False
    return target


def admin_call(method: str, target: str) -> AdminCall:
    """Route an admin request (``target`` under ``/admin``) to its action.

    Raises:
        LocalProtocolError: 404 ``not_found_error`` for a path that names no action.
        MethodNotAllowed: 405 for a known path asked with another method.
    """
    path = split_target(target)
    query = dict(parse_qsl(urlsplit(target).query))
    api = path == "/admin/api" or path.startswith("/admin/api/")
    rest = path[len("/admin/api"):] if api else path[len("/admin"):]
    parts = [unquote(p) for p in rest.strip("/").split("/")] if rest.strip("/") else []
    asked = "GET" if method == "HEAD" else method
    allowed: set[str] = set()
    for verb, pattern, action in _API if api else _DASHBOARD:
        found = _match(pattern, parts)
        if found is False:
            continue
        if verb == asked:
            return AdminCall(action=action, target=found if isinstance(found, str) else None, query=query, api=api)
        allowed.add(verb)
        if verb == "GET":
            allowed.add("HEAD")
    if not allowed:
        raise LocalProtocolError(f"Not found: {method} {path}", kind=ErrorKind.NOT_FOUND)
    allow = tuple(m for m in _METHOD_ORDER if m in allowed or m == "OPTIONS")
    raise MethodNotAllowed(f"Method {method} is not allowed on {path}; use {', '.join(allow)}.", allow=allow)


def _same(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def admin_token_matches(candidate: str, admin_token: str) -> bool:
    """Whether ``candidate`` is the admin token (constant time; the dashboard's login)."""
    return bool(admin_token) and _same(candidate.strip(), admin_token)


def authenticate_admin(headers: Iterable[tuple[str, str]], admin_token: str) -> None:
    """Check the admin token of an API request (``Authorization: Bearer`` or ``x-api-key``).

    Raises:
        LocalProtocolError: 401 ``authentication_error``; a client key is refused like any other
            wrong token, and the message never quotes what was sent.
    """
    api_key, bearer = extract_client_token(headers)
    if api_key is None and bearer is None:
        raise LocalProtocolError(
            "Missing admin token: send KIRO_ADMIN_TOKEN as Authorization: Bearer <token> or in x-api-key.",
            kind=ErrorKind.AUTHENTICATION,
        )
    # Both comparisons run, so timing does not reveal which header was checked.
    ok_key = admin_token_matches(api_key, admin_token) if api_key is not None else False
    ok_bearer = admin_token_matches(bearer, admin_token) if bearer is not None else False
    if not (ok_key or ok_bearer):
        raise LocalProtocolError("Invalid admin token (client keys do not open the admin API).",
                                 kind=ErrorKind.AUTHENTICATION)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSession:
    """A dashboard login."""

    #: The cookie's value (no token in it).
    cookie: str
    #: What every form of this session must send back in its ``csrf`` field.
    csrf: str
    #: Unix time the session ends.
    expires_at: int


def _key(admin_token: str) -> bytes:
    return hashlib.sha256(b"kiro2api-admin-session\0" + admin_token.encode("utf-8", "surrogateescape")).digest()


def _mac(admin_token: str, purpose: str, text: str) -> str:
    return hmac.new(_key(admin_token), f"{purpose}\0{text}".encode(), hashlib.sha256).hexdigest()


def _session(admin_token: str, expires_at: int, nonce: str) -> AdminSession:
    body = f"{expires_at}.{nonce}"
    return AdminSession(
        cookie=f"{body}.{_mac(admin_token, 'session', body)}",
        csrf=_mac(admin_token, "csrf", nonce)[:40],
        expires_at=expires_at,
    )


_NONCE = re.compile(r"[0-9a-f]{16,64}")


def _cookies(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != "cookie":
            continue
        for pair in value.split(";"):
            key, sep, val = pair.strip().partition("=")
            if sep and key not in found:
                found[key] = val.strip().strip('"')
    return found


class DashboardDoor:
    """The dashboard's login, sessions and form checks for one admin token.

    Args:
        admin_token: ``KIRO_ADMIN_TOKEN``.
        secure: the dashboard is served over HTTPS: cookies get the ``Secure`` flag.
    """

    def __init__(self, admin_token: str, *, secure: bool = False) -> None:
        if not admin_token:
            raise ValueError("the admin token must not be empty")
        self._token = admin_token
        self._secure = "; Secure" if secure else ""

    def login(self, candidate: str, now: float, nonce_hex: str) -> AdminSession | None:
        """The session of a login at ``now`` with ``candidate``, or None when it is not the admin
        token. ``nonce_hex``: fresh randomness (16 to 64 lower-case hex digits)."""
        if not _NONCE.fullmatch(nonce_hex):
            raise ValueError("nonce_hex must be 16 to 64 lower-case hex digits")
        if not admin_token_matches(candidate, self._token):
            return None
        return _session(self._token, int(now) + SESSION_SECONDS, nonce_hex)

    def session(self, headers: Iterable[tuple[str, str]], now: float) -> AdminSession | None:
        """The valid, unexpired session the request's cookie names, or None."""
        value = _cookies(headers).get(SESSION_COOKIE)
        if value is None or value.count(".") != 2:
            return None
        expires, nonce, _ = value.split(".")
        if not expires.isdigit() or len(expires) > 12 or not _NONCE.fullmatch(nonce):
            return None
        session = _session(self._token, int(expires), nonce)
        if not _same(value, session.cookie) or session.expires_at <= now:
            return None
        return session

    def cookie(self, session: AdminSession, now: float) -> str:
        """The ``Set-Cookie`` value that starts ``session``: HttpOnly (no script reads it),
        SameSite=Strict (no other site's page sends it), scoped to ``/admin``."""
        max_age = max(0, session.expires_at - int(now))
        return f"{SESSION_COOKIE}={session.cookie}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{self._secure}"

    def logout_cookie(self) -> str:
        """The ``Set-Cookie`` value that ends the browser's session."""
        return f"{SESSION_COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict{self._secure}"

    @staticmethod
    def form_allowed(headers: Iterable[tuple[str, str]], session: AdminSession, submitted_csrf: str | None) -> bool:
        """Whether a dashboard form may change something: it carries the session's CSRF token,
        and its ``Origin`` (when the browser sent one) is this very host."""
        if not DashboardDoor.same_origin(headers):
            return False
        return submitted_csrf is not None and _same(submitted_csrf, session.csrf)

    @staticmethod
    def same_origin(headers: Iterable[tuple[str, str]]) -> bool:
        """False when the browser says the form comes from another site (``Origin`` naming
        another host, or ``null``); True when it says nothing (older browsers, scripts)."""
        pairs = [(k.lower(), v) for k, v in headers]
        origin = next((v for k, v in pairs if k == "origin"), None)
        if origin is None:
            return True
        host = next((v for k, v in pairs if k in ("host", ":authority")), None)
        return origin != "null" and host is not None and _host_of(origin) == host.strip().lower()


def _host_of(origin: str) -> str | None:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    return parts.netloc.lower() or None


