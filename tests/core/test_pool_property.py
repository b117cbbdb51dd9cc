"""The pool's promise, as a property (issue 5).

Random sequences of upstream outcomes (success, 403, 429, 402, 5xx, connection failure, refresh
failures) over pools of 1-5 accounts, with several requests in flight at once and interleaved
in a random order, on an injected clock:

* no request is sent on an account that its own view of the store says is disabled, invalid,
  exhausted or cooling down;
* a request never gives up while an account it has not tried is usable (unless it used up its
  bounded attempts);
* no account is ever refreshed by two requests at the same time;
* every request ends either served or with a "no account available" error that names every
  account and why it is out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.runtime.stores import apply_persist
from adapters.runtime.stores.memory_store import MemoryStore
from kiro_protocol.pool._exchange import Exchange
from kiro_protocol.pool._checks import AccountCheck, checks_due
from kiro_protocol.http._messages import HttpResponse
from kiro_protocol.pool._accounts import AccountState, NoAccountAvailableError, PoolSettings, Strategy
from kiro_protocol.pool._decisions import (
    AcquireLease,
    CheckUsage,
    Decision,
    Done,
    LoadState,
    Persist,
    Refresh,
    Respond,
    Retry,
    SendUpstream,
    StartStream,
    Wait,
    CheckModels,
)
from tests.exchange_runner import FakeClock, answer, make_accounts, refresh_ok

GENERATE_OUTCOMES: dict[str, HttpResponse | str] = {
    "ok": HttpResponse(status=200),
    "403": answer(403, {"message": "The bearer token included in the request is invalid."}),
    "429": answer(429, {"message": "Too many requests"}),
    "402": answer(402, {"message": "quota", "reason": "MONTHLY_REQUEST_COUNT"}),
    "500": answer(500, "internal"),
    "conn": "connection reset by peer",
}
USAGE_OUTCOMES: dict[str, HttpResponse] = {
    "credits": answer(200, {"usageBreakdownList": [
        {"resourceType": "CREDIT", "usageLimitWithPrecision": 50.0, "currentUsageWithPrecision": 10.0}]}),
    "none_left": answer(200, {"nextDateReset": 1_750_100_000.0, "usageBreakdownList": [
        {"resourceType": "CREDIT", "usageLimitWithPrecision": 50.0, "currentUsageWithPrecision": 50.0}]}),
    "500": answer(500, "usage down"),
}
REFRESH_OUTCOMES: dict[str, HttpResponse | str | None] = {
    "ok": None,  # a fresh token
    "invalid_grant": answer(400, {"error": "invalid_grant"}),
    "500": answer(500, "refresh service down"),
    "conn": "timed out",
}


def _out(state: AccountState, now: float) -> bool:
    """An oracle independent of the pool's own code: disabled, invalid, exhausted or cooling."""
    return bool(
        state.disabled_reason
        or state.invalid_until > now
        or state.exhausted_until > now
        or state.cooldown_until > now
    )


@dataclass
class Flight:
    """One client request (an Exchange) or background check in flight, with what its driver knows."""

    ex: Exchange | AccountCheck
    #: A decision produced but whose answer is not fed yet (refresh / upstream in flight).
    pending: Decision | None = None
    last_loaded: dict[str, AccountState] = field(default_factory=dict)
    final: Decision | None = None


@settings(max_examples=150, deadline=None)
@given(
    n_accounts=st.integers(1, 5),
    n_requests=st.integers(1, 6),
    strategy=st.sampled_from(list(Strategy)),
    data=st.data(),
)
def test_pool_never_picks_an_unusable_account_and_never_refreshes_twice(
    n_accounts: int, n_requests: int, strategy: Strategy, data: st.DataObject
) -> None:
    accounts = make_accounts(n_accounts)
    by_id = {a.account_id: a for a in accounts}
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    pool_settings = PoolSettings(strategy=strategy)
    ids = itertools.count()
    tokens = itertools.count()
    refreshing: set[str] = set()
    #: (account id, owner) of leases held right now.
    held: set[tuple[str, str]] = set()
    flights: list[Flight] = []
    started = 0

    def new_flight() -> Flight:
        ex = Exchange(
            accounts=accounts,
            settings=pool_settings,
            body=lambda arn: b"{}",
            new_id=lambda: f"id-{next(ids)}",
            random=lambda: data.draw(st.floats(0, 1), label="jitter"),
        )
        return Flight(ex=ex)

    def step(f: Flight) -> None:
        now = clock()
        if f.pending is not None:  # deliver the answer of an in-flight call
            d, f.pending = f.pending, None
            if isinstance(d, Refresh):
                refreshing.discard(d.account.account_id)
                outcome = REFRESH_OUTCOMES[data.draw(st.sampled_from(sorted(REFRESH_OUTCOMES)), label="refresh")]
                if outcome is None:
                    outcome = refresh_ok(f"tok-{next(tokens)}")
                if isinstance(outcome, str):
                    f.ex.refresh_failed(outcome, now)
                else:
                    f.ex.refresh_answered(outcome, now)
            elif isinstance(d, CheckModels):
                assert isinstance(f.ex, AccountCheck)
                f.ex.models_answered(answer(200, {"models": [{"modelId": "auto"}]}), now)
            elif isinstance(d, CheckUsage):
                assert isinstance(f.ex, AccountCheck)
                f.ex.usage_answered(USAGE_OUTCOMES[data.draw(st.sampled_from(sorted(USAGE_OUTCOMES)), label="usage")], now)
            else:
                assert isinstance(d, SendUpstream) and isinstance(f.ex, Exchange)
                got = GENERATE_OUTCOMES[data.draw(st.sampled_from(sorted(GENERATE_OUTCOMES)), label="upstream")]
                if isinstance(got, str):
                    f.ex.upstream_failed(got, now)
                elif got.status == 200:
                    f.ex.upstream_started(now)
                else:
                    f.ex.upstream_answered(got.status, got.body, now)
            return
        d = f.ex.next_decision(now)
        if isinstance(d, LoadState):
            f.last_loaded = store.load_many(d.account_ids)
            f.ex.state_loaded(f.last_loaded, now)
        elif isinstance(d, AcquireLease):
            acquired = store.try_lease(d.account_id, d.owner, d.ttl)
            if acquired:
                held.add((d.account_id, d.owner))
            f.ex.lease_result(acquired, now)
        elif isinstance(d, Wait):
            assert isinstance(f.ex, Exchange)
            if d.line and not held:
                clock.advance(d.seconds)  # waiting for an account to come back lets time pass
            f.ex.waited(clock())  # otherwise time moves only by explicit ticks (see below)
        elif isinstance(d, Refresh):
            assert d.account.account_id not in refreshing, "two concurrent refreshes of one account"
            refreshing.add(d.account.account_id)
            f.pending = d
        elif isinstance(d, (CheckUsage, CheckModels)):
            f.pending = d
        elif isinstance(d, SendUpstream):
            seen = f.last_loaded.get(d.account.account_id, AccountState())
            assert not _out(seen, now), f"sent on an unusable account: {seen}"
            f.pending = d
        elif isinstance(d, Persist):
            apply_persist(store, d)
            if d.release_lease is not None:
                held.discard((d.account_id, d.release_lease))
        elif isinstance(d, StartStream):
            assert isinstance(f.ex, Exchange)
            f.ex.client_bytes_sent()
            f.ex.finished(now, output_tokens=1)
        elif isinstance(d, (Retry,)):
            pass
        else:
            assert isinstance(d, (Respond, Done))
            f.final = d

    steps = 0
    checks = 0
    while started < n_requests or any(f.final is None for f in flights):
        steps += 1
        assert steps < 5000, "the pool did not converge"
        active = [f for f in flights if f.final is None]
        choices = (
            ["step"] * bool(active)
            + ["start"] * (started < n_requests)
            + ["tick"] * (not held)
            + ["check"] * (checks < 6 and steps < 200)
        )
        # After a while the schedule is fixed, so that every run ends.
        action = data.draw(st.sampled_from(choices), label="action") if steps < 200 else choices[0]
        if action == "start":
            flights.append(new_flight())
            started += 1
        elif action == "check":
            # The runtime's background loop: a check of one account that is due (if any).
            checks += 1
            due = checks_due(accounts, store.load_many(list(by_id)), clock(), pool_settings)
            if due:
                account = due[data.draw(st.integers(0, len(due) - 1), label="check")]
                flights.append(Flight(ex=AccountCheck(account=account, settings=pool_settings,
                                                      new_id=lambda: f"id-{next(ids)}", random=lambda: 0.5)))
        elif action == "tick":
            # Time passes only while no refresh lease is held: the adapter's refresh timeout is
            # shorter than the lease, which is what makes the lease a single-flight guarantee.
            clock.advance(data.draw(st.sampled_from([0.5, 5.0, 60.0, 400.0, 3350.0, 4000.0]), label="tick"))
        else:
            index = data.draw(st.integers(0, len(active) - 1), label="who") if steps < 200 else steps % len(active)
            step(active[index])

    for f in flights:
        if isinstance(f.ex, AccountCheck):
            assert isinstance(f.final, Done)
            continue
        if isinstance(f.final, Respond):
            err = f.final.error
            assert isinstance(err, NoAccountAvailableError), err
            assert [label for label, _ in err.reasons] == [a.label for a in accounts]
            assert all(why for _, why in err.reasons)
            if f.ex.attempts < pool_settings.max_attempts:
                assert all(why != "usable" for _, why in err.reasons), err.message
        else:
            assert isinstance(f.final, Done)
    # Nothing is ever left leased by a finished request.
    assert not held
    for account_id in by_id:
        assert store.try_lease(account_id, "probe", 1.0)
