"""getUsageLimits: request, parser, remaining credits (tests/fixtures/accounts), and the background check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.runtime.stores.memory_store import MemoryStore
from kiro_protocol.pool._credentials import parse_accounts
from kiro_protocol.pool._kiro_identity import ClientVersions, Endpoints
from kiro_protocol.pool._accounts import AccountState, PoolSettings
from kiro_protocol.pool._checks import checks_due
from kiro_protocol.pool._decisions import CheckUsage, Refresh
from kiro_protocol.pool._usage_limits import (
    UsageLimitsError,
    build_usage_limits_request,
    parse_usage_limits,
    remaining_credits,
)
from tests.exchange_runner import FakeClock, Upstream, answer, make_accounts, run_check

FIXTURES = Path(__file__).parent.parent / "fixtures" / "accounts"
VECTORS = json.loads((FIXTURES / "derivations.json").read_text())["go_available_credits"]


@pytest.mark.parametrize("vector", VECTORS, ids=[str(i) for i in range(len(VECTORS))])
def test_available_credit_vectors(vector: dict[str, object]) -> None:
    assert remaining_credits(vector["usage_limits"])[0] == vector["available"]


def test_full_answer_counts_active_trial_and_bonuses_only() -> None:
    usage = parse_usage_limits((FIXTURES / "usage_limits_full.json").read_bytes())
    # 50 - 3.25 + (500 - 10) + (20 - 5); the expired bonus does not count.
    assert usage.remaining == 551.75 and usage.limit == 570 and usage.used == 18.25
    assert usage.next_reset_at == 1761955200.0 and usage.subscription_title == "KIRO FREE"


@pytest.mark.parametrize("body", [b"", b"nope", b"[]", b"3"])
def test_non_objects_are_errors(body: bytes) -> None:
    with pytest.raises(UsageLimitsError):
        parse_usage_limits(body)


def test_odd_shapes_mean_zero_not_a_crash() -> None:
    for doc in ({}, {"usageBreakdownList": None}, {"usageBreakdownList": [1, "x", {"resourceType": "CREDIT",
                "usageLimitWithPrecision": "50"}]}, {"nextDateReset": "soon"}):
        usage = parse_usage_limits(json.dumps(doc).encode())
        assert usage.remaining == 0 and usage.next_reset_at is None


def test_request_is_in_the_profile_region_with_the_arn() -> None:
    (account,) = parse_accounts(json.dumps({"refreshToken": "r" * 30}))
    arn = "arn:aws:codewhisperer:eu-central-1:1:profile/P"
    req = build_usage_limits_request(account, access_token="AT", profile_arn=arn, versions=ClientVersions(),
                                     endpoints=Endpoints(), invocation_id="i")
    assert req.method == "GET" and req.body == b""
    assert req.url == ("https://q.eu-central-1.amazonaws.com/getUsageLimits?origin=AI_EDITOR&resourceType="
                       "AGENTIC_REQUEST&profileArn=arn%3Aaws%3Acodewhisperer%3Aeu-central-1%3A1%3Aprofile%2FP")
    assert req.header("authorization") == "Bearer AT"


def test_background_check_reads_usage_and_records_credits() -> None:
    accounts = make_accounts(2)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts)
    settings = PoolSettings()
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="AT", expires_at=clock.now + 3600))
    due = checks_due(accounts, store.load_many([a.account_id for a in accounts]), clock.now, settings)
    assert due == (accounts[0],)  # the other has no token: checked after its first use
    log = run_check(accounts[0], store, upstream, clock)
    assert [type(d).__name__ for d in log] == ["LoadState", "CheckUsage", "Persist", "CheckModels", "Persist", "Done"]
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.remaining_credits == 90 and st.usage_checked_at == clock.now
    assert checks_due(accounts, {accounts[0].account_id: st}, clock.now + 10, settings) == ()
    assert checks_due(accounts, {accounts[0].account_id: st}, clock.now + 300, settings) == (accounts[0],)


def test_background_check_refreshes_ahead_of_expiry_once() -> None:
    accounts = make_accounts(1)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts)
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="old", expires_at=clock.now + 200,
                                                                usage_checked_at=clock.now))
    log = run_check(accounts[0], store, upstream, clock)
    assert [type(d).__name__ for d in log] == ["LoadState", "AcquireLease", "LoadState", "Refresh", "Persist", "Done"]
    refresh = next(d for d in log if isinstance(d, Refresh))
    assert refresh.account == accounts[0]
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.access_token == "access-0-0"


def test_no_credits_left_marks_exhausted_until_reset_and_credits_clear_it() -> None:
    accounts = make_accounts(1)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    reset = clock.now + 86400
    empty = {"nextDateReset": reset, "usageBreakdownList": [
        {"resourceType": "CREDIT", "usageLimitWithPrecision": 50.0, "currentUsageWithPrecision": 50.0}]}
    upstream = Upstream(accounts, usage={0: [answer(200, empty)]})
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="AT", expires_at=clock.now + 3600))
    log = run_check(accounts[0], store, upstream, clock)
    assert any(isinstance(d, CheckUsage) for d in log)
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.exhausted_until == reset and st.remaining_credits == 0
    clock.advance(600)
    run_check(accounts[0], store, upstream, clock)  # default answer: 90 left
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.exhausted_until == 0 and st.remaining_credits == 90


def test_failed_usage_check_keeps_what_was_known() -> None:
    accounts = make_accounts(1)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts, usage={0: [answer(500, "x")]})
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="AT", expires_at=clock.now + 3600,
                                                                remaining_credits=12.0))
    run_check(accounts[0], store, upstream, clock)
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.remaining_credits == 12.0 and st.usage_checked_at == clock.now and st.exhausted_until == 0


def test_background_refresh_with_a_dead_token_disables_the_account() -> None:
    accounts = make_accounts(1)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts, refresh={0: [answer(400, {"error": "invalid_grant"})]})
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="old", expires_at=clock.now + 200,
                                                                usage_checked_at=clock.now))
    log = run_check(accounts[0], store, upstream, clock)
    assert [type(d).__name__ for d in log][-1] == "Done"
    st = store.load_many([accounts[0].account_id])[accounts[0].account_id]
    assert st.disabled_reason is not None and "invalid_grant" in st.disabled_reason
    assert checks_due(accounts, {accounts[0].account_id: st}, clock.now + 10_000, PoolSettings()) == ()
    assert store.try_lease(accounts[0].account_id, "probe", 1)  # the check released its lease


def test_background_check_skips_a_refresh_someone_else_is_doing() -> None:
    accounts = make_accounts(1)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts)
    store.update(accounts[0].account_id, lambda s: AccountState(access_token="old", expires_at=clock.now + 200))
    assert store.try_lease(accounts[0].account_id, "request-elsewhere", 90)
    log = run_check(accounts[0], store, upstream, clock)
    assert upstream.count("refresh") == 0
    assert [type(d).__name__ for d in log] == [
        "LoadState", "AcquireLease", "CheckUsage", "Persist", "CheckModels", "Persist", "Done"
    ]
