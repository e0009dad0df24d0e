"""Stream ingestion: Kafka topics (KafkaSource) into the online and offline stores.

`repast stream` runs `StreamRunner`: one aiokafka consumer group per Kafka-fed view, offsets
committed only after the rows are written, bad messages to a dead-letter topic. Needs the
`kafka` extra (aiokafka, prometheus-client).
"""

from __future__ import annotations

from repast.stream.consumer import Backoff, BatchResult, StreamConsumer, write_online
from repast.stream.dead_letter import DEFAULT_TOPIC_TEMPLATE, DeadLetterQueue, Rejection
from repast.stream.decode import Decoded, MessageDecoder, parse_timestamps
from repast.stream.metrics import FreshnessHistogram, StreamMetrics, serve_metrics
from repast.stream.runner import StreamRunner, run_streams, stream_views

__all__ = [
    "DEFAULT_TOPIC_TEMPLATE",
    "Backoff",
    "BatchResult",
    "DeadLetterQueue",
    "Decoded",
    "FreshnessHistogram",
    "MessageDecoder",
    "Rejection",
    "StreamConsumer",
    "StreamMetrics",
    "StreamRunner",
    "parse_timestamps",
    "run_streams",
    "serve_metrics",
    "stream_views",
    "write_online",
]
