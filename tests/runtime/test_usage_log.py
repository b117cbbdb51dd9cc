"""Usage records: queued by the request for free, written in batches by the writer task off the
request path (a worker thread), kept when the store fails, pruned past retention; and what
``Telemetry`` records for which request."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from adapters.runtime.telemetry import Telemetry
from adapters.runtime.usage_log import UsageLog
from kiro_protocol import Dialect, Endpoint, Route, UsageRecord

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowStore(SQLiteStore):
    """SQLite whose usage writes take 50 ms and remember their thread and size."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls: list[tuple[int, int]] = []
        self.fail = False

    def add_usage(self, records: Sequence[UsageRecord]) -> None:
        time.sleep(0.05)
        if self.fail:
            raise OSError("disk full")
        self.calls.append((threading.get_ident(), len(records)))
        super().add_usage(records)


@dataclass
class Call:
    """What the endpoint learnt (``app.RequestLog``'s fields)."""

    model: str | None = "claude-sonnet-4-5"
    model_id: str | None = "claude-sonnet-4.5"
    account: str | None = "acct-1"
    input_tokens: int | None = 12
    output_tokens: int | None = 34
    credits: float = 0.125
    error: str | None = None
    stream: bool | None = True
    recoveries: int = 0
    upstream: list[tuple[str, str]] = field(default_factory=lambda: [("acct-1", "200")])


MESSAGES = Route(endpoint=Endpoint.MESSAGES, path="/v1/messages", requires_auth=True, dialect=Dialect.ANTHROPIC)
MODELS = Route(endpoint=Endpoint.MODELS, path="/v1/models", requires_auth=True, dialect=Dialect.ANTHROPIC)


def finish(telemetry: Telemetry, *, route: Route | None = MESSAGES, key: str | None = "alice", status: int = 200,
           call: Call | None = None, path: str = "/v1/messages", method: str = "POST", n: int = 0) -> None:
    telemetry.request_finished(method=method, path=path, route=route, key=key, request_id=f"req_{n}", status=status,
                               ttfb=0.2, duration=1.5, call=call or Call())


async def test_requests_only_queue_and_the_writer_stores_in_batches_off_the_request_path(tmp_path: Path) -> None:
    store = SlowStore(str(tmp_path / "state.db"))
    usage = UsageLog(store, retention_days=30, clock=lambda: 1_000_000.0)
    telemetry = Telemetry(usage=usage, clock=lambda: 1_000_000.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(telemetry.run_usage_writer, 0.2)
        t0 = time.monotonic()
        for n in range(100):
            finish(telemetry, n=n)
        # 100 finished requests cost no store time at all (one write takes 50 ms).
        assert time.monotonic() - t0 < 0.05
        assert store.usage() == [] and usage.pending == 100
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()
    assert len(store.usage()) == 100
    assert [size for _, size in store.calls] == [100]  # one call for all of them
    assert threading.get_ident() not in {thread for thread, _ in store.calls}  # in a worker thread
    store.close()


async def test_a_failed_write_keeps_its_records_for_the_next_round(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SlowStore(str(tmp_path / "state.db"))
    usage = UsageLog(store, retention_days=30, max_pending=5, clock=lambda: 1_000_000.0)
    telemetry = Telemetry(usage=usage, clock=lambda: 1_000_000.0)
    store.fail = True
    for n in range(3):
        finish(telemetry, n=n)
    assert usage.write_pending() == 0
    assert "cannot write 3 records to the state store (OSError); retrying" in caplog.text
    for n in range(3, 7):
        finish(telemetry, n=n)  # 7 queued, bound 5: the two oldest go
    store.fail = False
    assert usage.write_pending() == 5
    assert "2 records were dropped" in caplog.text
    assert sorted(r.request_id for r in store.usage()) == [f"req_{n}" for n in range(2, 7)]
    store.close()


def test_records_past_retention_are_pruned_hourly() -> None:
    now = [100 * 86400.0]
    store = MemoryStore()
    ages = {"d40": 40 * 86400, "d31": 31 * 86400, "almost30": 30 * 86400 - 600, "d1": 86400}
    store.add_usage([UsageRecord(time=now[0] - age, request_id=name, key="k", account=None, model=None,
                                 dialect="anthropic", stream=False, status=200) for name, age in ages.items()])
    usage = UsageLog(store, retention_days=30, clock=lambda: now[0])
    usage.write_pending()  # nothing queued: the prune runs all the same
    assert [r.request_id for r in store.usage()] == ["d1", "almost30"]
    now[0] += 1800  # almost30 is now past retention, but the next prune is an hour after the last
    usage.write_pending()
    assert [r.request_id for r in store.usage()] == ["d1", "almost30"]
    now[0] += 1800
    usage.write_pending()
    assert [r.request_id for r in store.usage()] == ["d1"]


def test_a_model_request_is_recorded_whole() -> None:
    usage = UsageLog(MemoryStore(), retention_days=30, clock=lambda: 1000.0)
    telemetry = Telemetry(usage=usage, clock=lambda: 1000.0)
    finish(telemetry, call=Call(error="stream_interrupted", recoveries=1, upstream=[("acct-2", "429"), ("acct-1", "200")]))
    usage.write_pending()
    (record,) = usage.store.usage()
    assert record == UsageRecord(
        time=998.5, request_id="req_0", key="alice", account="acct-1", model="claude-sonnet-4-5", dialect="anthropic",
        stream=True, status=200, error="stream_interrupted", input_tokens=12, output_tokens=34, credits=0.125,
        ttfb=0.2, duration=1.5,
    )


def test_other_requests_are_counted_but_not_recorded() -> None:
    usage = UsageLog(MemoryStore(), retention_days=30, clock=lambda: 1000.0)
    telemetry = Telemetry(usage=usage)
    finish(telemetry, route=MODELS, path="/v1/models", method="GET", call=Call(model=None, model_id=None))
    finish(telemetry, route=None, key=None, status=401, call=Call(model=None, model_id=None, input_tokens=None))
    finish(telemetry, route=None, key=None, status=404, path="/wp-login.php", call=Call(model=None, model_id=None))
    assert usage.pending == 0
    samples = {
        (s.labels["endpoint"], s.labels["status"], s.labels["key"]): s.value
        for family in text_string_to_metric_families(telemetry.metrics.render_now().decode())
        if family.name == "kiro2api_requests"
        for s in family.samples
        if s.name == "kiro2api_requests_total"
    }
    # A refused request names its endpoint; a path the gateway does not serve is never a label.
    assert samples == {("models", "200", "alice"): 1.0, ("messages", "401", "none"): 1.0, ("other", "404", "none"): 1.0}


def test_metrics_of_model_requests() -> None:
    telemetry = Telemetry()
    finish(telemetry, call=Call(recoveries=2, upstream=[("acct-2", "429"), ("acct-1", "200")]))
    finish(telemetry, key="bob", call=Call(error="stream_interrupted", credits=0.0, upstream=[("acct-1", "error")]))
    finish(telemetry, key="bob", status=400, call=Call(error="invalid_request_error", stream=False, input_tokens=0,
                                                        output_tokens=0, credits=0.0, upstream=[]))
    text = telemetry.metrics.render_now().decode()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("kiro2api_tokens_total", (("direction", "input"), ("key", "alice"), ("model", "claude-sonnet-4.5")))] == 12
    assert values[("kiro2api_tokens_total", (("direction", "output"), ("key", "bob"), ("model", "claude-sonnet-4.5")))] == 34
    assert values[("kiro2api_credits_total", (("key", "alice"), ("model", "claude-sonnet-4.5")))] == 0.125
    assert values[("kiro2api_upstream_calls_total", (("account", "acct-1"), ("outcome", "200")))] == 1
    assert values[("kiro2api_upstream_calls_total", (("account", "acct-2"), ("outcome", "429")))] == 1
    assert values[("kiro2api_upstream_calls_total", (("account", "acct-1"), ("outcome", "error")))] == 1
    assert values[("kiro2api_recovered_streams_total", ())] == 2
    # Only the stream that had started (200) and then broke is a failed stream; the 400 is not.
    assert values[("kiro2api_failed_streams_total", (("error", "stream_interrupted"),))] == 1
    assert values[("kiro2api_request_duration_seconds_count", (("endpoint", "messages"),))] == 3
    assert values[("kiro2api_time_to_first_byte_seconds_bucket", (("endpoint", "messages"), ("le", "0.25")))] == 3
    assert values[("kiro2api_requests_total", (("endpoint", "messages"), ("key", "bob"), ("model", "claude-sonnet-4.5"),
                                               ("status", "400")))] == 1
    assert values[("kiro2api_open_streams", ())] == 0
