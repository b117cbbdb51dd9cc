"""Fuzz targets for the account parsers (invariants in fuzz/README.md, "Accounts").

Seeds: tests/fixtures/accounts/*.json (a KIRO_AUTH_TOKEN file, a full usage answer), mutated by
replacing random subtrees with arbitrary JSON; plus arbitrary JSON values and arbitrary text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.pool._credentials import AccountConfig, ConfigurationError, parse_accounts
from kiro_protocol.http._messages import HttpResponse
from kiro_protocol.pool._accounts import AccountState
from kiro_protocol.pool._refresh import RefreshedToken, RefreshFailure, parse_refresh_response
from kiro_protocol.pool._usage_limits import UsageLimits, UsageLimitsError, parse_usage_limits
from kiro_protocol.pool._model_catalogue import ModelCatalogueError, parse_available_models

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures" / "accounts"
CONFIG_SEED = json.loads((FIXTURES / "kiro_auth_token.json").read_text())
USAGE_SEED = json.loads((FIXTURES / "usage_limits_full.json").read_text())
MODELS_SEED = {
    "models": [
        {"modelId": "auto", "modelName": "Auto", "rateMultiplier": 1.0, "tokenLimits": {"maxInputTokens": 200000}},
        {"modelId": "claude-sonnet-4.5", "supportedInputTypes": ["TEXT", "IMAGE"], "rateUnit": "Credit"},
    ],
    "defaultModel": {"modelId": "auto"},
    "nextToken": None,
}
SECRET_KEYS = ("refreshToken", "clientId", "clientSecret")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with up to three subtrees replaced by arbitrary JSON (or well-known keys' values)."""
    doc = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(0, 3))):
        node = doc
        for _depth in range(draw(st.integers(0, 4))):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
                if isinstance(node[key], (dict, list)) and draw(st.booleans()):
                    node = node[key]
                    continue
                node[key] = draw(json_values)
                break
            if isinstance(node, list) and node:
                i = draw(st.integers(0, len(node) - 1))
                if isinstance(node[i], (dict, list)) and draw(st.booleans()):
                    node = node[i]
                    continue
                node[i] = draw(json_values)
                break
            break
    return doc


def _secrets(doc: Any) -> list[str]:
    entries = doc if isinstance(doc, list) else [doc]
    found = []
    for entry in entries:
        if isinstance(entry, dict):
            found += [v for k in SECRET_KEYS if isinstance(v := entry.get(k), str) and len(v.strip()) >= 6]
    return found


@given(st.one_of(mutated(CONFIG_SEED), json_values, st.lists(mutated(CONFIG_SEED[1]), max_size=3)))
def test_config_gives_accounts_or_a_secret_free_configuration_error(doc: Any) -> None:
    text = json.dumps(doc)
    try:
        accounts = parse_accounts(text)
    except ConfigurationError as exc:
        message = str(exc)
        assert message.startswith("KIRO_AUTH_TOKEN")
        for secret in _secrets(doc):
            assert secret.strip() not in message
        return
    assert accounts and all(isinstance(a, AccountConfig) for a in accounts)
    assert [a.index for a in accounts] == list(range(len(accounts)))
    assert len({a.account_id for a in accounts}) == len(accounts)
    assert not all(a.disabled for a in accounts)
    for a in accounts:
        for secret in _secrets(doc):
            assert secret not in repr(a)


@given(st.text(max_size=200))
def test_config_text_never_crashes(text: str) -> None:
    try:
        parse_accounts(text)
    except ConfigurationError:
        pass


@given(
    status=st.sampled_from([200, 200, 200, 400, 401, 403, 429, 500]),
    body=st.one_of(
        st.builds(lambda v: json.dumps(v).encode(), json_values),
        st.builds(lambda d: json.dumps(d).encode(), st.fixed_dictionaries({}, optional={
            "accessToken": json_values, "expiresIn": json_values, "refreshToken": json_values,
            "profileArn": json_values, "error": st.sampled_from(["invalid_grant", "x"])})),
        st.binary(max_size=100),
    ),
    now=st.floats(0, 4e9),
)
def test_refresh_answer_gives_a_token_or_a_failure_without_the_token(status: int, body: bytes, now: float) -> None:
    previous = "previous-refresh-token-SECRET"
    got = parse_refresh_response(HttpResponse(status=status, body=body), now=now, previous_refresh_token=previous)
    if isinstance(got, RefreshedToken):
        assert status == 200 and got.access_token and got.expires_at > now and math.isfinite(got.expires_at)
        assert got.refresh_token != previous
    else:
        assert isinstance(got, RefreshFailure)
        assert previous not in got.message and len(got.message) < 400
        assert not got.permanent or status in (400, 401)


@given(st.one_of(mutated(USAGE_SEED), json_values.map(lambda v: v), st.binary(max_size=60)))
def test_usage_answer_gives_finite_non_negative_credits_or_the_error(doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    try:
        usage = parse_usage_limits(body)
    except UsageLimitsError:
        return
    assert isinstance(usage, UsageLimits)
    assert usage.remaining >= 0 and math.isfinite(usage.remaining)
    assert usage.next_reset_at is None or usage.next_reset_at > 0


@given(st.one_of(st.text(max_size=200), st.builds(lambda v: json.dumps(v), json_values),
                 st.builds(lambda d: json.dumps(d), st.dictionaries(
                     st.sampled_from(["access_token", "expires_at", "throttle_level", "remaining_credits",
                                      "cooldown_until", "disabled_reason", "next_reset_at"]), json_values))))
def test_stored_state_reads_as_a_state_and_round_trips(text: str) -> None:
    state = AccountState.from_json(text)
    assert isinstance(state, AccountState)
    assert AccountState.from_json(state.to_json()) == state


@given(st.one_of(mutated(MODELS_SEED), json_values, st.binary(max_size=60)))
def test_models_answer_gives_model_ids_unknown_or_the_error(doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    try:
        models = parse_available_models(body)
    except ModelCatalogueError:
        return
    if models is not None:
        assert all(isinstance(m, str) and 0 < len(m) <= 200 for m in models)
        assert len(set(models)) == len(models)
        state = AccountState(models=models)
        assert AccountState.from_json(state.to_json()) == state
