"""A Kafka-fed repo on the test Redis, and small Kafka helpers for the stream tests.

pytest-asyncio is not a dev dependency: tests drive coroutines with asyncio.run and close every
client in a `finally` (an unclosed client is a warning, and warnings are errors).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from repast import Entity, FeatureStore, Field, FileSource, KafkaSource, StreamFeatureView
from repast.config import RepoConfig
from repast.data_format import JsonFormat
from repast.stream import Backoff, StreamMetrics
from repast.types import Float32, Int64, String
from repast.value_type import ValueType
from services import RedisServer

__all__ = [
    "VIEW",
    "committed",
    "consume_all",
    "eventually",
    "produce",
    "read_online",
    "stream_store",
    "fresh_metrics",
    "unique",
]

VIEW = "driver_live"
FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5)
DEADLINE_S = 60.0


def unique(prefix: str) -> str:
    # The broker is shared by the session: unique names keep tests independent.
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fresh_metrics() -> StreamMetrics:
    return StreamMetrics(CollectorRegistry())


def stream_store(
    tmp: Path,
    redis: RedisServer,
    bootstrap: str,
    topic: str,
    *,
    field_mapping: dict[str, str] | None = None,
    project: str | None = None,
    offline: bool = False,
    extra: dict[str, Any] | None = None,
) -> FeatureStore:
    """A store on the test Redis (packed layout) with one StreamFeatureView `driver_live`
    reading `topic`: driver_id Int64 key, conv_rate Float32, trips Int64, label String, and
    the `extra` features (name → Feast type)."""
    config = RepoConfig.model_validate(
        {
            "project": project or unique("stream").replace("-", "_"),
            "registry": str(tmp / "registry.json"),
            "online_store": {"type": "redis", "connection_string": redis.connection_string},
            "repo_path": tmp,
        }
    )
    store = FeatureStore(config=config)
    tmp.mkdir(parents=True, exist_ok=True)
    # The view's batch source: an empty log with the source's columns (with `offline`, a
    # directory that stream rows are appended to, with a `created` column).
    columns = {
        "driver_id": pa.array([], pa.int64()),
        "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array([], pa.float32()),
        "trips": pa.array([], pa.int64()),
        "label": pa.array([], pa.string()),
    }
    columns.update({name: pa.array([], t.to_arrow_type()) for name, t in (extra or {}).items()})
    if offline:
        (tmp / "log").mkdir(exist_ok=True)
        columns["created"] = pa.array([], pa.timestamp("us", tz="UTC"))
        pq.write_table(pa.table(columns), tmp / "log" / "part-0.parquet")
    else:
        pq.write_table(pa.table(columns), tmp / "log.parquet")
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = KafkaSource(
        name="driver_events",
        kafka_bootstrap_servers=bootstrap,
        topic=topic,
        timestamp_field="event_timestamp",
        batch_source=FileSource(
            name="driver_log",
            path=str(tmp / "log") if offline else str(tmp / "log.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created" if offline else "",
        ),
        message_format=JsonFormat(
            "driver_id bigint, event_timestamp timestamp, conv_rate double, trips bigint"
        ),
        field_mapping=field_mapping,
    )
    view = StreamFeatureView(
        name=VIEW,
        entities=[driver],
        ttl=timedelta(0),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="conv_rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
            Field(name="label", dtype=String),
            *(Field(name=name, dtype=t) for name, t in (extra or {}).items()),
        ],
        source=source,
        timestamp_field="event_timestamp",
        offline=offline,
    )
    store.apply([driver, source, view])
    return store


async def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[dict[str, Any] | bytes],
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=v if isinstance(v, bytes) else orjson.dumps(v),
                headers=list(headers) if headers else None,
            )
            for v in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, count: int) -> list[Any]:
    """`count` records of `topic` from the beginning (fails after DEADLINE_S)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        records: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while len(records) < count:
            assert loop.time() < deadline, f"got {len(records)} of {count} from {topic}"
            batch = await consumer.getmany(timeout_ms=500)
            for rs in batch.values():
                records.extend(rs)
        return records
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, partition))
        return offset
    finally:
        await consumer.stop()


def read_online(store: FeatureStore, ids: Sequence[int]) -> dict[str, list[Any]]:
    response = store.get_online_features(
        [f"{VIEW}:conv_rate", f"{VIEW}:trips", f"{VIEW}:label"], {"driver_id": list(ids)}
    )
    out: dict[str, list[Any]] = response.to_dict(include_event_timestamps=True)
    return out


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = DEADLINE_S
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
