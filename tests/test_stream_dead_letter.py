"""Bad messages go to the dead-letter topic with the error and their original bytes and
headers; the consumer goes on and commits past them. Real Kafka and Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from repast import FeatureStore
from repast.stream import DeadLetterQueue, Rejection, StreamConsumer, StreamMetrics
from services import RedisServer
from stream_helpers import (
    FAST_BACKOFF,
    VIEW,
    committed,
    consume_all,
    eventually,
    fresh_metrics,
    produce,
    read_online,
    stream_store,
    unique,
)

T0 = 1_704_067_200

GOOD: list[dict[str, Any]] = [
    {"driver_id": 1, "event_timestamp": T0, "conv_rate": 0.5, "trips": 10},
    {"driver_id": 2, "event_timestamp": "2024-01-01T00:00:01+00:00", "trips": 20},
]
# (value, reason, a fragment of the error)
BAD: list[tuple[bytes, str, str]] = [
    (b"{not json", "not_json", "not JSON"),
    (b'["a", "list"]', "not_json", "not a JSON object"),
    (orjson.dumps({"event_timestamp": T0, "trips": 1}), "missing_join_key", "driver_id"),
    (orjson.dumps({"driver_id": None, "event_timestamp": T0}), "missing_join_key", "driver_id"),
    (orjson.dumps({"driver_id": "seven", "event_timestamp": T0}), "wrong_type", "driver_id"),
    (orjson.dumps({"driver_id": 3.5, "event_timestamp": T0}), "wrong_type", "3.5"),
    (orjson.dumps({"driver_id": 4, "event_timestamp": T0, "trips": "many"}), "wrong_type", "trips"),
    (orjson.dumps({"driver_id": 5, "trips": 1}), "bad_timestamp", "event_timestamp"),
    (orjson.dumps({"driver_id": 6, "event_timestamp": "noon"}), "bad_timestamp", "noon"),
    (orjson.dumps({"driver_id": 7, "event_timestamp": True}), "bad_timestamp", "true"),
]


async def _run_until_committed(
    store: FeatureStore,
    bootstrap: str,
    topic: str,
    group: str,
    metrics: StreamMetrics,
    offset: int,
    template: str = "{topic}.dlq",
) -> None:
    view = store.get_stream_feature_view(VIEW)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    consumer = StreamConsumer(
        store.context,
        view,
        group_id=group,
        dead_letters=DeadLetterQueue(producer, template),
        metrics=metrics,
        from_beginning=True,
        backoff=FAST_BACKOFF,
    )
    stop = asyncio.Event()
    try:
        assert await consumer.start(stop)
        task = asyncio.create_task(consumer.run(stop))

        async def done() -> bool:
            return await committed(bootstrap, group, topic) == offset

        await eventually(done, "all offsets committed")
        stop.set()
        await task
    finally:
        await consumer.close()
        await producer.stop()


def test_each_kind_of_bad_message_is_dead_lettered(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str
) -> None:
    topic = unique("drivers")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    metrics = fresh_metrics()
    values: list[dict[str, Any] | bytes] = [GOOD[0], *[b for b, _, _ in BAD], GOOD[1]]

    async def main() -> list[Any]:
        await produce(kafka_broker, topic, values, headers=[("trace", b"abc")])
        await _run_until_committed(store, kafka_broker, topic, group, metrics, len(values))
        return await consume_all(kafka_broker, f"{topic}.dlq", len(BAD))

    dead = asyncio.run(main())
    # The good messages around the bad ones were stored.
    assert read_online(store, [1, 2])["trips"] == [10, 20]
    assert [r.value for r in dead] == [b for b, _, _ in BAD]
    for record, (_, reason, fragment) in zip(dead, BAD, strict=True):
        headers = dict(record.headers)
        assert headers["trace"] == b"abc"  # the original headers are kept
        assert headers["repast.reason"] == reason.encode()
        assert fragment in headers["repast.error"].decode(), headers["repast.error"]
        assert headers["repast.view"] == VIEW.encode()
        assert headers["repast.topic"] == topic.encode()
        assert headers["repast.partition"] == b"0"
    offsets = [int(dict(r.headers)["repast.offset"]) for r in dead]
    assert offsets == list(range(1, len(BAD) + 1))
    for reason in {r for _, r, _ in BAD}:
        expected = sum(1 for _, r, _ in BAD if r == reason)
        sample = metrics.registry.get_sample_value(
            "repast_stream_messages_dead_lettered_total", {"view": VIEW, "reason": reason}
        )
        assert sample == expected
    store.online_store.close()


def test_dead_letter_topic_is_configurable(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str
) -> None:
    topic = unique("drivers")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)

    async def main() -> list[Any]:
        await produce(kafka_broker, topic, [b"oops"])
        await _run_until_committed(
            store, kafka_broker, topic, unique("g"), fresh_metrics(), 1, "errors.{topic}"
        )
        return await consume_all(kafka_broker, f"errors.{topic}", 1)

    [record] = asyncio.run(main())
    assert record.value == b"oops"
    store.online_store.close()


def test_template_must_name_the_topic() -> None:
    with pytest.raises(ValueError, match=r"must contain '\{topic\}'"):
        DeadLetterQueue(None, "all-errors")


def test_headers_name_the_origin() -> None:
    record = SimpleNamespace(
        topic="t", partition=2, offset=41, timestamp=1700, headers=[("h", b"v")]
    )
    headers = DeadLetterQueue.headers(record, "v1", Rejection("not_json", "x" * 10_000))
    assert headers[0] == ("h", b"v")
    named = dict(headers)
    assert len(named["repast.error"]) == 4096
    assert named["repast.offset"] == b"41"
    assert named["repast.partition"] == b"2"
    assert named["repast.view"] == b"v1"
