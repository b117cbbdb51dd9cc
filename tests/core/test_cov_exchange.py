"""The pool's ``Exchange`` (``kiro_protocol.pool.Exchange``) at its edges: the attempt bound holds
across a refresh, a finished exchange stays finished, and a misused one says how and stays
broken."""

from __future__ import annotations

import itertools
import json

import pytest

from kiro_protocol import HttpResponse, LocalProtocolError
from kiro_protocol.pool import (
    AccountConfig,
    AccountState,
    AcquireLease,
    Done,
    Exchange,
    ExchangePhase,
    LoadState,
    NoAccountAvailableError,
    Persist,
    PoolSettings,
    Refresh,
    Respond,
    Retry,
    SendUpstream,
    StartStream,
    TokenRefreshed,
    parse_accounts,
)

NOW = 1_750_000_000.0
REJECTED = b'{"message":"The bearer token included in the request is invalid."}'


def setup(settings: PoolSettings = PoolSettings()) -> tuple[AccountConfig, Exchange]:
    (account,) = parse_accounts(json.dumps({"refreshToken": "r" * 30}))
    counter = itertools.count()
    exchange = Exchange(
        accounts=(account,), settings=settings, body=lambda arn: b"{}", new_id=lambda: f"id-{next(counter)}",
        random=lambda: 0.5,
    )
    assert exchange.next_decision(NOW) == LoadState(account_ids=(account.account_id,))
    exchange.state_loaded({account.account_id: AccountState(access_token="t" * 20, expires_at=NOW + 3600)}, NOW)
    assert isinstance(exchange.next_decision(NOW), SendUpstream)
    return account, exchange


def test_the_retry_after_a_refresh_counts_against_max_attempts() -> None:
    account, exchange = setup(PoolSettings(max_attempts=1))
    exchange.upstream_answered(403, REJECTED, NOW)
    assert isinstance(exchange.next_decision(NOW), Persist)
    retry = exchange.next_decision(NOW)
    assert isinstance(retry, Retry) and retry.same_account
    assert isinstance(exchange.next_decision(NOW), AcquireLease)
    exchange.lease_result(True, NOW)
    assert isinstance(exchange.next_decision(NOW), LoadState)
    exchange.state_loaded({}, NOW)
    assert isinstance(exchange.next_decision(NOW), Refresh)
    body = json.dumps({"accessToken": "n" * 20, "expiresIn": 3600}).encode()
    exchange.refresh_answered(HttpResponse(status=200, body=body), NOW)
    persist = exchange.next_decision(NOW)
    assert isinstance(persist, Persist) and isinstance(persist.update, TokenRefreshed)
    # The fresh token is not sent: the one attempt allowed is spent.
    final = exchange.next_decision(NOW)
    assert isinstance(final, Respond) and isinstance(final.error, NoAccountAvailableError)
    assert final.error.status_hint == 502
    assert final.error.message.startswith("No Kiro account is available.")
    assert "usable" not in final.error.message
    assert "not tried (again): the request used its 1 attempt(s)" in final.error.message
    assert exchange.phase is ExchangePhase.FAILED
    assert exchange.next_decision(NOW) == final  # the final answer, as often as asked


def test_a_finished_exchange_keeps_answering_done() -> None:
    account, exchange = setup()
    exchange.upstream_started(NOW)
    served = exchange.next_decision(NOW)
    assert isinstance(served, Persist) and served.counters == (("requests", 1),)
    assert exchange.next_decision(NOW) == StartStream(account=account)
    exchange.client_bytes_sent()
    exchange.finished(NOW, input_tokens=3, output_tokens=4)
    persist = exchange.next_decision(NOW)
    assert isinstance(persist, Persist) and persist.update is None
    assert dict(persist.counters)["input_tokens"] == 3 and dict(persist.counters)["output_tokens"] == 4
    assert exchange.next_decision(NOW) == Done()
    assert exchange.phase is ExchangePhase.DONE
    assert exchange.next_decision(NOW) == Done()


def test_a_200_fed_as_an_error_answer_is_misuse_and_the_exchange_stays_broken() -> None:
    _, exchange = setup()
    with pytest.raises(LocalProtocolError, match=r"^Exchange misused: upstream_answered\(\) with status 200; call upstream_started\(\)$"):
        exchange.upstream_answered(200, b"", NOW)
    assert exchange.phase is ExchangePhase.ERROR
    with pytest.raises(LocalProtocolError, match=r"^Exchange is in state ERROR: upstream_answered\(\) with status 200"):
        exchange.next_decision(NOW)


def test_asking_for_a_decision_while_an_answer_is_due_is_misuse() -> None:
    _, exchange = setup()
    with pytest.raises(LocalProtocolError, match=r"^Exchange misused: next_decision\(\) while an answer is due in phase SENDING$"):
        exchange.next_decision(NOW)
    assert exchange.phase is ExchangePhase.ERROR
