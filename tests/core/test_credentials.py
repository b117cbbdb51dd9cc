"""KIRO_AUTH_TOKEN parsing: shapes, defaults, validation messages that name the entry and never
quote a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiro_protocol.pool._credentials import (
    AccountConfig,
    AuthMethod,
    ConfigurationError,
    parse_accounts,
    region_from_profile_arn,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "accounts" / "kiro_auth_token.json"
SECRET = "super-secret-refresh-token-value-0123456789"


def test_fixture_file_parses_with_defaults_and_case_insensitive_auth() -> None:
    social, idc, off = parse_accounts(FIXTURE.read_text())
    assert social.auth is AuthMethod.SOCIAL and social.label == "#0 (personal)"
    assert social.region is None and social.client_id is None and not social.disabled
    assert idc.auth is AuthMethod.IDC and idc.client_id == "client-id-123" and idc.region == "eu-central-1"
    assert idc.profile_arn == "arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABCDEF"
    assert off.disabled and off.auth is AuthMethod.SOCIAL and off.label == "#2"


def test_single_object_is_a_pool_of_one() -> None:
    (only,) = parse_accounts(json.dumps({"refreshToken": SECRET}))
    assert only.index == 0 and only.auth is AuthMethod.SOCIAL


@pytest.mark.parametrize("name", ["IdC", "IDC", "builder-id", "IAM"])
def test_idc_spellings(name: str) -> None:
    (a,) = parse_accounts(json.dumps({"auth": name, "refreshToken": SECRET, "clientId": "c", "clientSecret": "s"}))
    assert a.auth is AuthMethod.IDC


def test_auth_defaults_to_idc_when_client_fields_are_present() -> None:
    (a,) = parse_accounts(json.dumps({"refreshToken": SECRET, "clientId": "c", "clientSecret": "s"}))
    assert a.auth is AuthMethod.IDC


def test_account_ids_are_stable_and_distinct() -> None:
    text = json.dumps([{"refreshToken": SECRET}, {"refreshToken": SECRET + "2"}])
    first, second = parse_accounts(text)
    assert first.account_id != second.account_id
    assert parse_accounts(text)[0].account_id == first.account_id
    # Reordering keeps the id (it follows the credentials, not the position).
    swapped = parse_accounts(json.dumps([{"refreshToken": SECRET + "2"}, {"refreshToken": SECRET}]))
    assert swapped[1].account_id == first.account_id


def test_repr_never_shows_secrets() -> None:
    (a,) = parse_accounts(json.dumps({"refreshToken": SECRET, "clientId": "cid-SECRET", "clientSecret": "csec-SECRET"}))
    text = repr(a) + str(a)
    assert SECRET not in text and "csec-SECRET" not in text and "cid-SECRET" not in text


@pytest.mark.parametrize(
    "document, expected",
    [
        ("", "empty"),
        ("{not json", "not valid JSON (line 1, column 2)"),
        ("42", "not a number"),
        ("[]", "holds no account"),
        ("[1]", "entry 0: must be an object, not a number"),
        ('[{"description": "work"}]', "entry 0 ('work'): `refreshToken` is missing or empty"),
        ('[{"refreshToken": 5}]', "`refreshToken` must be a string, not a number"),
        ('[{"refreshToken": "abc...def0123456789012345"}]', "looks truncated"),
        ('[{"refreshToken": "short"}]', "looks truncated"),
        (json.dumps([{"refreshToken": SECRET, "auth": "oauth"}]), "`auth` must be \"Social\" or \"IdC\""),
        (json.dumps([{"refreshToken": SECRET, "auth": "IdC", "clientId": "x"}]), "IdC accounts need `clientSecret`"),
        (json.dumps([{"refreshToken": SECRET, "auth": "IdC"}]), "need `clientId` and `clientSecret`"),
        (json.dumps([{"refreshToken": SECRET, "region": "mars"}]), "`region` is not an AWS region"),
        (json.dumps([{"refreshToken": SECRET, "profileArn": "nope"}]), "`profileArn` is not an ARN"),
        (json.dumps([{"refreshToken": SECRET, "machineId": "xyz"}]), "`machineId` must be 64 hex"),
        (json.dumps([{"refreshToken": SECRET, "disabled": "yes"}]), "`disabled` must be true or false"),
        (json.dumps([{"refreshToken": SECRET + "\n"}]), "leading or trailing whitespace"),
        (json.dumps([{"refreshToken": SECRET}, {"refreshToken": SECRET, "description": "dup"}]),
         "entry 1 ('dup'): same `refreshToken` as entry 0"),
        (json.dumps([{"refreshToken": SECRET, "disabled": True}]), "every account is disabled"),
    ],
)
def test_invalid_configuration_names_the_entry_and_problem(document: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_accounts(document)
    message = str(info.value)
    assert expected in message
    assert message.startswith("KIRO_AUTH_TOKEN")
    assert SECRET not in message


def test_secret_never_appears_in_any_error() -> None:
    for bad in (
        [{"refreshToken": SECRET, "auth": SECRET}],
        [{"refreshToken": SECRET, "region": SECRET}],
        [{"refreshToken": SECRET, "clientId": SECRET, "auth": "IdC"}],
        '{"refreshToken": "' + SECRET,  # broken JSON holding a secret
    ):
        text = bad if isinstance(bad, str) else json.dumps(bad)
        with pytest.raises(ConfigurationError) as info:
            parse_accounts(text)
        assert SECRET not in str(info.value) and SECRET[:20] not in str(info.value)


def test_machine_id_is_normalised() -> None:
    uuid = "2582956e-cc88-4669-b546-07adbffcb894"
    (a,) = parse_accounts(json.dumps({"refreshToken": SECRET, "machineId": uuid}))
    assert a.machine_id == "2582956ecc884669b54607adbffcb8942582956ecc884669b54607adbffcb894"
    (b,) = parse_accounts(json.dumps({"refreshToken": SECRET, "machineId": "AB" * 32}))
    assert b.machine_id == "ab" * 32


def test_unknown_keys_are_ignored() -> None:
    (a,) = parse_accounts(json.dumps({"refreshToken": SECRET, "expiresAt": "2025", "provider": "Google"}))
    assert isinstance(a, AccountConfig)


@pytest.mark.parametrize(
    "arn, region",
    [
        ("arn:aws:codewhisperer:eu-central-1:699475941385:profile/EHGA3GRVQMUK", "eu-central-1"),
        ("arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX", "us-east-1"),
        ("arn:aws:codewhisperer::1:profile/x", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_region_from_profile_arn(arn: str | None, region: str | None) -> None:
    assert region_from_profile_arn(arn) == region
