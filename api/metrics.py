"""Prometheus metrics: HTTP requests by method and status, the SLA ticker's counters and the outbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from api.guard import ASGIApp, Message, Receive, Scope, Send
from outbox.status import outbox_status
from runtime.engine import Engine
from runtime.ticker import Ticker


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "disputes_http_requests", "HTTP requests served", ["method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "disputes_http_request_seconds",
            "Time to answer an HTTP request",
            ["method"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )


class TickerCollector(Collector):
    """Reads the ticker's counters at scrape time (the ticker may start after the app)."""

    def __init__(self, ticker: Callable[[], Ticker | None]) -> None:
        self.ticker = ticker

    def collect(self) -> Iterator[Any]:
        ticker = self.ticker()
        if ticker is None:
            return
        stats = ticker.stats()
        yield CounterMetricFamily("disputes_ticker_sweeps", "SLA sweeps run", value=stats.sweeps)
        yield CounterMetricFamily("disputes_ticker_fired", "Timer effects applied", value=stats.fired)
        yield CounterMetricFamily("disputes_ticker_failures", "Sweeps that raised", value=stats.failures)
        yield GaugeMetricFamily("disputes_ticker_running", "1 while the ticker runs", value=int(stats.running))


class OutboxCollector(Collector):
    """The outbox read from the database at scrape time, so every process (API, worker) reports
    the same figures whichever of them dispatches: depth, oldest undelivered, attempts and
    failures per endpoint."""

    def __init__(self, engine: Callable[[], Engine | None]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        engine = self.engine()
        if engine is None:
            return
        try:
            status = outbox_status(engine.db, engine.clock.now())
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is away
            return
        yield GaugeMetricFamily("disputes_outbox_depth", "Notifications not yet delivered", value=status.depth)
        yield GaugeMetricFamily(
            "disputes_outbox_oldest_undelivered_seconds",
            "Age of the oldest notification not yet delivered",
            value=status.oldest_undelivered_seconds,
        )
        yield GaugeMetricFamily("disputes_outbox_failed", "Deliveries failed after the last retry", value=status.failed)
        attempts = CounterMetricFamily("disputes_webhook_attempts", "Webhook delivery attempts", labels=["endpoint"])
        failures = CounterMetricFamily("disputes_webhook_failures", "Failed webhook attempts", labels=["endpoint"])
        enabled = GaugeMetricFamily("disputes_webhook_endpoint_enabled", "1 while enabled", labels=["endpoint"])
        for endpoint in status.endpoints:
            attempts.add_metric([endpoint.endpoint_id], endpoint.attempts)
            failures.add_metric([endpoint.endpoint_id], endpoint.failures)
            enabled.add_metric([endpoint.endpoint_id], int(endpoint.enabled))
        yield attempts
        yield failures
        yield enabled


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, str(status["code"])).inc()
            self.metrics.latency.labels(method).observe(time.perf_counter() - started)
