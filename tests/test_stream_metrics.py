"""StreamMetrics: counters and the array-at-a-time freshness histogram in Prometheus text."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from repast.stream import FreshnessHistogram, StreamMetrics


def test_freshness_buckets_whole_arrays() -> None:
    histogram = FreshnessHistogram(buckets=[0.01, 0.1, 1.0])
    histogram.observe("v", np.array([0.005, 0.01, 0.05, 0.5, 2.0]))
    histogram.observe("v", np.array([0.001]))
    histogram.observe("v", np.array([]))
    # A value equal to a bound counts in that bucket (Prometheus `le`).
    assert histogram.counts("v").tolist() == [3, 1, 1, 1]
    assert histogram.counts("other").tolist() == [0, 0, 0, 0]


def test_exposition_is_prometheus_text() -> None:
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    metrics.consumed.labels("v").inc(5)
    metrics.dead_lettered.labels("v", "not_json").inc()
    metrics.lag.labels("v", "t", "0").set(7)
    metrics.freshness.observe("v", np.array([0.002, 0.02, 20.0]))
    text = generate_latest(registry).decode()
    assert 'repast_stream_messages_consumed_total{view="v"} 5.0' in text
    assert 'repast_stream_messages_dead_lettered_total{reason="not_json",view="v"} 1.0' in text
    assert 'repast_stream_consumer_lag{partition="0",topic="t",view="v"} 7.0' in text
    assert 'repast_stream_freshness_seconds_bucket{le="0.005",view="v"} 1.0' in text
    assert 'repast_stream_freshness_seconds_bucket{le="+Inf",view="v"} 3.0' in text
    assert 'repast_stream_freshness_seconds_count{view="v"} 3.0' in text
    assert registry.get_sample_value("repast_stream_freshness_seconds_sum", {"view": "v"}) == (
        0.002 + 0.02 + 20.0
    )


def test_two_metric_sets_live_in_separate_registries() -> None:
    a, b = StreamMetrics(CollectorRegistry()), StreamMetrics(CollectorRegistry())
    a.written.labels("v").inc(3)
    assert b.registry.get_sample_value("repast_stream_rows_written_total", {"view": "v"}) is None
