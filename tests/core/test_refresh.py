"""Social and IdC refresh: requests as captured (tests/fixtures/accounts), answers parsed, failures split
into permanent (invalid_grant) and transient, and no token ever quoted."""

from __future__ import annotations

import json

import pytest

from kiro_protocol.pool._credentials import parse_accounts
from kiro_protocol.http._messages import HttpResponse
from kiro_protocol.pool._kiro_identity import ClientVersions, Endpoints
from kiro_protocol.pool._refresh import RefreshedToken, RefreshFailure, build_refresh_request, parse_refresh_response

TOKEN = "aorAAAAAGexample-refresh-token"
MID = "69c92434269208a50ac2c3007e3c8124a1f749fb2675bb728b30b1bea4075d77"


def social(**extra: object):  # type: ignore[no-untyped-def]
    return parse_accounts(json.dumps({"auth": "Social", "refreshToken": TOKEN, **extra}))[0]


def idc(**extra: object):  # type: ignore[no-untyped-def]
    return parse_accounts(json.dumps({"auth": "IdC", "refreshToken": TOKEN, "clientId": "<clientId>",
                                      "clientSecret": "<clientSecret>", **extra}))[0]


def test_social_request_matches_the_capture() -> None:
    req = build_refresh_request(social(), refresh_token=TOKEN, versions=ClientVersions(kiro_version="0.9.2"),
                                endpoints=Endpoints(), invocation_id="i")
    assert (req.method, req.url) == ("POST", "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken")
    assert req.body == b'{"refreshToken":"aorAAAAAGexample-refresh-token"}'
    assert req.headers == (
        ("Accept", "application/json, text/plain, */*"),
        ("Content-Type", "application/json"),
        ("User-Agent", f"KiroIDE-0.9.2-{MID}"),
        ("host", "prod.us-east-1.auth.desktop.kiro.dev"),
    )


def test_idc_request_is_json_in_the_account_region() -> None:
    req = build_refresh_request(idc(region="eu-central-1"), refresh_token="rotated-token", versions=ClientVersions(),
                                endpoints=Endpoints(), invocation_id="inv")
    assert req.url == "https://oidc.eu-central-1.amazonaws.com/token"
    assert json.loads(req.body) == {"clientId": "<clientId>", "clientSecret": "<clientSecret>",
                                    "grantType": "refresh_token", "refreshToken": "rotated-token"}
    assert list(json.loads(req.body)) == ["clientId", "clientSecret", "grantType", "refreshToken"]
    assert req.header("content-type") == "application/json"
    assert req.header("x-amz-user-agent") == (
        "aws-sdk-js/3.980.0 ua/2.1 os/other lang/js md/browser#unknown_unknown api/sso-oidc#3.980.0 m/E KiroIDE")
    assert req.header("amz-sdk-invocation-id") == "inv" and req.header("User-Agent") == "node"


def ok(body: dict[str, object]) -> HttpResponse:
    return HttpResponse(status=200, body=json.dumps(body).encode())


def test_social_answer_with_rotation_and_profile_arn() -> None:
    got = parse_refresh_response(
        ok({"accessToken": "AT", "expiresIn": 3600, "profileArn": "arn:aws:codewhisperer:us-east-1:1:profile/P",
            "refreshToken": "NEW"}), now=1000.0, previous_refresh_token=TOKEN)
    assert got == RefreshedToken(access_token="AT", expires_at=4600.0, refresh_token="NEW",
                                 profile_arn="arn:aws:codewhisperer:us-east-1:1:profile/P")
    assert "AT" not in repr(got).replace("RefreshedToken", "") and "NEW" not in repr(got)


def test_idc_answer_without_rotation_or_with_the_same_token() -> None:
    got = parse_refresh_response(ok({"accessToken": "AT", "expiresIn": 900, "tokenType": "Bearer"}), now=0.0,
                                 previous_refresh_token=TOKEN)
    assert isinstance(got, RefreshedToken) and got.refresh_token is None and got.expires_at == 900
    same = parse_refresh_response(ok({"accessToken": "AT", "refreshToken": TOKEN}), now=0.0,
                                  previous_refresh_token=TOKEN)
    assert isinstance(same, RefreshedToken) and same.refresh_token is None and same.expires_at == 3600


@pytest.mark.parametrize(
    "status, body",
    [
        (400, '{"error":"invalid_grant","error_description":"Invalid refresh token provided"}'),
        (401, '{"message":"Invalid refresh token provided"}'),
        (400, '{"error":"invalid_client"}'),
    ],
)
def test_dead_refresh_tokens_are_permanent(status: int, body: str) -> None:
    got = parse_refresh_response(HttpResponse(status=status, body=body.encode()), now=0, previous_refresh_token=TOKEN)
    assert isinstance(got, RefreshFailure) and got.permanent and got.status == status
    assert "rejected" in got.message


@pytest.mark.parametrize("status, body", [(500, "boom"), (429, "slow down"), (400, "bad request"), (403, "")])
def test_other_failures_are_transient(status: int, body: str) -> None:
    got = parse_refresh_response(HttpResponse(status=status, body=body.encode()), now=0, previous_refresh_token=TOKEN)
    assert isinstance(got, RefreshFailure) and not got.permanent
    assert f"HTTP {status}" in got.message


def test_the_refresh_token_is_never_quoted() -> None:
    body = json.dumps({"error": "invalid_grant", "echo": TOKEN}).encode()
    got = parse_refresh_response(HttpResponse(status=400, body=body), now=0, previous_refresh_token=TOKEN)
    assert isinstance(got, RefreshFailure) and TOKEN not in got.message and "***" in got.message


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"accessToken": ""}', b'{"accessToken": 5}', b'{"accessToken":"a","expiresIn":-1}',
     b'{"accessToken":"a","expiresIn":"3600"}', b'{"accessToken":"a","expiresIn":true}'],
)
def test_malformed_200_answers_are_transient_failures(body: bytes) -> None:
    got = parse_refresh_response(HttpResponse(status=200, body=body), now=0, previous_refresh_token=TOKEN)
    assert isinstance(got, RefreshFailure) and not got.permanent and got.status == 200


def test_client_secret_echoed_in_an_error_is_masked() -> None:
    body = b'{"error":"invalid_client","error_description":"bad secret client-secret-XYZ"}'
    got = parse_refresh_response(HttpResponse(status=400, body=body), now=0, previous_refresh_token=TOKEN,
                                 also_mask=("client-secret-XYZ", None))
    assert isinstance(got, RefreshFailure) and "client-secret-XYZ" not in got.message and got.permanent
