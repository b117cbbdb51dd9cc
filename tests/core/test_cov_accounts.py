"""Account configuration and status (``kiro_protocol.pool``): the wrong JSON types in
``KIRO_AUTH_TOKEN`` are named without quoting the value, and an account whose refresh keeps
failing shows as ``refresh_failing`` with the reason and the time of the next try."""

from __future__ import annotations

import json

import pytest

from kiro_protocol.pool import AccountState, ConfigurationError, account_status, parse_accounts

TOKEN = "r" * 30
NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [("region", ["us-east-1"], "an array"), ("region", {"r": 1}, "an object"), ("region", True, "a boolean"),
     ("region", 3, "a number")],
)
def test_a_text_field_of_another_json_type_is_refused_by_its_type(field: str, value: object, kind: str) -> None:
    entry = {"refreshToken": TOKEN, "description": "work", field: value}
    with pytest.raises(ConfigurationError) as caught:
        parse_accounts(json.dumps(entry))
    assert str(caught.value) == f"KIRO_AUTH_TOKEN entry 0 ('work'): `{field}` must be a string, not {kind}"


@pytest.mark.parametrize(("value", "kind"), [("yes", "a string"), (1, "a number"), ([], "an array")])
def test_disabled_must_be_a_boolean(value: object, kind: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_accounts(json.dumps([{"refreshToken": TOKEN}, {"refreshToken": "s" * 30, "disabled": value}]))
    assert str(caught.value) == f"KIRO_AUTH_TOKEN entry 1: `disabled` must be true or false, not {kind}"


def test_disabled_null_means_enabled() -> None:
    (config,) = parse_accounts(json.dumps({"refreshToken": TOKEN, "disabled": None}))
    assert config.disabled is False


def test_an_account_whose_refresh_keeps_failing_without_a_usable_token() -> None:
    (config,) = parse_accounts(json.dumps({"refreshToken": TOKEN}))
    state = AccountState(refresh_error="HTTP 500", refresh_failures=2, refresh_retry_at=NOW + 90)
    status = account_status(config, state, NOW)
    assert status["status"] == "refresh_failing"
    assert status["reason"] == "token refresh failing (HTTP 500); next try in 90 s"
    assert status["token_valid_for_seconds"] is None
    # With a token still valid, the failing refresh does not keep the account out.
    valid = AccountState(access_token="a" * 20, expires_at=NOW + 600, refresh_error="HTTP 500", refresh_retry_at=NOW + 90)
    status = account_status(config, valid, NOW)
    assert (status["status"], status["reason"], status["token_valid_for_seconds"]) == ("usable", None, 600)
