"""StreamConsumer against a real Kafka broker and a real Redis: produce → readable online,
offsets committed only after the write, nothing lost or overwritten by older rows when the
consumer dies mid-batch or Redis goes away, restarts resume from the committed offsets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import FeatureStore
from repast.online.base import OnlineStoreError
from repast.stream import DeadLetterQueue, StreamConsumer, StreamMetrics
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

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def event(driver: int, second: int, trips: int, **extra: Any) -> dict[str, Any]:
    return {
        "driver_id": driver,
        "event_timestamp": T0 + second,
        "conv_rate": trips / 10,
        "trips": trips,
        **extra,
    }


@asynccontextmanager
async def consuming(
    store: FeatureStore,
    group: str,
    metrics: StreamMetrics,
    *,
    from_beginning: bool = True,
    max_records: int = 1000,
) -> AsyncIterator[tuple[StreamConsumer, asyncio.Task[None]]]:
    """A started consumer of `driver_live` running in a task; stopped cleanly on exit."""
    from aiokafka import AIOKafkaProducer

    view = store.get_stream_feature_view(VIEW)
    source: Any = view.stream_source
    producer = AIOKafkaProducer(bootstrap_servers=source.kafka_bootstrap_servers)
    await producer.start()
    consumer = StreamConsumer(
        store.context,
        view,
        group_id=group,
        dead_letters=DeadLetterQueue(producer),
        metrics=metrics,
        from_beginning=from_beginning,
        max_records=max_records,
        backoff=FAST_BACKOFF,
    )
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        assert await consumer.start(stop)
        task = asyncio.create_task(consumer.run(stop))
        yield consumer, task
        stop.set()
        if not task.done():
            await task
    finally:
        stop.set()
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=30)
        await consumer.close()
        await producer.stop()


def trips(store: FeatureStore, ids: list[int]) -> list[Any]:
    return read_online(store, ids)["trips"]


def count(metrics: StreamMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.fixture
def topic() -> str:
    return unique("drivers")


def test_produced_events_are_readable_online(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    metrics = fresh_metrics()
    events = [
        event(1, 0, 10, label="a"),
        # ISO strings and epoch milliseconds are both event times.
        {**event(2, 0, 20), "event_timestamp": "2024-01-01T00:00:05Z"},
        {**event(3, 0, 30), "event_timestamp": (T0 + 7) * 1000},
        event(1, 60, 11, label="b"),  # newer: replaces driver 1's row
    ]

    async def main() -> None:
        await produce(kafka_broker, topic, events)
        async with consuming(store, group, metrics):
            await eventually(lambda: trips(store, [1, 2, 3]) == [11, 20, 30], "rows online")
            await eventually(
                lambda: count(metrics, "repast_stream_messages_consumed_total", view=VIEW) == 4,
                "consumed metric",
            )
        assert await committed(kafka_broker, group, topic) == 4

    asyncio.run(main())
    out = read_online(store, [1, 2, 3, 4])
    assert out["label"] == ["b", None, None, None]
    assert out["conv_rate"][:3] == pytest.approx([1.1, 2.0, 3.0])
    assert out["trips__ts"] == [T0 + 60, T0 + 5, T0 + 7, 0]
    assert count(metrics, "repast_stream_rows_written_total", view=VIEW) == 3
    # Freshness was observed for every decoded row; lag is zero once caught up.
    assert count(metrics, "repast_stream_freshness_seconds_count", view=VIEW) == 4
    assert count(metrics, "repast_stream_consumer_lag", view=VIEW, topic=topic, partition="0") == 0
    store.online_store.close()


def test_nested_features_are_stored_and_bad_ones_dead_lettered(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    """Map, Struct and ScalarMap features from JSON messages, read back as Feast's SDK reads
    them; a message whose nested value the store refuses goes to the dead-letter topic."""
    from repast.types import Int64, Map, ScalarMap, String, Struct

    profile = Struct({"name": String, "age": Int64})
    store = stream_store(
        tmp_path,
        redis_clean,
        kafka_broker,
        topic,
        extra={"attrs": Map, "profile": profile, "counts": ScalarMap},
    )
    uuid_text = "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"
    events = [
        event(
            1,
            0,
            10,
            attrs={"b": "x", "a": "y"},
            profile={"name": "ann", "age": 31},
            counts={"1": 5, "2.5": 6},
        ),
        event(2, 0, 20, counts=[[{"bytes": "AP8="}, 1], [{"uuid": uuid_text}, 2]]),
        event(3, 0, 30, profile={"name": "bob"}),  # a Struct missing a field: refused
    ]
    dead = f"{topic}.dlq"

    async def main() -> None:
        await produce(kafka_broker, topic, events)
        async with consuming(store, unique("g"), fresh_metrics()):
            await eventually(lambda: trips(store, [1, 2]) == [10, 20], "rows online")
        letters = await consume_all(kafka_broker, dead, 1)
        headers = dict(letters[0].headers)
        assert headers["repast.reason"] == b"wrong_type"
        assert b"feature 'profile': not a STRUCT value" in headers["repast.error"]

    asyncio.run(main())
    refs = [f"{VIEW}:attrs", f"{VIEW}:profile", f"{VIEW}:counts", f"{VIEW}:trips"]
    got = store.get_online_features(refs, {"driver_id": [1, 2, 3]}).to_dict()
    assert got["attrs"] == [{"a": "y", "b": "x"}, None, None]
    assert got["profile"] == [{"name": "ann", "age": 31}, None, None]
    assert got["counts"] == [{1: 5, 2.5: 6}, {b"\x00\xff": 1, uuid.UUID(uuid_text): 2}, None]
    assert got["trips"] == [10, 20, None]
    store.online_store.close()


def test_field_mapping_renames_message_fields(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    store = stream_store(
        tmp_path, redis_clean, kafka_broker, topic, field_mapping={"id": "driver_id", "n": "trips"}
    )

    async def main() -> None:
        await produce(
            kafka_broker, topic, [{"id": 5, "event_timestamp": T0, "n": 50, "conv_rate": 0.5}]
        )
        async with consuming(store, unique("g"), fresh_metrics()):
            await eventually(lambda: trips(store, [5]) == [50], "mapped row online")

    asyncio.run(main())
    store.online_store.close()


def test_older_events_never_overwrite_newer_ones(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    # A newer row is already stored (say, by an earlier run or a push).
    store.write_to_online_store(
        VIEW,
        pa.table(
            {
                "driver_id": [1],
                "event_timestamp": pa.array([datetime(2024, 1, 2, tzinfo=UTC)]),
                "conv_rate": pa.array([9.0], pa.float32()),
                "trips": [99],
                "label": ["stored"],
            }
        ),
    )

    async def main() -> None:
        # Within one batch the latest wins too, whatever the order of the messages.
        await produce(kafka_broker, topic, [event(1, 5, 1), event(2, 30, 3), event(2, 10, 2)])
        async with consuming(store, unique("g"), fresh_metrics()):
            await eventually(lambda: trips(store, [2]) == [3], "driver 2 online")

    asyncio.run(main())
    assert trips(store, [1, 2]) == [99, 3]
    store.online_store.close()


class Crash(Exception):
    """Stands for the process dying in the middle of a write."""


def test_offsets_are_committed_only_after_the_write(
    tmp_path: Path,
    redis_clean: RedisServer,
    kafka_broker: str,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    metrics = fresh_metrics()
    online = store.online_store
    real_write = online.write_batch
    failing = {"on": True}

    def flaky_write(view: Any, batch: Any) -> int:
        if failing["on"]:
            raise OnlineStoreError("Redis is down (simulated)")
        return real_write(view, batch)

    monkeypatch.setattr(online, "write_batch", flaky_write)

    async def main() -> None:
        await produce(kafka_broker, topic, [event(d, 0, d) for d in range(1, 51)])
        async with consuming(store, group, metrics, max_records=20):
            await eventually(
                lambda: (
                    count(metrics, "repast_stream_batch_retries_total", view=VIEW, stage="write")
                    >= 3
                ),
                "retries",
            )
            # Reads and retries, but never commits past what was not written.
            assert await committed(kafka_broker, group, topic) is None
            assert trips(store, [1, 50]) == [None, None]
            failing["on"] = False
            await eventually(lambda: trips(store, list(range(1, 51))) == list(range(1, 51)), "all")
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 50), "commit")

    asyncio.run(main())
    online.close()


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await committed(bootstrap, group, topic) == offset


def test_consumer_killed_mid_batch_loses_nothing_and_replays_harmlessly(
    tmp_path: Path,
    redis_clean: RedisServer,
    kafka_broker: str,
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    online = store.online_store
    real_write = online.write_batch
    calls = {"n": 0}

    def dies_on_second_batch(view: Any, batch: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            # Half of the batch reaches Redis, then the process dies: nothing is committed.
            real_write(view, batch.take(pa.array(range(len(batch) // 2))))
            raise Crash("killed mid-batch")
        return real_write(view, batch)

    monkeypatch.setattr(online, "write_batch", dies_on_second_batch)
    first = [event(d, 0, 1) for d in range(1, 11)]
    second = [event(d, 10, 2) for d in range(1, 11)]

    async def main() -> None:
        await produce(kafka_broker, topic, first)
        async with consuming(store, group, fresh_metrics(), max_records=10) as (_, task):
            await eventually(lambda: trips(store, [10]) == [1], "first batch")
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 10), "committed")
            await produce(kafka_broker, topic, second)
            with pytest.raises(Crash):
                await asyncio.wait_for(task, 30)
        assert await committed(kafka_broker, group, topic) == 10
        # While the consumer is down, newer rows for drivers 1-5 arrive by another path.
        monkeypatch.setattr(online, "write_batch", real_write)
        store.write_to_online_store(
            VIEW,
            pa.table(
                {
                    "driver_id": list(range(1, 6)),
                    "event_timestamp": pa.array([T0 + 20] * 5).cast(pa.timestamp("s", "UTC")),
                    "conv_rate": pa.array([0.3] * 5, pa.float32()),
                    "trips": [3] * 5,
                    "label": ["direct"] * 5,
                }
            ),
        )
        metrics = fresh_metrics()
        async with consuming(store, group, metrics, max_records=10):
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 20), "commit")
        # Resumed at offset 10: the second batch is read again, nothing before it.
        assert count(metrics, "repast_stream_messages_consumed_total", view=VIEW) == 10

    asyncio.run(main())
    # Drivers 1-5 hold the newest event (the replayed batch did not overwrite it); 6-10 the second.
    out = read_online(store, list(range(1, 11)))
    assert out["trips"] == [3] * 5 + [2] * 5
    assert out["trips__ts"] == [T0 + 20] * 5 + [T0 + 10] * 5
    online.close()


def test_redis_outage_delays_but_loses_nothing(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_clean: RedisServer,
    kafka_broker: str,
    topic: str,
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    metrics = fresh_metrics()

    async def main() -> None:
        async with consuming(store, group, metrics, max_records=50):
            await produce(kafka_broker, topic, [event(d, 0, 1) for d in range(1, 101)])
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 100), "first")
            with redis_server.stopped():
                await produce(kafka_broker, topic, [event(d, 5, 2) for d in range(1, 101)])
                await eventually(
                    lambda: (
                        count(
                            metrics, "repast_stream_batch_retries_total", view=VIEW, stage="write"
                        )
                        >= 2
                    ),
                    "retries while Redis is down",
                )
                assert await committed(kafka_broker, group, topic) == 100
            # The test Redis keeps no data across a restart: every row now comes from the
            # messages produced during the outage, which were not skipped.
            await eventually(lambda: trips(store, list(range(1, 101))) == [2] * 100, "resumed")
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 200), "commit")

    asyncio.run(main())
    store.online_store.close()


def test_restart_resumes_from_committed_offsets(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")

    async def main() -> None:
        await produce(kafka_broker, topic, [event(d, 0, 1) for d in range(1, 11)])
        async with consuming(store, group, fresh_metrics()):
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 10), "first run")
        await produce(kafka_broker, topic, [event(d, 5, 2) for d in range(11, 21)])
        metrics = fresh_metrics()
        # from_beginning only applies to a group without committed offsets.
        async with consuming(store, group, metrics, from_beginning=True):
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 20), "second run")
        assert count(metrics, "repast_stream_messages_consumed_total", view=VIEW) == 10

    asyncio.run(main())
    assert trips(store, [1, 20]) == [1, 2]
    store.online_store.close()


def test_a_new_group_starts_at_the_end_unless_from_beginning(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, topic: str
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)

    async def main() -> None:
        await produce(kafka_broker, topic, [event(1, 0, 1)])
        async with consuming(store, unique("g"), fresh_metrics(), from_beginning=False) as (c, _):
            await eventually(lambda: bool(c.consumer.assignment()), "assignment")
            await asyncio.sleep(1.0)
            await produce(kafka_broker, topic, [event(2, 0, 2)])
            await eventually(lambda: trips(store, [2]) == [2], "new event")
        assert trips(store, [1]) == [None]

    asyncio.run(main())
    store.online_store.close()


def test_several_partitions_are_rewound_and_committed_together(
    tmp_path: Path,
    redis_clean: RedisServer,
    kafka_broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = unique("partitioned")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    group = unique("g")
    online = store.online_store
    real_write = online.write_batch
    calls = {"n": 0}

    def fails_twice(view: Any, batch: Any) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OnlineStoreError("Redis is down (simulated)")
        return real_write(view, batch)

    monkeypatch.setattr(online, "write_batch", fails_twice)

    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        finally:
            await admin.close()
        await produce(kafka_broker, topic, [event(d, 0, d) for d in range(1, 301)])
        async with consuming(store, group, fresh_metrics(), max_records=50):
            await eventually(
                lambda: trips(store, list(range(1, 301))) == list(range(1, 301)), "all"
            )

            async def all_committed() -> bool:
                offsets = [await committed(kafka_broker, group, topic, p) or 0 for p in range(3)]
                return sum(offsets) == 300

            await eventually(all_committed, "every partition committed")

    asyncio.run(main())
    assert calls["n"] > 2
    online.close()


def test_offline_views_append_stream_rows_to_the_batch_source(
    tmp_path: Path,
    redis_clean: RedisServer,
    kafka_broker: str,
    topic: str,
) -> None:
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic, offline=True)
    group = unique("g")

    async def main() -> None:
        await produce(kafka_broker, topic, [event(1, 0, 1, label="x"), event(2, 5, 2)])
        async with consuming(store, group, fresh_metrics()):
            await eventually(lambda: _committed_is(kafka_broker, group, topic, 2), "commit")

    asyncio.run(main())
    assert trips(store, [1, 2]) == [1, 2]
    store.online_store.close()
    log = pq.read_table(tmp_path / "log").sort_by("driver_id")
    assert log.column("driver_id").to_pylist() == [1, 2]
    assert log.column("trips").to_pylist() == [1, 2]
    assert log.column("label").to_pylist() == ["x", None]
    assert [t.timestamp() for t in log.column("event_timestamp").to_pylist()] == [T0, T0 + 5]
    assert log.column("created").null_count == 0
