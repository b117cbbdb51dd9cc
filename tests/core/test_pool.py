"""Pool arithmetic and state: back-off bounds, token status, state JSON, strategy names, the
"no account available" error, and masking of secrets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.pool._credentials import ConfigurationError
from kiro_protocol._errors import ErrorKind
from kiro_protocol.pool._accounts import (
    AccountState,
    PoolSettings,
    Strategy,
    TokenStatus,
    backoff_delay,
    choose_account,
    no_account_error,
    parse_strategy,
    token_status,
    unavailable_reason,
)
from kiro_protocol.pool._refresh import RefreshedToken, RefreshFailure
from kiro_protocol.pool._updates import (
    AccountUpdate,
    CreditsUsed,
    MarkedInvalid,
    ModelsChecked,
    Picked,
    QuotaExhausted,
    RefreshFailed,
    Served,
    Throttled,
    TokenRefreshed,
    TokenRejected,
    UsageChecked,
    UsageCheckFailed,
)
from kiro_protocol.pool._usage_limits import UsageLimits
from tests.exchange_runner import make_accounts


@given(level=st.integers(-3, 100), jitter=st.floats(allow_nan=True), base=st.floats(0.01, 100), cap=st.floats(0.01, 10_000))
def test_backoff_stays_between_half_and_full_capped_delay(level: int, jitter: float, base: float, cap: float) -> None:
    delay = min(cap, base * 2.0 ** min(max(level, 0), 30))
    got = backoff_delay(level, base=base, cap=cap, jitter=jitter)
    assert delay / 2 - 1e-9 <= got <= delay + 1e-9 and math.isfinite(got)


def test_backoff_grows_exponentially_then_caps() -> None:
    assert [backoff_delay(n, base=5, cap=300, jitter=1.0) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_delay(0, base=5, cap=300, jitter=0.0) == 2.5


def test_token_status_margins() -> None:
    s = PoolSettings(refresh_margin=300, min_token_validity=30)
    assert token_status(AccountState(), 0, s) is TokenStatus.UNUSABLE
    assert token_status(AccountState(access_token="t", expires_at=1000), 0, s) is TokenStatus.FRESH
    assert token_status(AccountState(access_token="t", expires_at=1000), 700, s) is TokenStatus.EXPIRING
    assert token_status(AccountState(access_token="t", expires_at=1000), 970, s) is TokenStatus.UNUSABLE


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        PoolSettings(max_attempts=0)
    with pytest.raises(ConfigurationError):
        PoolSettings(refresh_margin=10, min_token_validity=20)


@pytest.mark.parametrize("text, strategy", [("optimal", Strategy.OPTIMAL), (" Round-Robin ", Strategy.ROUND_ROBIN),
                                            ("SEQUENTIAL", Strategy.SEQUENTIAL)])
def test_parse_strategy(text: str, strategy: Strategy) -> None:
    assert parse_strategy(text) is strategy


def test_parse_strategy_rejects_unknown_names() -> None:
    with pytest.raises(ConfigurationError, match="sequential, optimal, round_robin"):
        parse_strategy("balanced")


def test_state_json_round_trip_and_tolerance() -> None:
    full = AccountState(access_token="a", expires_at=1.5, refresh_token="r", profile_arn="arn", disabled_reason="d",
                        invalid_reason="i", invalid_until=2, exhausted_reason="e", exhausted_until=3,
                        cooldown_reason="c", cooldown_until=4, throttle_level=5, refresh_error="x",
                        refresh_failures=6, refresh_retry_at=7, remaining_credits=8.5, next_reset_at=9,
                        subscription_title="PRO", usage_checked_at=10, last_used_at=11)
    assert AccountState.from_json(full.to_json()) == full
    assert AccountState.from_json(None) == AccountState()
    assert AccountState.from_json("{broken") == AccountState()
    assert AccountState.from_json("[1]") == AccountState()
    odd = AccountState.from_json('{"throttle_level": "3", "expires_at": 5, "access_token": 7, "future_field": 1,'
                                 ' "remaining_credits": null, "cooldown_until": Infinity}')
    assert odd == AccountState(expires_at=5.0)


def test_state_repr_masks_tokens() -> None:
    text = repr(AccountState(access_token="ACCESS-SECRET", refresh_token="REFRESH-SECRET"))
    assert "ACCESS-SECRET" not in text and "REFRESH-SECRET" not in text


def test_unavailable_reasons() -> None:
    (a,) = make_accounts(1)
    now = 1000.0
    assert unavailable_reason(a, AccountState(), now) is None
    assert unavailable_reason(a, AccountState(disabled_reason="dead"), now) == "disabled: dead"
    assert "cooling down for 20 s after HTTP 429" in str(
        unavailable_reason(a, AccountState(cooldown_until=1020, cooldown_reason="HTTP 429"), now))
    assert "until 1970-01-02 00:16 UTC" in str(unavailable_reason(a, AccountState(exhausted_until=87_400), now))
    assert "next try in 60 min" in str(unavailable_reason(a, AccountState(invalid_until=now + 3600), now))
    # A failing refresh matters only when there is no valid token.
    failing = AccountState(refresh_retry_at=now + 10, refresh_error="HTTP 500")
    assert "token refresh failing (HTTP 500)" in str(unavailable_reason(a, failing, now))
    assert unavailable_reason(a, AccountState(refresh_retry_at=now + 10, access_token="t", expires_at=now + 99),
                              now) is None


def test_unknown_credits_are_tried_first_by_optimal() -> None:
    accounts = make_accounts(3)
    states = {accounts[0].account_id: AccountState(remaining_credits=500.0),
              accounts[2].account_id: AccountState(remaining_credits=10.0)}
    assert choose_account(accounts, states, 0, Strategy.OPTIMAL) == accounts[1]
    states[accounts[1].account_id] = AccountState(remaining_credits=1.0)
    assert choose_account(accounts, states, 0, Strategy.OPTIMAL) == accounts[0]
    assert choose_account(accounts, states, 0, Strategy.OPTIMAL, exclude=frozenset({accounts[0].account_id})) == \
        accounts[2]


def test_no_account_error_kinds() -> None:
    accounts = make_accounts(2)
    now = 0.0
    states = {accounts[0].account_id: AccountState(disabled_reason="dead"),
              accounts[1].account_id: AccountState(cooldown_until=12.0)}
    err = no_account_error(accounts, states, now)
    assert err.kind is ErrorKind.RATE_LIMIT and err.status_hint == 429 and err.retry_after == 12
    err = no_account_error(accounts, {accounts[0].account_id: AccountState(disabled_reason="dead")}, now,
                           failed={accounts[1].account_id: "upstream failed (HTTP 500: x)"})
    assert err.kind is ErrorKind.API and err.status_hint == 503 and err.retry_after is None
    assert err.message == "No Kiro account is available. #0 (acct0): disabled: dead; #1 (acct1): upstream failed (HTTP 500: x)"


def test_updates_compose_as_documented() -> None:
    s = PoolSettings()
    st0 = AccountState(access_token="A", expires_at=100, next_reset_at=5000.0, throttle_level=3)
    assert TokenRejected(access_token="B").apply(st0) == st0  # someone refreshed meanwhile
    assert TokenRejected(access_token="A").apply(st0).access_token is None
    ex = QuotaExhausted(reason="r", now=10, settings=s).apply(st0)
    assert ex.exhausted_until == 5000 and ex.remaining_credits == 0
    th = Throttled(reason="r", now=0, jitter=1.0, settings=s).apply(st0)
    assert th.cooldown_until == 40 and th.throttle_level == 4
    assert Served(now=50).apply(th).throttle_level == 0


def test_status_view_shows_why_and_never_a_secret() -> None:
    from kiro_protocol.pool._status import pool_status

    accounts = make_accounts(3, auth="IdC")
    now = 1_750_000_000.0
    states = {
        accounts[0].account_id: AccountState(access_token="ACCESS-SECRET", expires_at=now + 100,
                                             refresh_token="ROTATED-SECRET", remaining_credits=12.5),
        accounts[1].account_id: AccountState(cooldown_until=now + 30, cooldown_reason="HTTP 429: slow"),
        accounts[2].account_id: AccountState(disabled_reason="refresh token rejected"),
    }
    view = pool_status(accounts, states, now, {accounts[0].account_id: {"requests": 3}})
    assert view["total"] == 3 and view["usable"] == 1
    entries = view["accounts"]
    assert isinstance(entries, list)
    assert [e["status"] for e in entries] == ["usable", "cooling_down", "disabled"]
    assert entries[0]["token_valid_for_seconds"] == 100 and entries[0]["counters"] == {"requests": 3}
    assert entries[1]["reason"] == "cooling down for 30 s after HTTP 429: slow"
    text = repr(view)
    for a in accounts:
        assert a.refresh_token not in text and str(a.client_secret) not in text and str(a.client_id) not in text
    assert "SECRET" not in text


@given(st.text(max_size=300).map(lambda t: t) | st.builds(
    lambda u, c, e, r: AccountState(invalid_until=u, cooldown_until=c, exhausted_until=e, next_reset_at=r,
                                    usage_checked_at=u, last_used_at=c).to_json(),
    st.floats(-1e300, 1e300), st.floats(-1e300, 1e300), st.floats(-1e300, 1e300),
    st.none() | st.floats(-1e300, 1e300)))
def test_any_stored_state_gives_a_reason_and_a_status_without_crashing(text: str) -> None:
    from kiro_protocol.pool._status import account_status

    (a,) = make_accounts(1)
    state = AccountState.from_json(text)
    for now in (0.0, 1_750_000_000.0):
        reason = unavailable_reason(a, state, now)
        assert reason is None or reason
        assert account_status(a, state, now)["index"] == 0
        no_account_error([a], {a.account_id: state}, now)


_T = 1_750_000_000.0
_SETTINGS = PoolSettings()
_UPDATES: tuple[AccountUpdate, ...] = (
    TokenRefreshed(token=RefreshedToken(access_token="new", expires_at=_T + 3600, refresh_token="rotated")),
    RefreshFailed(failure=RefreshFailure(permanent=False, status=500, message="x"), now=_T, jitter=0.5, settings=_SETTINGS),
    RefreshFailed(failure=RefreshFailure(permanent=True, status=400, message="x"), now=_T, jitter=0.5, settings=_SETTINGS),
    TokenRejected(access_token="old"),
    MarkedInvalid(reason="rejected", until=_T + 60),
    QuotaExhausted(reason="monthly", now=_T, settings=_SETTINGS),
    Throttled(reason="429", now=_T, jitter=0.0, settings=_SETTINGS),
    Throttled(reason="429", now=_T, jitter=1.0, settings=_SETTINGS, retry_after=700.0),
    Picked(now=_T),
    Served(now=_T),
    UsageChecked(limits=UsageLimits(remaining=5, limit=10, used=5, next_reset_at=None, subscription_title="PRO"),
                 now=_T, settings=_SETTINGS),
    UsageChecked(limits=UsageLimits(remaining=0, limit=10, used=10, next_reset_at=_T + 9, subscription_title=None),
                 now=_T, settings=_SETTINGS),
    UsageCheckFailed(now=_T),
    CreditsUsed(credits=2.0),
    ModelsChecked(models=("auto",)),
)
_STATES = (
    AccountState(),
    AccountState(access_token="old", expires_at=_T + 100, remaining_credits=10.0, last_used_at=_T + 5,
                 refresh_failures=2, next_reset_at=_T + 50),
    AccountState(throttle_level=3, cooldown_until=_T + 30, cooldown_reason="429", refresh_retry_at=_T - 1),
)


@pytest.mark.parametrize("update", _UPDATES, ids=lambda u: type(u).__name__)
def test_an_update_said_to_be_idempotent_is(update: AccountUpdate) -> None:
    # The pool driver shows queued (not yet stored) idempotent updates to other requests over
    # the store's copy, which may already hold them: applied twice they must change nothing more.
    # (RefreshFailed and CreditsUsed count, so they are never shown before they are stored.)
    if update.idempotent:
        assert [s for s in _STATES if update.apply(update.apply(s)) != update.apply(s)] == []
    else:
        assert isinstance(update, (RefreshFailed, CreditsUsed))
