"""Token-shaped upstream text never reaches a client error (issue 18, item 5: defence in depth)."""

from __future__ import annotations

import json

import pytest

from kiro_protocol.http._messages import HttpResponse
from kiro_protocol.pool._credentials import parse_accounts
from kiro_protocol.pool._mcp import classify_mcp_failure
from kiro_protocol.pool._redaction import redact
from kiro_protocol.pool._refresh import RefreshFailure, parse_refresh_response
from kiro_protocol.pool._upstream_errors import (
    classify_stream_failure,
    classify_upstream_failure,
    connection_failure,
    stream_interrupted,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
KIRO_ACCESS = "aoaAAAAAGhKMWYxNzIzNDU2Nzg5MGFiY2RlZjEyMzQ1Njc4OTBhYmNkZWYxMjM0NTY3"
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("echo: Authorization: Bearer at-0123456789abcdef", "at-0123456789abcdef"),
        ('{"headers":{"authorization":"Bearer at-xyz.123"}}', "at-xyz.123"),
        ('{"refreshToken":"aorAAAAAGfake-refresh"}', "aorAAAAAGfake-refresh"),
        ('{"refresh_token": "short1"}', "short1"),
        ("client_secret=s3cr3t&grant_type=refresh_token", "s3cr3t"),
        ('{"clientSecret":"abcDEF"}', "abcDEF"),
        ("x-api-key: sk-ant-123", "sk-ant-123"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        (f"token was {JWT} and more", JWT),
        (f"unknown {KIRO_ACCESS}", KIRO_ACCESS),
        (f"digest {HEX}", HEX),
        ("password: hunter2", "hunter2"),
    ],
)
def test_token_shaped_text_is_masked(text: str, secret: str) -> None:
    shown = redact(text)
    assert secret not in shown
    assert "***" in shown


@pytest.mark.parametrize(
    "text",
    [
        "The bearer token included in the request is invalid.",
        "Improperly formed request.",
        "Input is too long.",
        "Basic plan: monthly request count exceeded (MONTHLY_REQUEST_COUNT)",
        "request 1b4e28ba-2fa1-11d2-883f-0016d3cca427 failed",
        "model claude-sonnet-4-20250514 is unknown; max_tokens: 100",
        '{"tokenType": "Bearer", "expiresIn": 3600}',
        "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
    ],
)
def test_ordinary_error_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_known_secrets_are_masked_whatever_their_shape() -> None:
    shown = redact("you sent plainwordsecret and plainwordsecretlonger", ["plainwordsecret", "plainwordsecretlonger", None, "x"])
    assert "plainword" not in shown
    assert shown == "you sent *** and ***"
    assert redact("x marks the spot", ["x"]) == "x marks the spot"  # too short to be searched for


def test_an_echoed_authorization_header_never_reaches_the_client() -> None:
    token = "at-" + "Q" * 10 + "7"
    body = json.dumps({"message": f"bad header Authorization: Bearer {token}", "__type": "ValidationException"})
    failure = classify_upstream_failure(400, body.encode(), secrets=[token])
    assert token not in failure.message
    assert token not in failure.client_error.message
    assert "Kiro rejected the request" in failure.client_error.message


def test_the_accounts_own_values_are_masked_even_without_a_token_shape() -> None:
    secret = "plainlettersonlysecret"
    failure = classify_upstream_failure(500, f"oops {secret}".encode(), secrets=[secret])
    assert secret not in failure.client_error.message
    assert "oops ***" in failure.client_error.message


def test_a_secret_in_the_reason_or_the_type_is_masked() -> None:
    body = json.dumps({"message": "no", "reason": f"Bearer {KIRO_ACCESS}", "__type": f"x {JWT}"}).encode()
    failure = classify_upstream_failure(400, body)
    assert KIRO_ACCESS not in (failure.reason or "")
    assert JWT not in failure.client_error.message


def test_stream_exceptions_connection_failures_and_cuts_are_masked() -> None:
    for failure in (
        classify_stream_failure("ThrottlingException", f"slow down, Bearer {KIRO_ACCESS}"),
        connection_failure(f"proxy said Authorization: Bearer {KIRO_ACCESS}"),
        stream_interrupted(f"cut after {JWT}"),
    ):
        assert KIRO_ACCESS not in failure.client_error.message
        assert JWT not in failure.client_error.message
        assert KIRO_ACCESS not in failure.message


def test_web_search_failures_are_masked() -> None:
    failure = classify_mcp_failure(500, f'{{"message":"bad Authorization: Bearer {KIRO_ACCESS}"}}'.encode())
    assert KIRO_ACCESS not in failure.client_error.message


def test_refresh_failures_mask_token_shapes_beyond_the_known_values() -> None:
    account = parse_accounts(
        '[{"auth":"IdC","refreshToken":"aorAAAAAG' + "r" * 40 + '","clientId":"cid","clientSecret":"csecret-123456"}]'
    )[0]
    body = json.dumps({"error": "invalid_request", "echo": f"Authorization: Bearer {KIRO_ACCESS}", "jwt": JWT})
    result = parse_refresh_response(
        HttpResponse(status=400, headers=(), body=body.encode()),
        now=0.0,
        previous_refresh_token=account.refresh_token,
        also_mask=(account.client_secret,),
    )
    assert isinstance(result, RefreshFailure)
    assert KIRO_ACCESS not in result.message and JWT not in result.message
