"""Per-account identity: machine ids (captured vectors), regions, and the header sets of docs/kiro-protocol.md, Request headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiro_protocol.pool._credentials import parse_accounts
from kiro_protocol.pool._kiro_identity import (
    ClientVersions,
    Endpoints,
    api_region,
    auth_region,
    generate_headers,
    machine_id,
    usage_limits_headers,
)

VECTORS = json.loads((Path(__file__).parent.parent / "fixtures" / "accounts" / "derivations.json").read_text())
# Refresh tokens in the vectors may be shorter than the parser accepts; build configs directly.


def _account(refresh_token: str, **extra: object):  # type: ignore[no-untyped-def]
    token = refresh_token if len(refresh_token) >= 20 else refresh_token + "-" + "p" * 20
    (a,) = parse_accounts(json.dumps({"refreshToken": token, **extra}))
    if token != refresh_token:
        from dataclasses import replace

        a = replace(a, refresh_token=refresh_token)
    return a


@pytest.mark.parametrize("vector", VECTORS["python_machine_id"], ids=lambda v: v["refresh_token"])
def test_machine_id_vectors(vector: dict[str, str]) -> None:
    assert machine_id(_account(vector["refresh_token"])) == vector["machine_id"]


def test_configured_machine_id_wins_and_follows_the_uuid_rule() -> None:
    vec = VECTORS["python_machine_id_normalisation"][0]
    assert machine_id(_account("x" * 30, machineId=vec["configured"])) == vec["effective"]


def test_machine_ids_differ_per_account() -> None:
    assert machine_id(_account("a" * 30)) != machine_id(_account("b" * 30))


def test_regions() -> None:
    plain = _account("t" * 30)
    assert api_region(plain) == "us-east-1" and auth_region(plain) == "us-east-1"
    eu = _account("t" * 30, region="eu-central-1")
    assert api_region(eu) == "eu-central-1" and auth_region(eu) == "eu-central-1"
    arn = "arn:aws:codewhisperer:us-east-2:1:profile/X"
    # The profileArn's region (configured or learnt from a refresh) wins for the data plane.
    assert api_region(_account("t" * 30, region="eu-central-1", profileArn=arn)) == "us-east-2"
    assert api_region(eu, "arn:aws:codewhisperer:ap-southeast-1:1:profile/Y") == "ap-southeast-1"
    assert auth_region(_account("t" * 30, region="eu-central-1", profileArn=arn)) == "eu-central-1"


def test_generate_headers_match_the_py_capture_with_its_versions() -> None:
    # A [PY] generateAssistantResponse as captured (docs/kiro-protocol.md, Request headers).
    account = _account("aorAAAAAGexample-refresh-token")
    versions = ClientVersions(kiro_version="0.9.2", streaming_sdk_version="1.0.27", node_version="22.21.1")
    url = Endpoints().generate_url("us-east-1")
    headers = generate_headers(account=account, access_token="AT", url=url, invocation_id="inv-1", versions=versions)
    mid = "69c92434269208a50ac2c3007e3c8124a1f749fb2675bb728b30b1bea4075d77"
    assert headers == (
        ("Content-Type", "application/json"),
        ("x-amzn-codewhisperer-optout", "true"),
        ("x-amzn-kiro-agent-mode", "vibe"),
        ("x-amz-user-agent", f"aws-sdk-js/1.0.27 KiroIDE-0.9.2-{mid}"),
        ("User-Agent", f"aws-sdk-js/1.0.27 ua/2.1 os/darwin#24.6.0 lang/js md/nodejs#22.21.1 "
                       f"api/codewhispererstreaming#1.0.27 m/E KiroIDE-0.9.2-{mid}"),
        ("host", "q.us-east-1.amazonaws.com"),
        ("amz-sdk-invocation-id", "inv-1"),
        ("amz-sdk-request", "attempt=1; max=3"),
        ("Authorization", "Bearer AT"),
    )


def test_default_versions_are_the_newest_seen() -> None:
    v = ClientVersions()
    assert (v.kiro_version, v.streaming_sdk_version, v.node_version) == ("0.11.107", "1.0.34", "22.22.0")
    account = _account("t" * 30)
    headers = dict(generate_headers(account=account, access_token="A", url=Endpoints().generate_url("us-east-1"),
                                    invocation_id="i", versions=v))
    assert headers["x-amz-user-agent"] == f"aws-sdk-js/1.0.34 KiroIDE-0.11.107-{machine_id(account)}"


def test_usage_headers_match_the_py_capture() -> None:
    account = _account("aorAAAAAGexample-refresh-token")
    versions = ClientVersions(kiro_version="0.9.2", node_version="22.21.1")
    url = Endpoints().usage_limits_url("us-east-1", None)
    assert url == "https://q.us-east-1.amazonaws.com/getUsageLimits?origin=AI_EDITOR&resourceType=AGENTIC_REQUEST"
    headers = dict(usage_limits_headers(account=account, access_token="AT", url=url, invocation_id="u", versions=versions))
    mid = "69c92434269208a50ac2c3007e3c8124a1f749fb2675bb728b30b1bea4075d77"
    assert headers["User-Agent"] == (
        f"aws-sdk-js/1.0.0 ua/2.1 os/darwin#24.6.0 lang/js md/nodejs#22.21.1 "
        f"api/codewhispererruntime#1.0.0 m/N,E KiroIDE-0.9.2-{mid}"
    )
    assert headers["amz-sdk-request"] == "attempt=1; max=1" and headers["Authorization"] == "Bearer AT"


def test_endpoints_are_templates() -> None:
    e = Endpoints(api_base="http://127.0.0.1:9000/{region}")
    assert e.generate_url("eu-central-1") == "http://127.0.0.1:9000/eu-central-1/generateAssistantResponse"
    arn = "arn:aws:codewhisperer:us-east-1:1:profile/A B"
    assert e.usage_limits_url("us-east-1", arn).endswith(
        "&profileArn=arn%3Aaws%3Acodewhisperer%3Aus-east-1%3A1%3Aprofile%2FA%20B")


def test_default_region_applies_to_accounts_without_one() -> None:
    from kiro_protocol.pool._refresh import build_refresh_request

    plain = _account("t" * 30)
    endpoints = Endpoints(default_region="eu-central-1")
    assert api_region(plain, None, endpoints.default_region) == "eu-central-1"
    req = build_refresh_request(plain, refresh_token="t", versions=ClientVersions(), endpoints=endpoints,
                                invocation_id="i")
    assert req.url == "https://prod.eu-central-1.auth.desktop.kiro.dev/refreshToken"
