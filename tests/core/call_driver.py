"""Drives a ``ModelCall`` by hand, as the runtime would, with no IO (tests of the pure tier).

Pool decisions are answered from fresh account states, each upstream send from a script, and
everything the client would get is collected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kiro_protocol import (
    AccountConfig,
    AccountState,
    Answer,
    CallIds,
    CallSetup,
    ClientOutput,
    ConversionConfig,
    Dialect,
    Done,
    LoadState,
    ModelCall,
    Persist,
    PoolSettings,
    Retry,
    SendUpstream,
    StartStream,
)

T0 = 1_750_000_000.0
FRESH = AccountState(access_token="at-token", expires_at=T0 + 3600)

#: An upstream answer: (status, body), or a string: the connection broke (with that detail)
#: after the first bytes of ``broken_prefix``.
Scripted = tuple[int, bytes] | str


def call_for(
    body: dict[str, Any],
    *,
    accounts: Sequence[AccountConfig],
    dialect: Dialect = Dialect.ANTHROPIC,
    buffered: bool = False,
) -> ModelCall:
    setup = CallSetup(
        accounts=tuple(accounts),
        pool=PoolSettings(),
        conversion=ConversionConfig(),
        ping_interval=15.0,
        buffered=buffered,
    )
    counter = iter(range(10_000))
    ids = CallIds(
        continuation_id="c0ffee00-0000-4000-8000-000000000000",
        response_hex="a" * 32,
        created=1_750_000_000,
        new_id=lambda: f"0123abcd-0000-4000-8000-{next(counter):012d}",
        random=lambda: 0.5,
    )
    return ModelCall(dialect=dialect, body=json.dumps(body).encode(), session_id=None, setup=setup, ids=ids)


@dataclass
class Run:
    """What the runtime saw: the sends, persists, retries, client outputs and the answer."""

    sends: list[SendUpstream] = field(default_factory=list)
    persists: list[Persist] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    outputs: list[ClientOutput] = field(default_factory=list)
    answer: Answer | None = None

    @property
    def sent(self) -> list[str]:
        """The account ids sent to, in order."""
        return [s.account.account_id for s in self.sends]

    @property
    def body(self) -> bytes:
        return b"".join(o.data for o in self.outputs)

    def error(self) -> dict[str, Any]:
        assert self.answer is not None
        return dict(json.loads(self.answer.reply.body)["error"])

    def counters(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for p in self.persists:
            for name, amount in p.counters:
                total[name] = total.get(name, 0.0) + amount
        return total


def drive(
    call: ModelCall,
    upstream: list[Scripted],
    *,
    ticks: tuple[float, ...] = (),
    mid_stream: Callable[[ModelCall], object] | None = None,
    chunk: int = 50,
    broken_prefix: bytes = b"",
    step: float = 0.0,
) -> Run:
    """Run ``call`` to ``Done``; each send takes the next scripted answer. The wall clock moves
    ``step`` seconds per decision (0: a cooldown never ends during the call)."""
    run = Run()
    now = T0
    pending: Scripted = (200, b"")
    while True:
        decision = call.next_decision(now)
        if isinstance(decision, LoadState):
            call.state_loaded({a: FRESH for a in decision.account_ids}, now)
        elif isinstance(decision, SendUpstream):
            run.sends.append(decision)
            pending = upstream.pop(0)
            if isinstance(pending, str) or pending[0] == 200:
                call.upstream_started(now, 0.0)
            else:
                call.upstream_answered(pending[0], pending[1], now)
        elif isinstance(decision, StartStream):
            _stream(call, run, pending, ticks, mid_stream, chunk, broken_prefix)
        elif isinstance(decision, Persist):
            run.persists.append(decision)
        elif isinstance(decision, Retry):
            run.retries.append(decision)
        elif isinstance(decision, Answer):
            assert run.answer is None, "one answer per call"
            run.answer = decision
        elif isinstance(decision, ClientOutput):  # the end of a stream, between upstream calls
            run.outputs.append(decision)
        elif isinstance(decision, Done):
            return run
        else:  # pragma: no cover - the pool asks nothing else of fresh accounts
            raise AssertionError(decision)
        now += step


def _stream(
    call: ModelCall,
    run: Run,
    pending: Scripted,
    ticks: tuple[float, ...],
    mid_stream: Callable[[ModelCall], object] | None,
    chunk: int,
    broken_prefix: bytes,
) -> None:
    def collect() -> None:
        while (out := call.take_output()) is not None:
            run.outputs.append(out)

    for tick in ticks:
        call.tick(tick)
        collect()
    if isinstance(pending, str):
        call.receive_data(broken_prefix, 1.0)
        call.connection_lost(pending, 1.0)
        collect()
        return
    body = pending[1]
    for i in range(0, len(body), chunk):
        call.receive_data(body[i : i + chunk], 1.0)
        if mid_stream is not None:
            mid_stream(call)
        collect()
        if not call.reading:  # as the runtime: an answer that ended is read no further
            break
    if call.reading:
        call.receive_data(b"", 2.0)
    collect()
