"""Prometheus metrics of the stream consumers.

Counters per view (consumed, written, dead-lettered by reason, write retries), consumer lag
per partition, and the freshness histogram (write time − event time). Freshness is observed
a batch at a time: the batch's values are bucketed with numpy and the counts added, so a
50 k-row batch costs one `searchsorted`, not 50 k `Histogram.observe` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["FRESHNESS_BUCKETS", "FreshnessHistogram", "StreamMetrics", "serve_metrics"]

FRESHNESS_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip


class FreshnessHistogram(Collector):
    """A labelled-by-view histogram that takes whole arrays of observations."""

    name = "repast_stream_freshness_seconds"

    def __init__(self, buckets: Iterable[float] = FRESHNESS_BUCKETS) -> None:
        self.bounds = np.array(sorted(buckets), dtype=np.float64)
        self._lock = threading.Lock()
        self._counts: dict[str, np.ndarray] = {}
        self._sums: dict[str, float] = {}

    def observe(self, view: str, seconds: np.ndarray) -> None:
        if len(seconds) == 0:
            return
        # Bucket i counts values <= bounds[i]; the last slot is +Inf.
        slots = np.searchsorted(self.bounds, seconds, side="left")
        counts = np.bincount(slots, minlength=len(self.bounds) + 1)
        total = float(seconds.sum())
        with self._lock:
            if view in self._counts:
                self._counts[view] += counts
                self._sums[view] += total
            else:
                self._counts[view] = counts.astype(np.int64)
                self._sums[view] = total

    def counts(self, view: str) -> np.ndarray:
        """Per-bucket (not cumulative) counts, the last one for +Inf."""
        with self._lock:
            return self._counts.get(view, np.zeros(len(self.bounds) + 1, np.int64)).copy()

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(
            self.name,
            "Seconds from a row's event time to its write into the online store.",
            labels=["view"],
        )
        with self._lock:
            snapshot = {v: (c.copy(), self._sums[v]) for v, c in self._counts.items()}
        labels = [*(repr(float(b)) for b in self.bounds), "+Inf"]
        for view, (counts, total) in sorted(snapshot.items()):
            cumulative = np.cumsum(counts)
            family.add_metric(
                [view], [(le, float(c)) for le, c in zip(labels, cumulative, strict=True)], total
            )
        yield family


class StreamMetrics:
    """Every metric of the stream consumers, registered in one registry (the process's
    default unless given; tests pass their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        r = self.registry
        self.consumed = Counter(
            "repast_stream_messages_consumed",
            "Kafka messages read, per feature view.",
            ["view"],
            registry=r,
        )
        self.written = Counter(
            "repast_stream_rows_written",
            "Rows the online store stored (newer than what it held), per feature view.",
            ["view"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "repast_stream_messages_dead_lettered",
            "Messages sent to the dead-letter topic, per feature view and reason.",
            ["view", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "repast_stream_batch_retries",
            "Batches whose write or commit failed and will be read again, per view and stage.",
            ["view", "stage"],
            registry=r,
        )
        self.lag = Gauge(
            "repast_stream_consumer_lag",
            "Messages in the partition after the last one written (high watermark − position).",
            ["view", "topic", "partition"],
            registry=r,
        )
        self.freshness = FreshnessHistogram()
        r.register(self.freshness)


def serve_metrics(port: int, registry: CollectorRegistry = REGISTRY, addr: str = "0.0.0.0") -> None:
    """Expose `registry` on `http://<addr>:<port>/metrics` from a daemon thread."""
    start_http_server(port, addr=addr, registry=registry)
