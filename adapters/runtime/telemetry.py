"""What the gateway tells about its requests: a usage record per model request (kept in the
state store) and the Prometheus metrics of ``GET /metrics``.

``App`` reports every finished request here (``request_finished``): a few counter increments
and, for a model request, a record appended to the ``UsageLog``; nothing here waits for the
store on a request's path. ``run_usage_writer`` (a background task of the service) writes the
records in batches; ``metrics_body`` renders the metrics when ``/metrics`` is scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.to_thread

from kiro_protocol import clip_label, endpoint_label, MODEL_ENDPOINTS, Route, UsageRecord

from .metrics import Gauges, Metrics
from .pool_driver import PoolDriver
from .usage_log import UsageLog

__all__ = ["Telemetry", "FinishedCall"]

log = logging.getLogger("kiro2api.usage")

#: How often queued usage records are written.
FLUSH_INTERVAL = 1.0


class FinishedCall(Protocol):
    """What an endpoint learnt about a request (``app.RequestLog``)."""

    model: str | None
    model_id: str | None
    account: str | None
    input_tokens: int | None
    output_tokens: int | None
    credits: float
    error: str | None
    stream: bool | None
    recoveries: int
    upstream: list[tuple[str, str]]


class Telemetry:
    """The usage log and the metrics of one gateway.

    Args:
        usage: where usage records go (None: not recorded, e.g. no accounts are configured).
        driver: the account pool, for the gauges (None: no pool).
        clock: wall-clock seconds (a record's time).
    """

    def __init__(
        self,
        *,
        usage: UsageLog | None = None,
        driver: PoolDriver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = Metrics()
        self.usage = usage
        self._driver = driver
        self._clock = clock

    def request_finished(
        self,
        *,
        method: str,
        path: str,
        route: Route | None,
        key: str | None,
        request_id: str,
        status: int,
        ttfb: float | None,
        duration: float,
        call: FinishedCall,
    ) -> None:
        """Count a finished request; for a model request, queue its usage record too.

        ``route`` is None when the front door answered by itself (no endpoint ran).
        """
        endpoint = route.endpoint.value if route is not None else endpoint_label(method, path)
        metrics = self.metrics
        metrics.request(endpoint=endpoint, status=status, model=call.model_id, key=key)
        if route is None or route.endpoint not in MODEL_ENDPOINTS:
            return
        failed_stream = call.error if call.stream and status == 200 and call.error is not None else None
        metrics.model_answer(
            endpoint=endpoint,
            model=call.model_id,
            key=key,
            input_tokens=call.input_tokens or 0,
            output_tokens=call.output_tokens or 0,
            credits=call.credits,
            ttfb=ttfb,
            duration=duration,
            upstream=tuple(call.upstream),
            recoveries=call.recoveries,
            failed_stream=failed_stream,
        )
        if self.usage is not None:
            self.usage.add(
                UsageRecord(
                    time=self._clock() - duration,
                    request_id=request_id,
                    key=key,
                    account=call.account,
                    model=clip_label(call.model),
                    dialect=route.dialect.value,
                    stream=bool(call.stream),
                    status=status,
                    error=call.error,
                    input_tokens=call.input_tokens or 0,
                    output_tokens=call.output_tokens or 0,
                    credits=call.credits,
                    ttfb=ttfb,
                    duration=duration,
                )
            )

    async def metrics_body(self, *, active_requests: int) -> bytes:
        """The Prometheus exposition text now."""
        driver = self._driver
        accounts: dict[str, int] = {}
        open_streams = waiting = 0
        if driver is not None:
            try:
                counts = await driver.account_counts()
            except Exception as exc:
                # The store is unreachable: the counters still answer; the account gauges are left out.
                log.warning("metrics: cannot read the state store: %s", type(exc).__name__)
            else:
                accounts = {k: v for k, v in counts.items() if k != "configured"}
            open_streams, waiting = driver.open_calls, driver.waiting
        gauges = Gauges(
            accounts=accounts, open_streams=open_streams, waiting_for_account=waiting, active_requests=active_requests
        )
        return self.metrics.render(gauges)

    async def run_usage_writer(self, interval: float = FLUSH_INTERVAL) -> None:
        """Forever: every ``interval`` seconds, write the queued usage records (off every
        request's path: in a worker thread for SQLite and Redis)."""
        usage = self.usage
        if usage is None:
            return
        while True:
            await anyio.sleep(interval)
            await anyio.to_thread.run_sync(usage.write_pending)

    def flush_usage(self) -> None:
        """Write what is queued now (at shutdown, after the writer stopped)."""
        if self.usage is not None:
            self.usage.write_pending()
