"""Background account checks (``kiro_protocol.pool.AccountCheck``) on their less common paths:
another replica refreshed under our lease, the refresh or the usage call got no answer, a usage
answer that cannot be read; and misuse, which is refused with the phase named."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kiro_protocol import HttpResponse, LocalProtocolError
from kiro_protocol.pool import (
    CheckModels,
    AccountCheck,
    AccountConfig,
    AccountState,
    AcquireLease,
    CheckUsage,
    CreditsUsed,
    Done,
    LoadState,
    Persist,
    PoolSettings,
    Refresh,
    RefreshFailed,
    UsageCheckFailed,
    parse_accounts,
)

NOW = 1_750_000_000.0
SETTINGS = PoolSettings()


def account() -> AccountConfig:
    (config,) = parse_accounts(json.dumps({"refreshToken": "r" * 30}))
    return config


def ids() -> Iterator[str]:
    return (f"id-{i}" for i in range(1000))


def new_check(config: AccountConfig) -> AccountCheck:
    counter = ids()
    return AccountCheck(account=config, settings=SETTINGS, new_id=lambda: next(counter), random=lambda: 0.0)


#: A token inside the refresh margin (wants a refresh ahead) and one far from it.
EXPIRING = AccountState(access_token="a" * 20, expires_at=NOW + 100)
FRESH = AccountState(access_token="b" * 20, expires_at=NOW + 3000, usage_checked_at=NOW)


def test_under_the_lease_a_token_someone_else_refreshed_is_left_alone() -> None:
    config = account()
    check = new_check(config)
    assert check.next_decision(NOW) == LoadState(account_ids=(config.account_id,))
    check.state_loaded({config.account_id: EXPIRING}, NOW)
    lease = check.next_decision(NOW)
    assert isinstance(lease, AcquireLease) and lease.account_id == config.account_id
    check.lease_result(True, NOW)
    assert check.next_decision(NOW) == LoadState(account_ids=(config.account_id,))
    check.state_loaded({config.account_id: FRESH}, NOW)  # refreshed meanwhile, usage read just now
    assert check.next_decision(NOW) == Persist(account_id=config.account_id, release_lease=lease.owner)
    assert check.next_decision(NOW) == Done()
    assert check.next_decision(NOW) == Done()


def refreshing_check(config: AccountConfig) -> AccountCheck:
    check = new_check(config)
    check.next_decision(NOW)
    check.state_loaded({config.account_id: EXPIRING}, NOW)
    check.next_decision(NOW)
    check.lease_result(True, NOW)
    check.next_decision(NOW)
    check.state_loaded({config.account_id: EXPIRING}, NOW)
    assert isinstance(check.next_decision(NOW), Refresh)
    return check


def test_an_unreachable_refresh_endpoint_backs_the_account_off_and_releases_the_lease() -> None:
    config = account()
    check = refreshing_check(config)
    check.refresh_failed("connection refused", NOW)
    persist = check.next_decision(NOW)
    assert isinstance(persist, Persist) and isinstance(persist.update, RefreshFailed)
    assert persist.release_lease is not None
    assert persist.update.failure.permanent is False
    state = persist.update.apply(EXPIRING)
    assert state.refresh_error == "refresh endpoint unreachable: connection refused"
    assert state.refresh_failures == 1
    # Zero jitter: half the first back-off step.
    assert state.refresh_retry_at == NOW + SETTINGS.refresh_retry_base / 2
    # The old token is still usable, so the usage check follows.
    assert isinstance(check.next_decision(NOW), CheckUsage)


def usage_check(config: AccountConfig) -> AccountCheck:
    check = new_check(config)
    check.next_decision(NOW)
    stale = AccountState(access_token="c" * 20, expires_at=NOW + 3000, usage_checked_at=NOW - 10_000)
    check.state_loaded({config.account_id: stale}, NOW)
    assert isinstance(check.next_decision(NOW), CheckUsage)
    return check


@pytest.mark.parametrize("body", [b"not json", b"[]"], ids=["not-json", "not-an-object"])
def test_an_unreadable_usage_answer_counts_as_a_failed_check(body: bytes) -> None:
    config = account()
    check = usage_check(config)
    check.usage_answered(HttpResponse(status=200, body=body), NOW)
    assert check.next_decision(NOW) == Persist(account_id=config.account_id, update=UsageCheckFailed(now=NOW))
    assert isinstance(check.next_decision(NOW), CheckModels), "the catalogue is asked even so"


def test_an_unanswered_usage_call_counts_as_a_failed_check() -> None:
    config = account()
    check = usage_check(config)
    check.usage_failed("timed out", NOW + 1)
    assert check.next_decision(NOW) == Persist(account_id=config.account_id, update=UsageCheckFailed(now=NOW + 1))
    assert isinstance(check.next_decision(NOW), CheckModels)
    check.models_failed("timed out", NOW + 1)
    assert check.next_decision(NOW) == Done(), "no answer: what was known is kept"


def test_misuse_names_the_call_and_the_phase() -> None:
    check = new_check(account())
    with pytest.raises(LocalProtocolError, match=r"^AccountCheck misused: usage_failed\(\) in phase START$"):
        check.usage_failed("x", NOW)
    check.next_decision(NOW)
    with pytest.raises(LocalProtocolError, match=r"^AccountCheck misused: next_decision\(\) in phase LOADING$"):
        check.next_decision(NOW)
    with pytest.raises(LocalProtocolError, match=r"^AccountCheck misused: refresh_failed\(\) in phase LOADING$"):
        check.refresh_failed("x", NOW)


def test_credits_used_only_lower_a_known_balance_and_never_below_zero() -> None:
    known = AccountState(remaining_credits=2.0)
    assert CreditsUsed(credits=0.5).apply(known).remaining_credits == 1.5
    assert CreditsUsed(credits=5.0).apply(known).remaining_credits == 0.0
    assert CreditsUsed(credits=0.0).apply(known) is known
    assert CreditsUsed(credits=float("nan")).apply(known) is known
    unknown = AccountState()
    assert CreditsUsed(credits=1.0).apply(unknown) is unknown
