"""Routing, client authentication, CORS and request ids: the decisions every adapter shares.

No I/O: an adapter hands in the method, the request target and the headers it received, and
gets back an ``Endpoint``, an error to render, or the headers to add. Keeping these ``if``s
here (architecture rule 2) is what makes the anyio server, the ASGI app and the WSGI app answer
byte-for-byte alike.
"""

from __future__ import annotations

import enum
import hmac
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import ErrorKind, LocalProtocolError, ProtocolError
from ._messages import Reply
from ._error_bodies import anthropic_error_body, openai_error_body, responses_error_body

__all__ = [
    "Endpoint",
    "Dialect",
    "Route",
    "MethodNotAllowed",
    "route_request",
    "split_target",
    "dialect_for_path",
    "authenticate",
    "extract_client_token",
    "CORS_HEADERS",
    "preflight_headers",
    "sane_request_id",
    "format_request_id",
    "REQUEST_ID_HEADER",
    "error_answer",
]


class Endpoint(enum.Enum):
    """What a request asks for, independent of the adapter that received it."""

    #: ``POST /v1/messages``: Anthropic Messages, streaming or not.
    MESSAGES = "messages"
    #: ``POST /v1/messages/count_tokens``: a local input-token estimate.
    COUNT_TOKENS = "count_tokens"
    #: ``GET /v1/models``: the model list (Anthropic shape, readable by OpenAI clients).
    MODELS = "models"
    #: ``POST /v1/chat/completions``: OpenAI Chat Completions.
    CHAT_COMPLETIONS = "chat_completions"
    #: ``POST /v1/responses``: the OpenAI Responses API (the Codex CLI).
    RESPONSES = "responses"
    #: ``GET /health``: liveness and account counts; no auth.
    HEALTH = "health"
    #: ``GET``/``HEAD /``: answered without error so probes and browsers are happy; no auth.
    ROOT = "root"
    #: ``OPTIONS`` anything: a CORS preflight, answered before auth.
    PREFLIGHT = "preflight"
    #: ``/admin/api/...``: the admin JSON API (the admin token, never a client key; docs/admin.md).
    ADMIN_API = "admin_api"
    #: ``/admin`` and its forms: the dashboard (a session cookie from a login with the admin token).
    DASHBOARD = "dashboard"
    #: ``GET /metrics``: Prometheus metrics, with the admin token (docs/usage.md#metrics).
    METRICS = "metrics"


class Dialect(enum.Enum):
    """Which API family's error shape a route answers in."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    #: The OpenAI Responses API: OpenAI's error shape, its own request and answer.
    RESPONSES = "responses"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """The result of routing one request."""

    #: The endpoint asked for.
    endpoint: Endpoint
    #: The path without query string or fragment (``/v1/messages`` for ``/v1/messages?beta=true``).
    path: str
    #: Whether the client token must be checked before answering.
    requires_auth: bool
    #: The error dialect of this endpoint.
    dialect: Dialect


class MethodNotAllowed(LocalProtocolError):
    """A known path asked with a method it does not serve (405). ``allow`` lists the right ones."""

    default_status = 405

    def __init__(self, message: str, *, allow: tuple[str, ...]) -> None:
        super().__init__(message, kind=ErrorKind.INVALID_REQUEST, status_hint=405)
        self.allow = allow


# path -> (methods, endpoint, requires_auth). HEAD is served wherever GET is (RFC 9110 §9.3.2).
_ROUTES: dict[str, tuple[frozenset[str], Endpoint, bool]] = {
    "/v1/messages": (frozenset({"POST"}), Endpoint.MESSAGES, True),
    "/v1/messages/count_tokens": (frozenset({"POST"}), Endpoint.COUNT_TOKENS, True),
    "/v1/models": (frozenset({"GET", "HEAD"}), Endpoint.MODELS, True),
    "/v1/chat/completions": (frozenset({"POST"}), Endpoint.CHAT_COMPLETIONS, True),
    "/v1/responses": (frozenset({"POST"}), Endpoint.RESPONSES, True),
    "/health": (frozenset({"GET", "HEAD"}), Endpoint.HEALTH, False),
    # Not a client route: the front door asks for the admin token instead (_front_door._metrics).
    "/metrics": (frozenset({"GET", "HEAD"}), Endpoint.METRICS, False),
    "/": (frozenset({"GET", "HEAD"}), Endpoint.ROOT, False),
}

_METHOD_ORDER = ("GET", "HEAD", "POST", "OPTIONS")


def split_target(target: str) -> str:
    """The path of a request target: query string and fragment dropped, one trailing ``/`` removed.

    An absolute-form target (``http://host/v1/messages``, allowed by RFC 9112 §3.2.2) is reduced
    to its path as well.
    """
    for sep in ("?", "#"):
        cut = target.find(sep)
        if cut >= 0:
            target = target[:cut]
    if "://" in target:
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    if not target:
        target = "/"
    if len(target) > 1 and target.endswith("/"):
        target = target[:-1]
    return target


def dialect_for_path(path: str) -> Dialect:
    """The error dialect for ``path``: OpenAI's shape under ``/v1/chat/`` and ``/v1/responses``,
    Anthropic's elsewhere."""
    if path == "/v1/chat" or path.startswith("/v1/chat/"):
        return Dialect.OPENAI
    if path == "/v1/responses" or path.startswith("/v1/responses/"):
        return Dialect.RESPONSES
    return Dialect.ANTHROPIC


def route_request(method: str, target: str) -> Route:
    """Route ``method`` and request ``target`` to an endpoint.

    Args:
        method: the HTTP method as received (compared case-sensitively, as RFC 9110 §9.1 says).
        target: the request target (path with an optional query string).

    Raises:
        LocalProtocolError: 404 ``not_found_error`` for an unknown path.
        MethodNotAllowed: 405 for a known path asked with the wrong method.
    """
    path = split_target(target)
    dialect = dialect_for_path(path)
    if method == "OPTIONS":
        return Route(endpoint=Endpoint.PREFLIGHT, path=path, requires_auth=False, dialect=dialect)
    if path == "/admin" or path.startswith("/admin/"):
        # The admin subtree routes on (kiro_protocol.http._admin.admin_call) once it is on.
        api = path == "/admin/api" or path.startswith("/admin/api/")
        return Route(endpoint=Endpoint.ADMIN_API if api else Endpoint.DASHBOARD, path=path, requires_auth=False,
                     dialect=dialect)
    entry = _ROUTES.get(path)
    if entry is None:
        raise LocalProtocolError(f"Not found: {method} {path}", kind=ErrorKind.NOT_FOUND)
    methods, endpoint, requires_auth = entry
    if method not in methods:
        allow = tuple(m for m in _METHOD_ORDER if m in methods or m == "OPTIONS")
        raise MethodNotAllowed(f"Method {method} is not allowed on {path}; use {', '.join(allow)}.", allow=allow)
    return Route(endpoint=endpoint, path=path, requires_auth=requires_auth, dialect=dialect)


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def extract_client_token(headers: Iterable[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The candidate tokens ``(x-api-key, bearer)`` a client sent; either may be None.

    ``Authorization`` counts only with the ``Bearer`` scheme (case-insensitive, RFC 9110 §11.1).
    """
    pairs = list(headers)
    api_key = _header(pairs, "x-api-key")
    bearer = None
    auth = _header(pairs, "authorization")
    if auth is not None:
        scheme, _, credentials = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            bearer = credentials.strip()
    return (api_key.strip() if api_key is not None else None), bearer


def _same(candidate: str, expected: bytes) -> bool:
    # compare_digest on bytes: constant time in the length of the candidate, and safe for
    # non-ASCII input (the str form of compare_digest rejects it with TypeError).
    return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), expected)


def authenticate(headers: Iterable[tuple[str, str]], expected_token: str) -> None:
    """Check the client's token against ``expected_token``, in constant time.

    Either ``x-api-key`` or ``Authorization: Bearer`` may carry it; the request passes when
    either matches (Claude Code sends ``x-api-key`` with ``ANTHROPIC_API_KEY`` and a bearer token
    with ``ANTHROPIC_AUTH_TOKEN``; OpenAI clients send a bearer token).

    Raises:
        LocalProtocolError: 401 ``authentication_error``; the message never quotes a token.
    """
    if not expected_token:
        raise ValueError("the expected client token must not be empty")
    expected = expected_token.encode("utf-8", "surrogateescape")
    api_key, bearer = extract_client_token(headers)
    if api_key is None and bearer is None:
        raise LocalProtocolError(
            "Missing API key: send it in the x-api-key header or as Authorization: Bearer <token>.",
            kind=ErrorKind.AUTHENTICATION,
        )
    # Evaluate both comparisons so that timing does not reveal which header was checked.
    ok_key = _same(api_key, expected) if api_key is not None else False
    ok_bearer = _same(bearer, expected) if bearer is not None else False
    if not (ok_key or ok_bearer):
        raise LocalProtocolError("Invalid API key.", kind=ErrorKind.AUTHENTICATION)


#: Added to every response (spec/protocol.md §2.3). No credentials mode, so ``*`` is valid.
CORS_HEADERS: tuple[tuple[str, str], ...] = (
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    ("access-control-allow-headers", "Content-Type, Authorization, x-api-key"),
    ("access-control-expose-headers", "X-Request-ID"),
)

_BASE_ALLOWED_HEADERS = ("Content-Type", "Authorization", "x-api-key")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MAX_PREFLIGHT_HEADERS = 64


def preflight_headers(requested: str | None) -> tuple[tuple[str, str], ...]:
    """The CORS headers for an ``OPTIONS`` answer.

    The Anthropic SDK in a browser asks for more than the three base headers
    (``anthropic-version``, ``x-stainless-*``...), and a wildcard does not cover ``Authorization``
    (Fetch standard), so well-formed names from ``Access-Control-Request-Headers`` are echoed
    after the base list. Anything that is not an RFC 9110 token is dropped.
    """
    names = list(_BASE_ALLOWED_HEADERS)
    seen = {n.lower() for n in names}
    if requested:
        for raw in requested.split(",")[:_MAX_PREFLIGHT_HEADERS]:
            name = raw.strip()
            if _TOKEN.fullmatch(name) and name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
    return (
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, POST, OPTIONS"),
        ("access-control-allow-headers", ", ".join(names)),
        ("access-control-expose-headers", "X-Request-ID"),
        ("access-control-max-age", "86400"),
    )


#: The request-id header, echoed when sane and generated otherwise (spec §2.3).
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it is fit to echo and log (1-128 safe characters), else None.

    A client-chosen id ends up in our log lines and response headers: anything that could forge
    a log line or a header (spaces, control characters, quotes) is refused, not cleaned.
    """
    if value is None:
        return None
    value = value.strip()
    return value if _REQUEST_ID.fullmatch(value) else None


def format_request_id(random_hex: str) -> str:
    """A generated request id, ``req_<hex>``; the adapter supplies the randomness."""
    return f"req_{random_hex}"


def error_answer(error: ProtocolError, dialect: Dialect) -> Reply:
    """Render ``error`` as a complete response in ``dialect``'s error shape (without the CORS and
    request-id headers every answer gets)."""
    if dialect is Dialect.RESPONSES:
        body = responses_error_body(error.kind, error.message, param=error.param)
    elif dialect is Dialect.OPENAI:
        body = openai_error_body(error.kind, error.message, param=error.param)
    else:
        body = anthropic_error_body(error.kind, error.message)
    headers: list[tuple[str, str]] = [("content-type", "application/json")]
    if isinstance(error, MethodNotAllowed):
        headers.append(("allow", ", ".join(error.allow)))
    if error.kind is ErrorKind.AUTHENTICATION:
        headers.append(("www-authenticate", 'Bearer realm="kiro2api"'))
    if error.retry_after is not None:
        # Whole seconds (RFC 9110), rounded up: a client retrying at once would be refused again.
        headers.append(("retry-after", str(max(1, math.ceil(error.retry_after)))))
    return Reply(status=error.status_hint, headers=tuple(headers), body=body, error=error.kind)
