"""Fuzz the inbound decisions: routing, client auth, CORS preflight names and request ids.

Everything here reads attacker-controlled text (request target, headers) before authentication.
"""

from __future__ import annotations

import hmac

from hypothesis import example, given
from hypothesis import strategies as st

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.http._routing import (
    Dialect,
    Endpoint,
    authenticate,
    error_answer,
    preflight_headers,
    route_request,
    sane_request_id,
)

TOKEN = "fuzz-token-0123456789abcdef"
METHODS = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "get", ""]), st.text(max_size=10))
TARGETS = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["/v1/messages", "/v1/chat/completions", "/health", "/", "http://h/v1/models", "/v1/chat/"]),
        st.text(max_size=30),
    ),
)
HEADER_NAMES = st.one_of(st.sampled_from(["x-api-key", "authorization", "X-Api-Key", "Authorization"]), st.text(max_size=12))
HEADERS = st.lists(st.tuples(HEADER_NAMES, st.text(max_size=60)), max_size=6)


@given(METHODS, TARGETS)
@example("POST", "/v1/messages?beta=true")
@example("OPTIONS", "\x00")
def test_route_or_a_renderable_client_error(method: str, target: str) -> None:
    """A ``Route`` whose path has no query, or a LocalProtocolError (404/405) that renders in both dialects."""
    try:
        route = route_request(method, target)
    except LocalProtocolError as exc:
        assert exc.status_hint in (404, 405)
        assert exc.kind in (ErrorKind.NOT_FOUND, ErrorKind.INVALID_REQUEST)
        for dialect in Dialect:
            answer = error_answer(exc, dialect)
            assert answer.status == exc.status_hint and answer.body.startswith(b"{")
        return
    assert "?" not in route.path and "#" not in route.path
    if route.endpoint is not Endpoint.PREFLIGHT:  # OPTIONS may use the asterisk form (RFC 9112 §3.2.4)
        assert route.path.startswith("/")


@given(HEADERS)
@example([("authorization", "Bearer " + TOKEN)])
@example([("x-api-key", TOKEN + "\udcff")])
def test_auth_passes_exactly_when_a_header_carries_the_token(headers: list[tuple[str, str]]) -> None:
    """Accepted iff x-api-key or a Bearer credential equals the token; otherwise 401, token never echoed."""
    def first(name: str) -> str | None:
        return next((v for n, v in headers if n.lower() == name), None)

    key, auth = first("x-api-key"), first("authorization")
    scheme, _, credentials = (auth or "").strip().partition(" ")
    expected = (key is not None and key.strip() == TOKEN) or (
        scheme.lower() == "bearer" and credentials.strip() == TOKEN
    )
    try:
        authenticate(headers, TOKEN)
        passed = True
    except LocalProtocolError as exc:
        assert exc.status_hint == 401 and exc.kind is ErrorKind.AUTHENTICATION
        assert TOKEN not in exc.message
        passed = False
    assert passed == expected


@given(st.one_of(st.none(), st.text(max_size=200)))
def test_preflight_headers_are_always_valid_header_values(requested: str | None) -> None:
    """Whatever the client asks for, the answer holds only token characters, commas and spaces."""
    for name, value in preflight_headers(requested):
        assert name.islower()
        assert all(32 <= ord(c) < 127 for c in value)
        assert "\r" not in value and "\n" not in value


@given(st.one_of(st.none(), st.text(max_size=200)))
def test_request_ids_are_safe_to_log_and_echo(value: str | None) -> None:
    """An echoed request id is 1-128 visible ASCII characters without quotes, spaces or separators."""
    result = sane_request_id(value)
    if result is not None:
        assert 1 <= len(result) <= 128
        assert all(c.isascii() and c.isprintable() and c not in ' "\\,;' for c in result)
        assert value is not None and result == value.strip()


def test_compare_digest_is_what_makes_auth_constant_time() -> None:
    # authenticate() delegates to hmac.compare_digest; guard against a refactor to ``==``.
    import inspect

    import kiro_protocol.http._routing as routing

    assert "compare_digest" in inspect.getsource(routing._same)
    assert hmac.compare_digest(b"a", b"a")
