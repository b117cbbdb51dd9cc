"""The gateway's Prometheus metrics (``GET /metrics``), through prometheus-client.

One registry per gateway (not the library's global one), so several gateways in one process
(tests, an embedding host) keep their own numbers. Every label is bounded: endpoints, statuses,
Kiro model ids, key names, account labels and error classes, never a raw value a client chose.

Counters and histograms are updated when a request ends; the gauges (accounts by state, open
streams, requests waiting) are read only when ``/metrics`` is scraped, so they cost the request
path nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, exposition, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Metrics", "Gauges", "METRICS_CONTENT_TYPE"]

#: The text format generate_latest writes (0.0.4, which every Prometheus reads).
METRICS_CONTENT_TYPE: str = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)

# Model answers take from a few hundred milliseconds to many minutes.
_TTFB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))
_DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, float("inf"))
_NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class Gauges:
    """The values of the gauges at one scrape."""

    #: Accounts per state (``usable``, ``unavailable``, ``disabled``), of this gateway's pool.
    accounts: Mapping[str, int] = field(default_factory=dict)
    #: Upstream calls to Kiro open now (their answers streaming in), in this process.
    open_streams: int = 0
    #: Requests waiting in line for an account, in this process.
    waiting_for_account: int = 0
    #: Model requests being served now, in this process.
    active_requests: int = 0


class _GaugeCollector(Collector):
    def __init__(self) -> None:
        self.values = Gauges()

    def collect(self) -> Iterator[Metric]:
        values = self.values
        accounts = GaugeMetricFamily("kiro2api_accounts", "Kiro accounts by state.", labels=["state"])
        for state, count in sorted(values.accounts.items()):
            accounts.add_metric([state], count)
        yield accounts
        yield GaugeMetricFamily("kiro2api_open_streams", "Upstream calls to Kiro open now.", value=values.open_streams)
        yield GaugeMetricFamily(
            "kiro2api_requests_waiting_for_account", "Requests waiting in line for an account.",
            value=values.waiting_for_account,
        )
        yield GaugeMetricFamily("kiro2api_active_requests", "Model requests being served now.", value=values.active_requests)


class Metrics:
    """The counters, histograms and gauges of one gateway."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "kiro2api_requests", "Requests answered, by endpoint, status, Kiro model and client key.",
            ["endpoint", "status", "model", "key"], registry=registry,
        )
        self.upstream_calls = Counter(
            "kiro2api_upstream_calls", "Calls to Kiro's model endpoint, by account and outcome (the HTTP status, "
            "or error when no answer came).", ["account", "outcome"], registry=registry,
        )
        self.tokens = Counter(
            "kiro2api_tokens", "Tokens of model answers, by direction (input, output), Kiro model and client key.",
            ["direction", "model", "key"], registry=registry,
        )
        self.credits = Counter(
            "kiro2api_credits", "Kiro credits metered, by Kiro model and client key.", ["model", "key"], registry=registry,
        )
        self.recovered = Counter(
            "kiro2api_recovered_streams", "Answers whose cut-off tool call was asked again and went on.", registry=registry,
        )
        self.failed_streams = Counter(
            "kiro2api_failed_streams", "Answers that had started and then ended with an error, by error class.",
            ["error"], registry=registry,
        )
        self.ttfb = Histogram(
            "kiro2api_time_to_first_byte_seconds", "Time from the request head to the first byte of a model answer.",
            ["endpoint"], buckets=_TTFB_BUCKETS, registry=registry,
        )
        self.duration = Histogram(
            "kiro2api_request_duration_seconds", "Time from the request head to the last byte of a model answer.",
            ["endpoint"], buckets=_DURATION_BUCKETS, registry=registry,
        )
        # Labelled children by (metric, label values): prometheus-client's own lookup validates
        # and locks each time; this dict hit costs a tenth of it on every request.
        self._children: dict[tuple[object, ...], Any] = {}
        self._gauges = _GaugeCollector()
        registry.register(self._gauges)
        # Scrapes may overlap (threads under WSGI): the gauge values and the rendering go together.
        self._render_lock = threading.Lock()

    def _child(self, metric: Any, *labels: str) -> Any:
        found = self._children.get((metric, *labels))
        if found is None:
            found = self._children[(metric, *labels)] = metric.labels(*labels)
        return found

    def request(self, *, endpoint: str, status: int, model: str | None, key: str | None) -> None:
        """Count one answered request (any endpoint)."""
        self._child(self.requests, endpoint, str(status), model or _NONE, key or _NONE).inc()

    def model_answer(
        self,
        *,
        endpoint: str,
        model: str | None,
        key: str | None,
        input_tokens: int,
        output_tokens: int,
        credits: float,
        ttfb: float | None,
        duration: float,
        upstream: tuple[tuple[str, str], ...],
        recoveries: int,
        failed_stream: str | None,
    ) -> None:
        """Count what one model request used (``upstream``: (account, outcome) per call)."""
        model, key = model or _NONE, key or _NONE
        child = self._child
        if input_tokens:
            child(self.tokens, "input", model, key).inc(input_tokens)
        if output_tokens:
            child(self.tokens, "output", model, key).inc(output_tokens)
        if credits:
            child(self.credits, model, key).inc(credits)
        if ttfb is not None:
            child(self.ttfb, endpoint).observe(ttfb)
        child(self.duration, endpoint).observe(duration)
        for account, outcome in upstream:
            child(self.upstream_calls, account, outcome).inc()
        if recoveries:
            self.recovered.inc(recoveries)
        if failed_stream is not None:
            child(self.failed_streams, failed_stream).inc()

    def render_now(self) -> bytes:
        """The exposition text with the gauges as they were last rendered (tests)."""
        with self._render_lock:
            return generate_latest(self.registry)

    def render(self, gauges: Gauges) -> bytes:
        """The exposition text, with ``gauges`` as the gauges' values."""
        with self._render_lock:
            self._gauges.values = gauges
            return generate_latest(self.registry)
