"""Every failure rule of the pool, driven through the Exchange decision API with scripted
upstream answers, a store and an injected clock (tests/exchange_runner.py is the executor)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Callable, TypeVar

import pytest

from adapters.runtime.stores import apply_persist
from adapters.runtime.stores.memory_store import MemoryStore
from kiro_protocol.pool._credentials import AccountConfig
from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.pool._exchange import Exchange, ExchangePhase
from kiro_protocol.pool._failures import retry_after_seconds
from kiro_protocol.pool._accounts import AccountState, NoAccountAvailableError, PoolSettings, Strategy
from kiro_protocol.pool._decisions import (
    AcquireLease,
    Decision,
    LoadState,
    Persist,
    Refresh,
    Retry,
    SendUpstream,
    StartStream,
    Wait,
)
from kiro_protocol.pool._upstream_errors import connection_failure
from tests.exchange_runner import FakeClock, Upstream, answer, make_accounts, refresh_ok, run_exchange

D = TypeVar("D", bound=Decision)

BEARER_INVALID = {"message": "The bearer token included in the request is invalid."}


def setup(
    n: int = 2, strategy: Strategy = Strategy.SEQUENTIAL
) -> tuple[tuple[AccountConfig, ...], FakeClock, MemoryStore, Upstream, PoolSettings]:
    accounts = make_accounts(n)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts)
    settings = PoolSettings(strategy=strategy)
    return accounts, clock, store, upstream, settings


def _const(value: AccountState) -> Callable[[AccountState], AccountState]:
    return lambda _old: value


def state(store: MemoryStore, account_id: str) -> AccountState:
    return store.load_many([account_id]).get(account_id, AccountState())


def test_first_request_refreshes_then_sends_with_the_identity_headers() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert isinstance(out.final, type(out.final)) and out.account == accounts[0]
    kinds = [type(d).__name__ for d in out.decisions]
    assert kinds[:5] == ["LoadState", "AcquireLease", "LoadState", "Refresh", "Persist"]
    assert "StartStream" in kinds and kinds[-1] == "Done"
    send = out.of(SendUpstream)[0]
    assert isinstance(send, SendUpstream)
    assert send.request.url == "https://q.us-east-1.amazonaws.com/generateAssistantResponse"
    assert send.request.header("Authorization") == "Bearer access-0-0"
    assert send.attempt == 1
    st = state(store, accounts[0].account_id)
    assert st.access_token == "access-0-0" and st.expires_at == clock.now + 3600
    assert store.counters(accounts[0].account_id) == {"requests": 1, "input_tokens": 10, "output_tokens": 5}


def test_a_fresh_stored_token_is_used_without_refreshing() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    run_exchange(accounts, store, upstream, clock, settings=settings)
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("refresh") == 1 and upstream.count("generate") == 2


def test_rotated_refresh_token_is_stored_and_used_next_time() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    upstream.refresh[0] = [refresh_ok("a1", refresh_token="rotated-" + "r" * 40, expires_in=600)]
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert state(store, accounts[0].account_id).refresh_token == "rotated-" + "r" * 40
    clock.advance(600)
    run_exchange(accounts, store, upstream, clock, settings=settings)
    second = [r for k, _, r in upstream.sent if k == "refresh"][1]
    assert json.loads(second.body) == {"refreshToken": "rotated-" + "r" * 40}


def test_profile_arn_from_refresh_sets_region_and_body() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    arn = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABC"
    upstream.refresh[0] = [refresh_ok("a1", profile_arn=arn)]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    send = out.of(SendUpstream)[0]
    assert isinstance(send, SendUpstream)
    assert send.request.url.startswith("https://q.eu-central-1.amazonaws.com/")
    assert json.loads(send.request.body) == {"profileArn": arn}


def test_401_403_refreshes_once_and_retries_the_same_account() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [answer(403, BEARER_INVALID)]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[0]
    retries = out.of(Retry)
    assert len(retries) == 1 and isinstance(retries[0], Retry) and retries[0].same_account
    assert upstream.count("refresh", 0) == 2 and upstream.count("generate", 0) == 2
    assert upstream.count("generate", 1) == 0
    assert state(store, accounts[0].account_id).invalid_until == 0


def test_a_just_refreshed_token_rejected_again_marks_the_account_invalid() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [answer(403, BEARER_INVALID), answer(401, BEARER_INVALID)]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[1]
    st = state(store, accounts[0].account_id)
    assert st.invalid_until == clock.now + settings.invalid_quarantine
    assert st.invalid_reason is not None and "bearer token" in st.invalid_reason
    # The next request skips the invalid account without asking upstream.
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("generate", 0) == 2


def test_403_burst_over_many_accounts_never_disables_them_all_on_first_sight() -> None:
    # The peers' bug (docs/kiro-protocol.md, What peers get wrong): one 403 per account disabled every credential.
    accounts, clock, store, upstream, settings = setup(3)
    for i in range(3):
        upstream.generate[i] = [answer(403, BEARER_INVALID)]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[0]  # refreshed and retried, served
    assert all(state(store, a.account_id).invalid_until == 0 for a in accounts)


def test_402_monthly_quota_marks_exhausted_until_reset_and_moves_on() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    reset = clock.now + 5 * 86400
    store.update(accounts[0].account_id, lambda s: AccountState(next_reset_at=reset))
    upstream.generate[0] = [answer(402, {"message": "limit", "reason": "MONTHLY_REQUEST_COUNT"})]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[1]
    st = state(store, accounts[0].account_id)
    assert st.exhausted_until == reset and st.remaining_credits == 0
    assert store.counters(accounts[0].account_id)["failures"] == 1


def test_monthly_request_count_in_a_429_body_is_quota_not_throttling() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [answer(429, {"message": "x", "reason": "MONTHLY_REQUEST_COUNT"})]
    run_exchange(accounts, store, upstream, clock, settings=settings)
    st = state(store, accounts[0].account_id)
    assert st.exhausted_until == clock.now + settings.exhausted_recheck and st.cooldown_until == 0


def test_429_cools_down_with_exponential_backoff_and_jitter_never_disabled() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    aid = accounts[0].account_id
    cooldowns = []
    for _ in range(4):
        upstream.generate[0] = [answer(429, {"message": "Too many requests"})]
        store.update(aid, lambda s: AccountState(**{**json.loads(s.to_json()), "cooldown_until": 0.0}))
        out = run_exchange(accounts, store, upstream, clock, settings=settings, jitter=1.0)
        assert out.account == accounts[1]
        st = state(store, aid)
        cooldowns.append(st.cooldown_until - clock.now)
        assert st.disabled_reason is None and st.invalid_until == 0
    assert cooldowns == [5.0, 10.0, 20.0, 40.0]
    # jitter 0 gives half the delay
    upstream.generate[0] = [answer(429, {"message": "again"})]
    store.update(aid, lambda s: AccountState(**{**json.loads(s.to_json()), "cooldown_until": 0.0}))
    run_exchange(accounts, store, upstream, clock, settings=settings, jitter=0.0)
    assert state(store, aid).cooldown_until - clock.now == 40.0


def test_a_burst_of_429s_raises_the_backoff_one_step_not_one_per_request() -> None:
    # Twenty requests sent together all come back throttled: the account cools down once, at the
    # first level, instead of the twentieth (which would outlast any wait for it).
    from kiro_protocol.pool._updates import Throttled

    settings = PoolSettings()
    state0 = AccountState()
    burst = state0
    for i in range(20):
        burst = Throttled(reason="429", now=1000.0 + i * 0.01, jitter=1.0, settings=settings).apply(burst)
    assert burst.throttle_level == 1 and burst.cooldown_until == 1005.0
    # Once that cooldown is over, the next 429 is a new burst: one more step.
    later = Throttled(reason="429", now=1006.0, jitter=1.0, settings=settings).apply(burst)
    assert later.throttle_level == 2 and later.cooldown_until == 1016.0
    # A longer Retry-After still counts inside a burst.
    told = Throttled(reason="429", now=1001.0, jitter=1.0, settings=settings, retry_after=30.0).apply(burst)
    assert told.throttle_level == 1 and told.cooldown_until == 1031.0


def test_success_resets_the_backoff_level() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    settings = replace(settings, max_account_wait=0.0)
    upstream.generate[0] = [answer(429, {"message": "slow down"})]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert isinstance(out.error.error, NoAccountAvailableError)
    assert out.error.error.status_hint == 429
    clock.advance(60)
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert state(store, accounts[0].account_id).throttle_level == 0


def test_retry_after_header_lengthens_the_cooldown() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [answer(429, {"message": "x"}, headers=(("Retry-After", "120"),))]
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert state(store, accounts[0].account_id).cooldown_until == clock.now + 120
    assert retry_after_seconds((("retry-after", "soon"),)) is None


@pytest.mark.parametrize("failure", [answer(500, "boom"), answer(503, "busy"), "connection reset"])
def test_5xx_and_connection_failures_move_to_another_account_without_marks(failure: object) -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [failure]  # type: ignore[list-item]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[1]
    st = state(store, accounts[0].account_id)
    assert st.cooldown_until == 0 and st.invalid_until == 0 and st.exhausted_until == 0


@pytest.mark.parametrize(
    "body, kind",
    [
        ({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}, "input"),
        ({"message": "Improperly formed request."}, "malformed"),
        ({"message": "Invalid model. Please select a different model to continue.", "reason": "INVALID_MODEL_ID"}, "model"),
    ],
)
def test_400_request_errors_are_not_retried(body: dict[str, object], kind: str) -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.generate[0] = [answer(400, body)]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("generate") == 1
    err = out.error.error
    assert err.status_hint == 400 and err.kind is ErrorKind.INVALID_REQUEST
    if kind == "input":
        assert err.message.startswith("prompt is too long")
    assert store.counters(accounts[0].account_id)["client_errors"] == 1


def test_refresh_invalid_grant_disables_the_account_with_the_reason() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.refresh[0] = [answer(400, {"error": "invalid_grant", "error_description": "Invalid refresh token provided"})]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[1]
    st = state(store, accounts[0].account_id)
    assert st.disabled_reason is not None and "invalid_grant" in st.disabled_reason
    assert accounts[0].refresh_token not in st.disabled_reason
    clock.advance(10 * 86400)
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("refresh", 0) == 1  # never again


def test_transient_refresh_failure_backs_off_that_account_only() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.refresh[0] = ["timed out", answer(500, "oops")]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[1]
    st = state(store, accounts[0].account_id)
    assert st.refresh_failures == 1 and st.refresh_retry_at == clock.now + 7.5
    assert st.disabled_reason is None
    run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("refresh", 0) == 1  # still backing off
    clock.advance(8)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)  # 500: longer back-off
    assert out.account == accounts[1] and upstream.count("refresh", 0) == 2
    st = state(store, accounts[0].account_id)
    assert st.refresh_failures == 2 and st.refresh_retry_at == clock.now + 15
    assert st.refresh_error is not None and "HTTP 500" in st.refresh_error
    clock.advance(16)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[0] and state(store, accounts[0].account_id).refresh_failures == 0


def test_expiring_token_is_used_when_its_refresh_fails() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    aid = accounts[0].account_id
    store.update(aid, lambda s: AccountState(access_token="old", expires_at=clock.now + 120))
    upstream.refresh[0] = [answer(502, "bad gateway")]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    send = out.of(SendUpstream)[0]
    assert isinstance(send, SendUpstream) and send.request.header("Authorization") == "Bearer old"


def test_retries_are_bounded() -> None:
    accounts, clock, store, upstream, settings = setup(6)
    for i in range(6):
        upstream.generate[i] = [answer(500, "down")]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("generate") == settings.max_attempts
    err = out.error.error
    assert isinstance(err, NoAccountAvailableError)
    assert err.kind is ErrorKind.API and "HTTP 500" in err.message


def test_no_retry_after_the_first_client_byte() -> None:
    accounts = make_accounts(2)
    clock = FakeClock()
    ex = Exchange(accounts=accounts, settings=PoolSettings(), body=lambda arn: b"{}", new_id=lambda: "id",
                  random=lambda: 0.5)
    store = MemoryStore(clock=clock)
    for aid in (a.account_id for a in accounts):
        store.update(aid, lambda s: AccountState(access_token="tok", expires_at=clock.now + 3600))
    d = ex.next_decision(clock())
    assert isinstance(d, LoadState)
    ex.state_loaded(store.load_many(d.account_ids), clock())
    assert isinstance(ex.next_decision(clock()), SendUpstream)
    ex.upstream_started(clock())
    assert isinstance(ex.next_decision(clock()), Persist)
    assert isinstance(ex.next_decision(clock()), StartStream)
    ex.client_bytes_sent()
    ex.stream_failed(connection_failure("reset"), clock(), output_tokens=7)
    persist = ex.next_decision(clock())
    assert isinstance(persist, Persist) and persist.counters == (("failures", 1), ("output_tokens", 7))
    assert type(ex.next_decision(clock())).__name__ == "Done"


def test_a_stream_failure_before_the_first_byte_moves_on() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    out = run_exchange(accounts, store, upstream, clock, settings=settings, stream_ok=False)
    # first account's stream broke, second's too (the runner fails every stream): bounded, then error
    assert upstream.count("generate", 0) == 1 and upstream.count("generate", 1) == 1
    assert isinstance(out.error.error, NoAccountAvailableError)


def test_misuse_is_a_sticky_local_error() -> None:
    ex = Exchange(accounts=make_accounts(1), settings=PoolSettings(), body=lambda arn: b"", new_id=lambda: "i",
                  random=lambda: 0.0)
    with pytest.raises(LocalProtocolError, match="upstream_started"):
        ex.upstream_started(0.0)
    assert ex.phase is ExchangePhase.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        ex.next_decision(0.0)


def test_waits_for_another_refresher_then_uses_its_token() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    aid = accounts[0].account_id
    assert store.try_lease(aid, "other-replica", 90)
    ex = Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=lambda: "me",
                  random=lambda: 0.5)
    d = ex.next_decision(clock())
    assert isinstance(d, LoadState)
    ex.state_loaded(store.load_many(d.account_ids), clock())
    d = ex.next_decision(clock())
    assert isinstance(d, AcquireLease)
    ex.lease_result(store.try_lease(d.account_id, d.owner, d.ttl), clock())
    d = ex.next_decision(clock())
    assert type(d).__name__ == "Wait"
    # meanwhile the other replica finishes its refresh
    store.update(aid, lambda s: AccountState(access_token="theirs", expires_at=clock.now + 3600))
    store.release_lease(aid, "other-replica")
    clock.advance(0.25)
    ex.waited(clock())
    d = ex.next_decision(clock())
    assert isinstance(d, LoadState)
    ex.state_loaded(store.load_many(d.account_ids), clock())
    d = ex.next_decision(clock())
    assert isinstance(d, SendUpstream) and d.request.header("Authorization") == "Bearer theirs"


def test_a_slow_or_crashed_refresher_does_not_block_requests() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    assert store.try_lease(accounts[0].account_id, "crashed", settings.lease_ttl)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    # Waited a bounded time for the other refresher, then served by the next account.
    waited = sum(d.seconds for d in out.decisions if isinstance(d, Wait))
    assert settings.max_refresh_wait <= waited <= settings.max_refresh_wait + 2
    assert out.account == accounts[1] and upstream.count("refresh", 0) == 0


def test_a_crashed_refresher_blocks_an_account_only_until_its_lease_expires() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    assert store.try_lease(accounts[0].account_id, "crashed", settings.lease_ttl)
    err = run_exchange(accounts, store, upstream, clock, settings=settings).error.error
    assert "being refreshed by another request" in err.message
    clock.advance(settings.lease_ttl)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account == accounts[0] and upstream.count("refresh") == 1


def test_no_account_error_says_why_each_account_is_out() -> None:
    accounts, clock, store, upstream, settings = setup(3)
    a, b, c = (x.account_id for x in accounts)
    store.update(a, lambda s: AccountState(disabled_reason="the refresh token was rejected (HTTP 400: invalid_grant)"))
    store.update(b, lambda s: AccountState(cooldown_until=clock.now + 30, cooldown_reason="HTTP 429: slow"))
    store.update(c, lambda s: AccountState(exhausted_until=clock.now + 86400, exhausted_reason="HTTP 402: quota"))
    out = run_exchange(accounts, store, upstream, clock, settings=replace(settings, max_account_wait=0.0))
    err = out.error.error
    assert isinstance(err, NoAccountAvailableError)
    assert err.status_hint == 429 and err.retry_after == 30
    assert [label for label, _ in err.reasons] == ["#0 (acct0)", "#1 (acct1)", "#2 (acct2)"]
    assert "invalid_grant" in err.message and "cooling down for 30 s" in err.message
    assert "quota exhausted" in err.message
    assert upstream.sent == []


def test_all_permanently_out_is_503() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    store.update(accounts[0].account_id, lambda s: AccountState(disabled_reason="refresh token rejected"))
    err = run_exchange(accounts, store, upstream, clock, settings=settings).error.error
    assert err.status_hint == 503 and err.kind is ErrorKind.API


@pytest.mark.parametrize("strategy", list(Strategy))
def test_strategies_pick_as_documented(strategy: Strategy) -> None:
    accounts, clock, store, upstream, _ = setup(3)
    settings = PoolSettings(strategy=strategy)
    credits = {0: 5.0, 1: 50.0, 2: 20.0}
    for a in accounts:
        seeded = AccountState(access_token="t", expires_at=clock.now + 3600, remaining_credits=credits[a.index])
        store.update(a.account_id, _const(seeded))
    picked = []
    for _ in range(3):
        out = run_exchange(accounts, store, upstream, clock, settings=settings)
        assert out.account is not None
        picked.append(out.account.index)
        clock.advance(1)
    expected = {Strategy.SEQUENTIAL: [0, 0, 0], Strategy.OPTIMAL: [1, 1, 1], Strategy.ROUND_ROBIN: [0, 1, 2]}
    assert picked == expected[strategy]


def test_refresh_request_goes_through_the_decision_not_the_store() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    refresh = out.of(Refresh)[0]
    assert isinstance(refresh, Refresh)
    assert refresh.request.url == "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"
    assert "refresh-token" not in repr(refresh)


def _drive_to(ex: Exchange, store: MemoryStore, clock: FakeClock, kind: type[D]) -> D:
    """Run ``ex`` (state loads and persists against ``store``) up to its first ``kind`` decision."""
    while True:
        d = ex.next_decision(clock())
        if isinstance(d, LoadState):
            ex.state_loaded(store.load_many(d.account_ids), clock())
        elif isinstance(d, Persist):
            apply_persist(store, d)
        else:
            assert isinstance(d, kind), d
            return d


def _drive_to_send(ex: Exchange, store: MemoryStore, clock: FakeClock) -> SendUpstream:
    return _drive_to(ex, store, clock, SendUpstream)


def test_round_robin_spreads_concurrent_requests() -> None:
    accounts, clock, store, upstream, _ = setup(3)
    for a in accounts:
        store.update(a.account_id, _const(AccountState(access_token="t", expires_at=clock.now + 3600)))
    settings = PoolSettings(strategy=Strategy.ROUND_ROBIN)
    flights = [Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=lambda: "x",
                        random=lambda: 0.5) for _ in range(3)]
    # All three are in flight at once, none has been answered yet.
    picked = [_drive_to_send(ex, store, clock).account.index for ex in flights]
    assert picked == [0, 1, 2]


def test_round_robin_spreads_requests_that_arrive_while_accounts_fetch_their_first_token() -> None:
    # No account has a token yet. Each request's choice is recorded before it waits for its
    # account's lease: the next request, arriving meanwhile, goes to another account instead of
    # queueing behind the first one's refresh.
    accounts, clock, store, upstream, _ = setup(3)
    settings = PoolSettings(strategy=Strategy.ROUND_ROBIN)
    chosen: list[int] = []
    for _ in range(3):
        ex = Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=lambda: "x", random=lambda: 0.5)
        lease = _drive_to(ex, store, clock, AcquireLease)  # it would now wait for the token: leave it there
        chosen.append(next(a.index for a in accounts if a.account_id == lease.account_id))
    assert chosen == [0, 1, 2]


def test_idc_account_refreshes_at_its_oidc_region() -> None:
    accounts = make_accounts(1, auth="IdC", region="eu-central-1")
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    upstream = Upstream(accounts)
    out = run_exchange(accounts, store, upstream, clock)
    refresh = out.of(Refresh)[0]
    assert isinstance(refresh, Refresh)
    assert refresh.request.url == "https://oidc.eu-central-1.amazonaws.com/token"
    assert json.loads(refresh.request.body)["clientId"] == "client-0"
    send = out.of(SendUpstream)[0]
    assert isinstance(send, SendUpstream) and send.request.url.startswith("https://q.eu-central-1.")


def test_no_decision_shows_a_secret_in_its_repr() -> None:
    accounts, clock, store, upstream, settings = setup(2)
    upstream.refresh[0] = [refresh_ok("ACCESS-SECRET-1", refresh_token="ROTATED-SECRET-" + "r" * 30)]
    upstream.generate[0] = [answer(403, BEARER_INVALID)]
    upstream.refresh[0].append(refresh_ok("ACCESS-SECRET-2"))
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    text = " ".join(repr(d) for d in out.decisions)
    assert "TokenRefreshed" in text and "TokenRejected" in text
    for secret in ("ACCESS-SECRET", "ROTATED-SECRET", accounts[0].refresh_token, accounts[1].refresh_token):
        assert secret not in text


def test_an_expiring_token_whose_refresh_backs_off_is_used_without_refreshing() -> None:
    accounts, clock, store, upstream, settings = setup(1)
    store.update(accounts[0].account_id, _const(AccountState(
        access_token="old", expires_at=clock.now + 120, refresh_retry_at=clock.now + 60, refresh_failures=1)))
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert upstream.count("refresh") == 0 and out.account == accounts[0]
