"""Prometheus metrics, one `CollectorRegistry` per app (no process-global collectors, so two
apps in one process, as in the tests, never share counts), and the ASGI middleware that
counts and times every request the fast path (fast_path.py) does not answer itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ENDPOINTS", "Metrics", "MetricsMiddleware"]

ENDPOINTS = frozenset(
    {
        "/get-online-features",
        "/push",
        "/write-to-online-store",
        "/materialize",
        "/materialize-incremental",
        "/health",
        "/metrics",
        "/openapi.json",
    }
)

_MAX_CHILDREN = 1024

# Sub-millisecond buckets: the read path's targets are p50 0.6 ms and p99 1.5 ms.
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class Metrics:
    """The server's collectors; `registry_age` reads the age from a callback at scrape time."""

    def __init__(self, registry_age: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "repast_requests", "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "repast_request_duration_seconds", "Time from request start to response end",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "repast_requests_in_flight", "Requests being handled now", registry=r
        )
        # Read at scrape time: a plain int costs ~0.1 us a request where the gauge's locked
        # inc() and dec() cost ~1.2. Only the event loop changes it.
        self.requests_in_flight = 0
        self.in_flight.set_function(lambda: self.requests_in_flight)
        self.online_read = Histogram(
            "repast_online_read_seconds",
            "get-online-features: key building, the online store round trip and decoding",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.online_entities = Counter(
            "repast_online_entities", "Entity rows read by get-online-features", registry=r
        )
        self.push_rows = Counter(
            "repast_push_rows", "Rows received by /push and /write-to-online-store",
            ["endpoint"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "repast_errors", "Error answers by endpoint and error kind",
            ["endpoint", "error"], registry=r,
        )  # fmt: skip
        self.materialize_jobs = Counter(
            "repast_materialize_jobs",
            "Finished materialization jobs (sync and async) by endpoint and outcome "
            "(success, error, cancelled)",
            ["endpoint", "outcome"], registry=r,
        )  # fmt: skip
        self.materialize_running = Gauge(
            "repast_materialize_jobs_running", "Materialization jobs running now", registry=r
        )
        self.registry_age = Gauge(
            "repast_registry_age_seconds",
            "Seconds since the served registry snapshot was read from its store",
            registry=r,
        )
        if registry_age is not None:
            self.registry_age.set_function(registry_age)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """One answered request: its latency and its count by method and status."""
        latency, requests = self._children_of(endpoint, method, status)
        latency.observe(seconds)
        requests.inc()

    def _children_of(self, endpoint: str, method: str, status: int) -> tuple[Any, Any]:
        """The labelled collectors of one (endpoint, method, status); `labels()` costs ~5 us a
        request. Methods come from clients, so the cache stops growing at a bound."""
        key = (endpoint, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.latency.labels(endpoint),
                self.requests.labels(endpoint, method, str(status)),
            )
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = children
        return children

    def count_error(self, endpoint: str, kind: str) -> None:
        self.errors.labels(endpoint=endpoint, error=kind).inc()

    @staticmethod
    def endpoint(path: str) -> str:
        # Unknown paths share one label so a scanner cannot grow the label set without bound.
        return path if path in ENDPOINTS else "other"


class MetricsMiddleware:
    """Counts and times every HTTP request (status from the response start message)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        endpoint = metrics.endpoint(scope["path"])
        status = 500
        start = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.requests_in_flight += 1
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            metrics.requests_in_flight -= 1
            metrics.record(endpoint, scope["method"], status, time.perf_counter() - start)
