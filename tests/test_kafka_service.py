"""The test Kafka broker is a real, working Kafka: produce/consume and consumer-group semantics.

pytest-asyncio is not a dev dependency, so each test drives its coroutine with asyncio.run and
closes every client in a `finally` (pytest turns an unclosed-resource warning into an error).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

import kafka_service
from kafka_service import DEFAULT_KAFKA_VERSION, FETCH_SCRIPT

MESSAGES = 1_000
KEYS = 20
# Generous: a healthy local broker moves 1,000 small messages in well under a second.
DEADLINE_S = 60.0


def _unique(prefix: str) -> str:
    # The broker is shared by the session: unique names keep tests independent of each other.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, count: int) -> dict[int, list[int]]:
    """Send `count` JSON messages keyed over several keys; return the ids sent to each partition,
    in the order the broker appended them (by offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                key=f"user-{i % KEYS}".encode(),
                value=orjson.dumps({"id": i, "user": f"user-{i % KEYS}", "amount": i * 0.5}),
            )
            for i in range(count)
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, record in enumerate(metadata):
        by_partition[record.partition].append((record.offset, i))
    return {p: [i for _, i in sorted(pairs)] for p, pairs in by_partition.items()}


async def _consume(consumer: AIOKafkaConsumer, count: int) -> list[Any]:
    """Read exactly `count` records (never more: max_records caps each fetch)."""
    records: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while len(records) < count:
        if loop.time() > deadline:
            raise AssertionError(f"got {len(records)} of {count} messages in {DEADLINE_S}s")
        batches = await consumer.getmany(timeout_ms=1_000, max_records=count - len(records))
        for batch in batches.values():
            records.extend(batch)
    return records


def test_fetch_script_and_service_agree_on_the_kafka_version() -> None:
    # The version lives in two places (the shell script for CI's prefetch, the module for the
    # tests); if they drift, tests would silently fetch a second Kafka at run time.
    match = re.search(r'KAFKA_VERSION:-([^}"]+)', FETCH_SCRIPT.read_text())
    assert match is not None
    assert match.group(1) == DEFAULT_KAFKA_VERSION


@pytest.mark.kafka
def test_produce_consume_round_trip_keeps_order_per_partition(kafka_broker: str) -> None:
    topic = _unique("round-trip")

    async def scenario() -> None:
        await _create_topic(kafka_broker, topic, partitions=3)
        sent = await _produce(kafka_broker, topic, MESSAGES)
        # Twenty keys over three partitions: every partition gets some, so order is really
        # checked per partition and not just on one.
        assert len(sent) == 3

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker,
            group_id=_unique("round-trip-group"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            records = await _consume(consumer, MESSAGES)
        finally:
            await consumer.stop()

        received: dict[int, list[int]] = defaultdict(list)
        for record in records:
            body = orjson.loads(record.value)
            assert body == {"id": body["id"], "user": body["user"], "amount": body["id"] * 0.5}
            assert record.key == body["user"].encode()
            received[record.partition].append(body["id"])
            # Offsets in a fresh topic are dense from 0: position in the list == offset.
            assert record.offset == len(received[record.partition]) - 1
        assert received == sent
        assert sorted(i for ids in received.values() for i in ids) == list(range(MESSAGES))

    asyncio.run(scenario())


@pytest.mark.kafka
def test_group_commit_then_new_member_resumes_after_it(kafka_broker: str) -> None:
    topic = _unique("resume")
    group = _unique("resume-group")
    half = MESSAGES // 2
    tp = TopicPartition(topic, 0)

    def member() -> AIOKafkaConsumer:
        # earliest: if the commit were lost, the second member would restart at 0 and fail.
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    async def scenario() -> None:
        await _create_topic(kafka_broker, topic, partitions=1)
        await _produce(kafka_broker, topic, MESSAGES)

        first = member()
        await first.start()
        try:
            records = await _consume(first, half)
            assert [orjson.loads(r.value)["id"] for r in records] == list(range(half))
            # The committed offset is the next one to read, as a stream consumer commits it.
            await first.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "")})
            assert await first.committed(tp) == half
        finally:
            await first.stop()

        second = member()
        await second.start()
        try:
            records = await _consume(second, MESSAGES - half)
            assert records[0].offset == half
            assert [orjson.loads(r.value)["id"] for r in records] == list(range(half, MESSAGES))
        finally:
            await second.stop()

    asyncio.run(scenario())


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 as the first byte encodes to '-' in URL-safe base64: the first draw must be refused.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka_service._random_cluster_id()
    assert cluster_id == "AQEBAQEBAQEBAQEBAQEBAQ"
    assert len(cluster_id) == 22
