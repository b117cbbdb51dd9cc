"""Waiting for an account (issue 14 item 3) and routing by the account's models (item 7)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.runtime.stores.memory_store import MemoryStore
from kiro_protocol import Dialect, ErrorKind, HttpResponse
from kiro_protocol.http._routing import error_answer
from kiro_protocol.pool import (
    AccountConfig,
    AccountCheck,
    AccountState,
    CheckModels,
    ModelCatalogueError,
    NoAccountAvailableError,
    parse_available_models,
    PoolSettings,
    SendUpstream,
    Strategy,
    Wait,
)
from kiro_protocol.pool._decisions import AcquireLease, LoadState, Persist, Refresh
from kiro_protocol.pool._exchange import Exchange
from adapters.runtime.stores import apply_persist
from tests.exchange_runner import FakeClock, Upstream, answer, make_accounts, refresh_ok, run_check, run_exchange

FRESH_FOR = 3600.0


def pool(n: int, **settings: object) -> tuple[tuple[AccountConfig, ...], FakeClock, MemoryStore, Upstream, PoolSettings]:
    accounts = make_accounts(n)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for a in accounts:  # a valid token each: the tests are about selection, not refresh
        store.update(a.account_id, lambda s: replace(s, access_token="tok-" + "x" * 20, expires_at=clock.now + FRESH_FOR))
    return accounts, clock, store, Upstream(accounts), PoolSettings(strategy=Strategy.SEQUENTIAL, **settings)  # type: ignore[arg-type]


def cool(store: MemoryStore, account_id: str, until: float) -> None:
    store.update(account_id, lambda s: replace(s, cooldown_until=until, cooldown_reason="HTTP 429: Too many requests"))


# -- waiting for an account that is only briefly out ------------------------------------------------


def test_every_account_cooling_down_makes_the_request_wait_in_line_for_the_first_back() -> None:
    accounts, clock, store, upstream, settings = pool(2)
    start = clock.now
    cool(store, accounts[0].account_id, start + 8)
    cool(store, accounts[1].account_id, start + 5)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    waits = out.of(Wait)
    assert waits and all(isinstance(w, Wait) and w.line for w in waits)
    assert 5 <= clock.now - start < 5.1, "woken when the first account came back, not later"
    assert out.account == accounts[1] and upstream.count("generate") == 1


def test_past_the_budget_the_answer_is_429_with_retry_after_at_once() -> None:
    accounts, clock, store, upstream, settings = pool(2, max_account_wait=3.0)
    start = clock.now
    cool(store, accounts[0].account_id, start + 20)
    cool(store, accounts[1].account_id, start + 12)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    err = out.error.error
    assert isinstance(err, NoAccountAvailableError) and err.status_hint == 429 and err.kind is ErrorKind.RATE_LIMIT
    assert err.retry_after == 12
    assert clock.now == start, "no use waiting for an account that is back only after the budget"
    assert not out.of(Wait) and upstream.sent == []
    reply = error_answer(err, Dialect.ANTHROPIC)
    assert reply.status == 429 and ("retry-after", "12") in reply.headers
    assert ("retry-after", "12") in error_answer(err, Dialect.OPENAI).headers


def test_a_request_throttled_everywhere_waits_and_is_served_by_the_first_account_back() -> None:
    accounts, clock, store, upstream, settings = pool(2)
    upstream.generate[0] = [answer(429, {"message": "Too many requests"})]
    upstream.generate[1] = [answer(429, {"message": "Too many requests"})]
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    assert out.account is not None and upstream.count("generate") == 3
    assert [d.account.index for d in out.of(SendUpstream)][:2] == [0, 1]  # type: ignore[attr-defined]
    assert any(isinstance(w, Wait) and w.line for w in out.of(Wait))


def test_the_budget_counts_from_the_first_wait_so_a_request_never_waits_longer() -> None:
    accounts, clock, store, upstream, settings = pool(1, max_account_wait=10.0)
    start = clock.now
    # Throttled again each time it comes back: the cooldowns add up past the budget.
    upstream.generate[0] = [answer(429, {"message": "slow"})] * 4
    out = run_exchange(accounts, store, upstream, clock, settings=replace(settings, max_attempts=10))
    err = out.error.error
    assert err.status_hint == 429 and err.retry_after is not None and err.retry_after > 0
    assert clock.now - start <= 10.0 + 0.1
    assert "within the wait budget" in err.message


def test_an_account_out_for_long_is_not_waited_for() -> None:
    accounts, clock, store, upstream, settings = pool(2)
    store.update(accounts[0].account_id, lambda s: replace(s, disabled_reason="invalid_grant"))
    store.update(accounts[1].account_id, lambda s: replace(s, exhausted_until=clock.now + 86400, exhausted_reason="402"))
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    err = out.error.error
    assert not out.of(Wait) and upstream.sent == [], "a monthly quota is not waited for"
    assert err.status_hint == 429 and err.retry_after == 86400  # as before: back at the reset
    assert ("retry-after", "86400") in error_answer(err, Dialect.ANTHROPIC).headers
    store.update(accounts[1].account_id, lambda s: replace(s, disabled_reason="invalid_grant"))
    err = run_exchange(accounts, store, upstream, clock, settings=settings).error.error
    assert err.status_hint == 503 and err.retry_after is None
    assert not any(name == "retry-after" for name, _ in error_answer(err, Dialect.ANTHROPIC).headers)


def test_a_zero_budget_answers_429_at_once_as_before() -> None:
    accounts, clock, store, upstream, settings = pool(1, max_account_wait=0.0)
    cool(store, accounts[0].account_id, clock.now + 4)
    out = run_exchange(accounts, store, upstream, clock, settings=settings)
    err = out.error.error
    assert err.status_hint == 429 and err.retry_after == 4 and err.message.startswith("No Kiro account is available. ")


# -- the connection cap ------------------------------------------------------------------------------


def test_an_account_at_its_connection_cap_is_passed_over_for_another() -> None:
    accounts, clock, store, upstream, settings = pool(2, max_connections_per_account=3)
    out = run_exchange(accounts, store, upstream, clock, settings=settings, in_flight={accounts[0].account_id: 3})
    assert out.account == accounts[1] and not out.of(Wait)


def test_every_account_at_its_cap_waits_in_line_for_a_slot() -> None:
    accounts, clock, store, upstream, settings = pool(2, max_connections_per_account=1)
    busy = {a.account_id: 1 for a in accounts}
    out = run_exchange(accounts, store, upstream, clock, settings=settings, in_flight=busy)
    (wait,) = out.of(Wait)
    assert isinstance(wait, Wait) and wait.line and wait.seconds == pytest.approx(settings.slot_poll, abs=0.02)
    assert out.account == accounts[0], "a slot freed during the wait"


def test_slots_that_stay_busy_past_the_budget_get_429() -> None:
    accounts, clock, store, upstream, settings = pool(1, max_connections_per_account=2, max_account_wait=2.5)
    ex = Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=lambda: "id", random=lambda: 0.5)
    start = clock.now
    for _ in range(10):
        d = ex.next_decision(clock())
        if not isinstance(d, (Wait,)) and type(d).__name__ == "LoadState":
            ex.state_loaded(store.load_many([accounts[0].account_id]), clock(), {accounts[0].account_id: 2})
            continue
        if isinstance(d, Wait):
            clock.advance(d.seconds)
            ex.waited(clock())
            continue
        break
    err = d.error  # type: ignore[attr-defined]
    assert err.status_hint == 429 and err.retry_after == settings.slot_poll
    assert "connection cap (2 calls in flight)" in err.message
    assert 2.5 <= clock.now - start <= 2.6


def _until(ex: Exchange, store: MemoryStore, clock: FakeClock, kind: type, in_flight: dict[str, int]) -> object:
    """Drive ``ex`` (store reads, leases, writes) up to its first decision of ``kind``."""
    for _ in range(20):
        d = ex.next_decision(clock())
        if isinstance(d, kind):
            return d
        if isinstance(d, LoadState):
            ex.state_loaded(store.load_many(d.account_ids), clock(), dict(in_flight))
        elif isinstance(d, AcquireLease):
            ex.lease_result(store.try_lease(d.account_id, d.owner, d.ttl), clock())
        elif isinstance(d, Persist):
            apply_persist(store, d)
        else:
            raise AssertionError(f"unexpected {d}")
    raise AssertionError(f"no {kind.__name__}")


def test_a_request_that_waited_for_its_accounts_token_goes_elsewhere_once_that_account_is_full() -> None:
    # A cold burst: every request picks the same account (no token anywhere yet), one refreshes it
    # and the others wait for that refresh. The cap is checked again before each of them sends;
    # before, all of them sent on that account, past KIRO_MAX_CONNECTIONS_PER_ACCOUNT.
    accounts = make_accounts(2)
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    settings = PoolSettings(max_connections_per_account=1)
    ids = iter(range(100))
    first, second = (
        Exchange(accounts=accounts, settings=settings, body=lambda arn: b"{}", new_id=lambda: f"id-{next(ids)}",
                 random=lambda: 0.5)
        for _ in range(2)
    )
    in_flight: dict[str, int] = {}
    for ex in (first, second):  # both read the cold store before either goes on
        load = ex.next_decision(clock())
        assert isinstance(load, LoadState)
        ex.state_loaded(store.load_many(load.account_ids), clock(), {})
    for ex in (first, second):
        lease = ex.next_decision(clock())
        assert isinstance(lease, AcquireLease) and ex.account == accounts[0]
        ex.lease_result(store.try_lease(lease.account_id, lease.owner, lease.ttl), clock())
    wait = second.next_decision(clock())
    assert isinstance(wait, Wait) and not wait.line, "waits for the other request's refresh"
    refresh = _until(first, store, clock, Refresh, in_flight)
    assert isinstance(refresh, Refresh)
    first.refresh_answered(refresh_ok("token-0-" + "x" * 20), clock())
    sent = _until(first, store, clock, SendUpstream, in_flight)
    assert isinstance(sent, SendUpstream) and sent.account == accounts[0]
    in_flight[accounts[0].account_id] = 1  # the driver counts the call: the account is full
    clock.advance(wait.seconds)
    second.waited(clock())
    # The other account has no token yet: this request refreshes it rather than queue on the full one.
    refresh = _until(second, store, clock, Refresh, in_flight)
    assert isinstance(refresh, Refresh) and refresh.account == accounts[1]
    assert second.account == accounts[1]


# -- models per account tier -------------------------------------------------------------------------


def offering(store: MemoryStore, account_id: str, models: tuple[str, ...] | None, tier: str) -> None:
    store.update(account_id, lambda s: replace(s, models=models, subscription_title=tier))


def test_a_request_goes_only_to_accounts_whose_tier_offers_its_model() -> None:
    accounts, clock, store, upstream, settings = pool(2)
    offering(store, accounts[0].account_id, ("auto", "claude-sonnet-4.5"), "KIRO FREE")
    offering(store, accounts[1].account_id, ("auto", "claude-sonnet-4.5", "claude-opus-4.5"), "KIRO PRO")
    out = run_exchange(accounts, store, upstream, clock, settings=settings, model_id="claude-opus-4.5")
    assert out.account == accounts[1] and upstream.count("generate", 0) == 0
    out = run_exchange(accounts, store, upstream, clock, settings=settings, model_id="claude-sonnet-4.5")
    assert out.account == accounts[0]


def test_an_account_whose_models_are_not_known_yet_is_tried() -> None:
    accounts, clock, store, upstream, settings = pool(2)
    offering(store, accounts[0].account_id, ("claude-sonnet-4.5",), "KIRO FREE")
    out = run_exchange(accounts, store, upstream, clock, settings=settings, model_id="claude-opus-4.5")
    assert out.account == accounts[1]


def test_no_account_offering_the_model_is_a_404_naming_the_model_and_the_tiers() -> None:
    accounts, clock, store, upstream, settings = pool(3)
    offering(store, accounts[0].account_id, ("claude-sonnet-4.5",), "KIRO FREE")
    offering(store, accounts[1].account_id, ("claude-sonnet-4.5",), "KIRO FREE")
    store.update(accounts[2].account_id, lambda s: replace(s, disabled_reason="invalid_grant"))
    out = run_exchange(accounts, store, upstream, clock, settings=settings, model_id="claude-opus-4.5")
    err = out.error.error
    assert err.status_hint == 404 and err.kind is ErrorKind.NOT_FOUND and err.param == "model"
    assert "claude-opus-4.5" in err.message and "the tier KIRO FREE lacks it" in err.message
    assert upstream.sent == [] and not out.of(Wait)


def test_accounts_offering_the_model_but_out_give_the_usual_error_with_the_tier_reason() -> None:
    accounts, clock, store, upstream, settings = pool(2, max_account_wait=0.0)
    offering(store, accounts[0].account_id, ("claude-sonnet-4.5",), "KIRO FREE")
    offering(store, accounts[1].account_id, ("claude-opus-4.5",), "KIRO PRO")
    cool(store, accounts[1].account_id, clock.now + 9)
    err = run_exchange(accounts, store, upstream, clock, settings=settings, model_id="claude-opus-4.5").error.error
    assert err.status_hint == 429 and err.retry_after == 9
    assert "its tier (KIRO FREE) does not offer claude-opus-4.5" in err.message


def test_the_background_check_learns_the_models_with_the_usage() -> None:
    accounts, clock, store, upstream, settings = pool(1)
    upstream.models[0] = [answer(200, {"models": [{"modelId": "auto"}, {"modelId": "claude-sonnet-4.5"}], "nextToken": None})]
    log = run_check(accounts[0], store, upstream, clock, settings=settings)
    assert any(isinstance(d, CheckModels) for d in log)
    (kind, _, request) = upstream.sent[-1]
    assert kind == "models" and "/ListAvailableModels?origin=AI_EDITOR&maxResults=50" in request.url
    assert ("Authorization", "Bearer tok-" + "x" * 20) in request.headers
    assert store.load_many([accounts[0].account_id])[accounts[0].account_id].models == ("auto", "claude-sonnet-4.5")


@pytest.mark.parametrize("reply", [answer(500, "down"), answer(200, "not json"), "timed out"])
def test_a_failed_models_check_keeps_what_was_known(reply: object) -> None:
    accounts, clock, store, upstream, settings = pool(1)
    offering(store, accounts[0].account_id, ("claude-sonnet-4.5",), "KIRO FREE")
    upstream.models[0] = [reply]  # type: ignore[list-item]
    run_check(accounts[0], store, upstream, clock, settings=settings)
    assert store.load_many([accounts[0].account_id])[accounts[0].account_id].models == ("claude-sonnet-4.5",)


def test_models_parser() -> None:
    body = b'{"models":[{"modelId":"auto"},{"modelId":"claude-opus-4.5"},{"modelId":"auto"}],"nextToken":null}'
    assert parse_available_models(body) == ("auto", "claude-opus-4.5")
    assert parse_available_models(b'{"models":[{"modelId":"auto"}],"nextToken":"page-2"}') is None, "a first page only"
    for bad in (b"[]", b"{}", b'{"models":{}}', b'{"models":[{"id":"x"}]}', b'{"models":[{"modelId":""}]}', b"\xff"):
        with pytest.raises(ModelCatalogueError):
            parse_available_models(bad)


def test_models_survive_the_store_and_bad_records_read_as_unknown() -> None:
    state = AccountState(models=("auto", "claude-opus-4.5"))
    assert AccountState.from_json(state.to_json()) == state
    assert AccountState.from_json('{"models": [1, 2]}').models is None
    assert AccountState.from_json('{"models": "auto"}').models is None


def test_the_check_refuses_a_models_answer_out_of_turn() -> None:
    check = AccountCheck(account=make_accounts(1)[0], settings=PoolSettings(), new_id=lambda: "id", random=lambda: 0.5)
    with pytest.raises(Exception, match="models_answered"):
        check.models_answered(HttpResponse(status=200), 0.0)
    with pytest.raises(Exception, match="models_failed"):
        check.models_failed("x", 0.0)
