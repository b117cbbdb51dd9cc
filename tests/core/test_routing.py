"""Routing, client auth, CORS and request ids (kiro_protocol.http._routing)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.http._routing import (
    CORS_HEADERS,
    Dialect,
    Endpoint,
    MethodNotAllowed,
    authenticate,
    dialect_for_path,
    error_answer,
    extract_client_token,
    format_request_id,
    preflight_headers,
    route_request,
    sane_request_id,
    split_target,
)

TOKEN = "kiro-secret-token-0123456789"


@pytest.mark.parametrize(
    ("method", "target", "endpoint", "auth"),
    [
        ("POST", "/v1/messages", Endpoint.MESSAGES, True),
        ("POST", "/v1/messages?beta=true", Endpoint.MESSAGES, True),
        ("POST", "/v1/messages/", Endpoint.MESSAGES, True),
        ("POST", "/v1/messages/count_tokens?beta=true", Endpoint.COUNT_TOKENS, True),
        ("GET", "/v1/models", Endpoint.MODELS, True),
        ("HEAD", "/v1/models", Endpoint.MODELS, True),
        ("POST", "/v1/chat/completions", Endpoint.CHAT_COMPLETIONS, True),
        ("GET", "/health", Endpoint.HEALTH, False),
        ("GET", "/", Endpoint.ROOT, False),
        ("HEAD", "/", Endpoint.ROOT, False),
        ("GET", "/?x=1", Endpoint.ROOT, False),
        ("OPTIONS", "/v1/messages", Endpoint.PREFLIGHT, False),
        ("OPTIONS", "/anything/at/all", Endpoint.PREFLIGHT, False),
        ("POST", "http://localhost:8080/v1/messages?beta=true", Endpoint.MESSAGES, True),
    ],
)
def test_routes(method: str, target: str, endpoint: Endpoint, auth: bool) -> None:
    route = route_request(method, target)
    assert route.endpoint is endpoint
    assert route.requires_auth is auth
    assert "?" not in route.path


def test_unknown_path_is_404_not_found() -> None:
    with pytest.raises(LocalProtocolError) as info:
        route_request("GET", "/v1/nope")
    assert info.value.status_hint == 404
    assert info.value.kind is ErrorKind.NOT_FOUND
    answer = error_answer(info.value, Dialect.ANTHROPIC)
    assert answer.status == 404
    assert json.loads(answer.body) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Not found: GET /v1/nope"},
    }


@pytest.mark.parametrize(("method", "target"), [("GET", "/v1/messages"), ("POST", "/v1/models"), ("DELETE", "/health")])
def test_wrong_method_is_405_with_allow(method: str, target: str) -> None:
    with pytest.raises(MethodNotAllowed) as info:
        route_request(method, target)
    assert info.value.status_hint == 405
    answer = error_answer(info.value, Dialect.ANTHROPIC)
    allow = dict(answer.headers)["allow"]
    assert "OPTIONS" in allow and method not in allow


def test_methods_are_case_sensitive() -> None:
    with pytest.raises(MethodNotAllowed):
        route_request("post", "/v1/messages")


def test_split_target() -> None:
    assert split_target("/v1/messages?beta=true#x") == "/v1/messages"
    assert split_target("") == "/"
    assert split_target("/") == "/"
    assert split_target("https://example.com") == "/"


def test_dialects() -> None:
    assert route_request("POST", "/v1/chat/completions").dialect is Dialect.OPENAI
    assert route_request("POST", "/v1/messages").dialect is Dialect.ANTHROPIC
    assert dialect_for_path("/v1/chat/unknown") is Dialect.OPENAI
    assert dialect_for_path("/v1/chatter") is Dialect.ANTHROPIC


def test_the_responses_route_answers_errors_in_the_openai_shape() -> None:
    route = route_request("POST", "/v1/responses?x=1")
    assert route.endpoint is Endpoint.RESPONSES and route.dialect is Dialect.RESPONSES and route.requires_auth
    assert dialect_for_path("/v1/responses/resp_1") is Dialect.RESPONSES
    assert dialect_for_path("/v1/responsesx") is Dialect.ANTHROPIC
    with pytest.raises(MethodNotAllowed):
        route_request("GET", "/v1/responses")
    error = LocalProtocolError("prompt is too long: 300000 tokens", param="input")
    body = json.loads(error_answer(error, Dialect.RESPONSES).body)
    assert body == {"error": {"message": error.message, "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded"}}


def test_openai_error_shape_for_chat_completions() -> None:
    error = LocalProtocolError("Invalid API key.", kind=ErrorKind.AUTHENTICATION)
    answer = error_answer(error, Dialect.OPENAI)
    body = json.loads(answer.body)
    assert answer.status == 401
    assert body["error"]["type"] == "authentication_error" and body["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    "headers",
    [
        [("x-api-key", TOKEN)],
        [("X-Api-Key", f"  {TOKEN} ")],
        [("authorization", f"Bearer {TOKEN}")],
        [("Authorization", f"bearer {TOKEN}")],
        # Either header may carry it: a wrong one does not hide a right one.
        [("authorization", "Bearer wrong"), ("x-api-key", TOKEN)],
        [("x-api-key", "wrong"), ("authorization", f"Bearer {TOKEN}")],
    ],
)
def test_auth_accepts(headers: list[tuple[str, str]]) -> None:
    authenticate(headers, TOKEN)


@pytest.mark.parametrize(
    ("headers", "missing"),
    [
        ([], True),
        ([("authorization", TOKEN)], True),  # no Bearer scheme
        ([("authorization", f"Basic {TOKEN}")], True),
        ([("authorization", "Bearer ")], True),
        ([("x-api-key", "wrong")], False),
        ([("x-api-key", TOKEN[:-1])], False),
        ([("x-api-key", TOKEN + "x")], False),
        ([("x-api-key", "é" * 5)], False),
        ([("authorization", "Bearer wrong")], False),
    ],
)
def test_auth_rejects_without_echoing_the_token(headers: list[tuple[str, str]], missing: bool) -> None:
    with pytest.raises(LocalProtocolError) as info:
        authenticate(headers, TOKEN)
    assert info.value.status_hint == 401
    assert info.value.kind is ErrorKind.AUTHENTICATION
    assert ("Missing" in info.value.message) is missing
    assert TOKEN not in info.value.message and "wrong" not in info.value.message


def test_auth_refuses_an_empty_expected_token() -> None:
    with pytest.raises(ValueError):
        authenticate([("x-api-key", "")], "")


def test_extract_client_token() -> None:
    assert extract_client_token([("x-api-key", "a"), ("authorization", "Bearer b")]) == ("a", "b")
    assert extract_client_token([]) == (None, None)


@given(st.text(max_size=40))
def test_auth_only_the_exact_token_passes(candidate: str) -> None:
    if candidate.strip() == TOKEN:
        authenticate([("x-api-key", candidate)], TOKEN)
    else:
        with pytest.raises(LocalProtocolError):
            authenticate([("x-api-key", candidate)], TOKEN)


def test_cors_headers_match_the_spec() -> None:
    headers = dict(CORS_HEADERS)
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert headers["access-control-allow-headers"] == "Content-Type, Authorization, x-api-key"


def test_preflight_echoes_valid_requested_headers_only() -> None:
    headers = dict(preflight_headers("anthropic-version, X-Stainless-OS, bad header, x-api-key, a\r\nb"))
    allowed = headers["access-control-allow-headers"].split(", ")
    assert allowed[:3] == ["Content-Type", "Authorization", "x-api-key"]
    assert "anthropic-version" in allowed and "X-Stainless-OS" in allowed
    assert not any(" " in a or "\n" in a for a in allowed)
    assert allowed.count("x-api-key") == 1
    assert dict(preflight_headers(None))["access-control-allow-headers"] == "Content-Type, Authorization, x-api-key"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc-123", "abc-123"),
        ("  req_1  ", "req_1"),
        (None, None),
        ("", None),
        ("has space", None),
        ("line\nbreak", None),
        ('quote"', None),
        ("x" * 129, None),
        ("x" * 128, "x" * 128),
    ],
)
def test_sane_request_id(value: str | None, expected: str | None) -> None:
    assert sane_request_id(value) == expected


def test_format_request_id() -> None:
    assert format_request_id("00ff") == "req_00ff"
