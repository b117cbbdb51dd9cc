"""A small synchronous reference executor for the pool's step machines (tests only).

It runs an ``Exchange`` (or an ``AccountCheck``) against scripted upstream answers, a state store
and a fake clock, exactly as a real driver would, and records what happened. It proves the
decision API end to end and is the model for the real sync/async drivers.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
import time
from typing import Callable, Mapping, Protocol, Sequence

from adapters.runtime.stores import StateStore, apply_persist
from kiro_protocol.pool._credentials import AccountConfig, parse_accounts
from kiro_protocol.pool._exchange import Exchange
from kiro_protocol.http._messages import HttpRequest, HttpResponse
from kiro_protocol.pool._accounts import PoolSettings
from kiro_protocol.pool._checks import AccountCheck
from kiro_protocol.pool._decisions import (
    AcquireLease,
    CheckModels,
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
)

#: A scripted answer: an HttpResponse, or a string meaning "no answer" (connection failure).
Answer = HttpResponse | str

T0 = 1_750_000_000.0


class Clock(Protocol):
    def __call__(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time; ``advance`` sleeps (for threaded tests against real stores)."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """Time that moves only when told (``Wait`` decisions advance it)."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_accounts(n: int, *, auth: str = "Social", **extra: object) -> tuple[AccountConfig, ...]:
    """``n`` Social (or IdC) accounts with distinct, long enough refresh tokens."""
    entries = []
    for i in range(n):
        entry: dict[str, object] = {"auth": auth, "refreshToken": f"refresh-token-{i:02d}-" + "x" * 40,
                                    "description": f"acct{i}"}
        if auth == "IdC":
            entry.update(clientId=f"client-{i}", clientSecret=f"secret-{i}-" + "s" * 20)
        entry.update(extra)
        entries.append(entry)
    return parse_accounts(json.dumps(entries))


def refresh_ok(access_token: str, *, expires_in: float = 3600, refresh_token: str | None = None,
               profile_arn: str | None = None) -> HttpResponse:
    body: dict[str, object] = {"accessToken": access_token, "expiresIn": expires_in}
    if refresh_token is not None:
        body["refreshToken"] = refresh_token
    if profile_arn is not None:
        body["profileArn"] = profile_arn
    return HttpResponse(status=200, body=json.dumps(body).encode())


def answer(status: int, body: str | Mapping[str, object] = "", headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    raw = body if isinstance(body, str) else json.dumps(dict(body))
    return HttpResponse(status=status, headers=headers, body=raw.encode())


OK = HttpResponse(status=200)
#: What an account's ``ListAvailableModels`` answers unless scripted.
DEFAULT_MODELS = ("auto", "claude-sonnet-4.5", "claude-haiku-4.5", "claude-opus-4.5")


@dataclass
class Upstream:
    """Scripted answers per account index; when a script runs out the default answer is used."""

    accounts: Sequence[AccountConfig]
    refresh: dict[int, list[Answer]] = field(default_factory=dict)
    generate: dict[int, list[Answer]] = field(default_factory=dict)
    usage: dict[int, list[Answer]] = field(default_factory=dict)
    models: dict[int, list[Answer]] = field(default_factory=dict)
    #: Every request the executor sent, in order: (kind, account index, request).
    sent: list[tuple[str, int, HttpRequest]] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)

    def index(self, account: AccountConfig) -> int:
        return account.index

    def answer(self, kind: str, account: AccountConfig, request: HttpRequest) -> Answer:
        self.sent.append((kind, account.index, request))
        scripts = {"refresh": self.refresh, "generate": self.generate, "usage": self.usage, "models": self.models}
        script = scripts[kind].get(account.index)
        if script:
            return script.pop(0)
        if kind == "refresh":
            return refresh_ok(f"access-{account.index}-{next(self._tokens)}")
        if kind == "usage":
            return answer(200, {"usageBreakdownList": [
                {"resourceType": "CREDIT", "usageLimitWithPrecision": 100.0, "currentUsageWithPrecision": 10.0}]})
        if kind == "models":
            return answer(200, {"models": [{"modelId": m} for m in DEFAULT_MODELS], "nextToken": None})
        return OK

    def count(self, kind: str, index: int | None = None) -> int:
        return sum(1 for k, i, _ in self.sent if k == kind and (index is None or i == index))


@dataclass
class Outcome:
    """How one exchange ended, and everything it decided on the way."""

    decisions: list[Decision]
    final: Decision
    account: AccountConfig | None

    @property
    def error(self) -> Respond:
        assert isinstance(self.final, Respond), self.final
        return self.final

    def of(self, kind: type[Decision]) -> list[Decision]:
        return [d for d in self.decisions if isinstance(d, kind)]


_ID_COUNTER = itertools.count()  # global: lease owners must differ between exchanges


def _ids() -> Callable[[], str]:
    return lambda: f"00000000-0000-4000-8000-{next(_ID_COUNTER):012d}"


def run_exchange(
    accounts: Sequence[AccountConfig],
    store: StateStore,
    upstream: Upstream,
    clock: Clock,
    *,
    settings: PoolSettings | None = None,
    body: Callable[[str | None], bytes] = lambda arn: json.dumps({"profileArn": arn}).encode(),
    jitter: float = 0.5,
    stream_ok: bool = True,
    max_steps: int = 1000,
    model_id: str | None = None,
    in_flight: Mapping[str, int] | None = None,
) -> Outcome:
    """Drive one Exchange to its end; a started stream is finished at once (or failed).

    ``in_flight``: the calls in flight per account the driver reports (a ``Wait`` frees them).
    """
    ex = Exchange(accounts=accounts, settings=settings or PoolSettings(), body=body, new_id=_ids(),
                  random=lambda: jitter, model_id=model_id)
    log: list[Decision] = []
    for _ in range(max_steps):
        d = ex.next_decision(clock())
        log.append(d)
        if isinstance(d, LoadState):
            ex.state_loaded(store.load_many(d.account_ids), clock(), in_flight)
        elif isinstance(d, AcquireLease):
            ex.lease_result(store.try_lease(d.account_id, d.owner, d.ttl), clock())
        elif isinstance(d, Wait):
            clock.advance(d.seconds)
            if d.line:
                in_flight = None  # the calls that filled the slots ended meanwhile
            ex.waited(clock())
        elif isinstance(d, Refresh):
            got = upstream.answer("refresh", d.account, d.request)
            if isinstance(got, str):
                ex.refresh_failed(got, clock())
            else:
                ex.refresh_answered(got, clock())
        elif isinstance(d, Persist):
            apply_persist(store, d)
        elif isinstance(d, Retry):
            pass
        elif isinstance(d, SendUpstream):
            got = upstream.answer("generate", d.account, d.request)
            if isinstance(got, str):
                ex.upstream_failed(got, clock())
            elif got.status == 200:
                ex.upstream_started(clock())
            else:
                ex.upstream_answered(got.status, got.body, clock(), got.headers)
        elif isinstance(d, StartStream):
            if stream_ok:
                ex.client_bytes_sent()
                ex.finished(clock(), input_tokens=10, output_tokens=5)
            else:
                from kiro_protocol.pool._upstream_errors import connection_failure

                ex.stream_failed(connection_failure("stream broke"), clock())
        elif isinstance(d, (Respond, Done)):
            return Outcome(decisions=log, final=d, account=ex.account)
        else:  # pragma: no cover
            raise AssertionError(d)
    raise AssertionError("exchange did not finish")


def run_check(
    account: AccountConfig,
    store: StateStore,
    upstream: Upstream,
    clock: Clock,
    *,
    settings: PoolSettings | None = None,
) -> list[Decision]:
    """Drive one background AccountCheck to its end."""
    check = AccountCheck(account=account, settings=settings or PoolSettings(), new_id=_ids(), random=lambda: 0.5)
    log: list[Decision] = []
    while True:
        d = check.next_decision(clock())
        log.append(d)
        if isinstance(d, LoadState):
            check.state_loaded(store.load_many(d.account_ids), clock())
        elif isinstance(d, AcquireLease):
            check.lease_result(store.try_lease(d.account_id, d.owner, d.ttl), clock())
        elif isinstance(d, Refresh):
            got = upstream.answer("refresh", d.account, d.request)
            if isinstance(got, str):
                check.refresh_failed(got, clock())
            else:
                check.refresh_answered(got, clock())
        elif isinstance(d, CheckUsage):
            got = upstream.answer("usage", d.account, d.request)
            if isinstance(got, str):
                check.usage_failed(got, clock())
            else:
                check.usage_answered(got, clock())
        elif isinstance(d, CheckModels):
            got = upstream.answer("models", d.account, d.request)
            if isinstance(got, str):
                check.models_failed(got, clock())
            else:
                check.models_answered(got, clock())
        elif isinstance(d, Persist):
            apply_persist(store, d)
        elif isinstance(d, Done):
            return log
        else:  # pragma: no cover
            raise AssertionError(d)
