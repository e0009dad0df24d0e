"""One Kafka consumer group per feature view: messages → online (and offline) → commit.

A batch from `getmany` is decoded (decode.py), its good rows written online through the
store's write path (the same Rust encoder and newer-event-time-wins rule as `push`), its bad
messages produced to the dead-letter topic, and only then are its offsets committed. A
failure anywhere before the commit rewinds the consumer to the batch's first offsets and
reads it again after a backoff: at-least-once, and replays are harmless because an older
event time never overwrites a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from repast.context import StoreContext
from repast.data_source import KafkaSource
from repast.errors import RepastError
from repast.feature_view import FeatureView
from repast.offline.write import write_to_offline_store
from repast.online import write as online_write
from repast.online.base import TIMESTAMP, OnlineStoreError, WriteBatch, latest_rows
from repast.online.tiles import tile_spec, write_events
from repast.stream.dead_letter import DeadLetterQueue, Rejection
from repast.stream.decode import Decoded, MessageDecoder
from repast.stream.metrics import StreamMetrics

__all__ = [
    "Backoff",
    "BatchResult",
    "Prepared",
    "StreamConsumer",
    "kafka_source_of",
    "write_online",
]

log = logging.getLogger("repast.stream")

DEFAULT_MAX_RECORDS = 20_000
# How long one `getmany` waits when nothing is buffered: short, so a stop is noticed quickly.
_POLL_MS = 200


@dataclass
class Backoff:
    """Exponential backoff with jitter: `next()` is the delay before the next attempt."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    _current: float = field(default=0.0, init=False)

    def next(self) -> float:
        self._current = (
            self.initial if self._current == 0 else min(self.maximum, self._current * self.factor)
        )
        return self._current * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        self._current = 0.0


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stop` is set first; True when stopping."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


@dataclass
class BatchResult:
    """What one batch did."""

    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    offsets: dict[Any, int] = field(default_factory=dict)
    """TopicPartition → the offset to commit for this batch (the next one to read)."""


@dataclass
class Prepared:
    """A decoded batch waiting to be written and committed."""

    records: list[Any]
    decoded: Decoded
    first_offsets: dict[Any, int]
    """TopicPartition → the batch's first offset (where a retry starts)."""
    offsets: dict[Any, int]
    """TopicPartition → the offset to commit (one past the batch's last)."""


def kafka_source_of(view: FeatureView) -> KafkaSource | None:
    source = view.stream_source
    return source if isinstance(source, KafkaSource) else None


def write_online(store: StoreContext, view: FeatureView, decoded: Decoded, ts_column: str) -> int:
    """Write decoded rows through the online store's write path; returns rows stored.

    Keys are built by the same Rust kernel as `write_to_online_store`, one row is kept per key
    (the latest event time), and the store keeps a row only when it is newer than what it has.
    """
    table = decoded.table
    if len(table) == 0:
        return 0
    if tile_spec(view) is not None:
        version = store.config.entity_key_serialization_version
        return write_events(
            store.online_store, view, table, version, "repast stream", watermark=True
        )
    keys = online_write.entity_keys(view, table, store.config.entity_key_serialization_version)
    batch = WriteBatch(
        keys,
        table.column(ts_column).combine_chunks(),
        {f.name: table.column(f.name).combine_chunks() for f in view.features},
    )
    keep = latest_rows(batch.keys, batch.event_timestamps)
    if keep is not None:
        batch = batch.take(keep)
    return store.online_store.write_batch(online_write.write_plan(view).online, batch)


def _transient_types() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaError

    types: list[type[BaseException]] = [
        OnlineStoreError,
        KafkaError,
        OSError,
        TimeoutError,
        sqlite3.OperationalError,  # "database is locked"
    ]
    try:
        # The Redis store wraps most client errors, not every one (a connection dropped mid-
        # reply surfaces as redis' own ConnectionError, which is not an OSError).
        from redis import exceptions as rx

        types += [rx.ConnectionError, rx.TimeoutError, rx.BusyLoadingError]
    except ImportError:  # pragma: no cover - the redis extra is not installed
        pass
    return tuple(types)


# Failures that pass by themselves: the batch is read again after a backoff.
def _transient(exc: BaseException) -> bool:
    global _TRANSIENT
    if _TRANSIENT is None:
        _TRANSIENT = _transient_types()
    return isinstance(exc, _TRANSIENT)


_TRANSIENT: tuple[type[BaseException], ...] | None = None


class StreamConsumer:
    """Consumes one view's KafkaSource topic in consumer group `group_id`.

    `start()` connects (retrying while Kafka is down), `run(stop)` processes batches until
    `stop` is set, finishing and committing the batch in hand, and `close()` leaves the group.
    """

    def __init__(
        self,
        store: StoreContext,
        view: FeatureView,
        *,
        group_id: str,
        dead_letters: DeadLetterQueue,
        metrics: StreamMetrics,
        from_beginning: bool = False,
        bootstrap_servers: str | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        backoff: Backoff | None = None,
        consumer_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        source = kafka_source_of(view)
        if source is None:
            raise RepastError(f"feature view '{view.name}' has no KafkaSource stream source")
        if not source.topic:
            raise RepastError(f"KafkaSource '{source.name}' of view '{view.name}' has no topic")
        servers = bootstrap_servers or source.kafka_bootstrap_servers
        if not servers:
            raise RepastError(
                f"KafkaSource '{source.name}' of view '{view.name}' has no kafka_bootstrap_servers"
            )
        self.store = store
        self.view = view
        self.source = source
        self.topic: str = source.topic
        self.bootstrap_servers: str = servers
        self.group_id = group_id
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.from_beginning = from_beginning
        self.max_records = max_records
        self.backoff = backoff or Backoff()
        self.consumer_options = dict(consumer_options or {})
        self.clock = clock
        self.decoder = MessageDecoder(view, source)
        if self.decoder.untyped_join_keys:
            raise RepastError(
                f"feature view '{view.name}': join key "
                f"{', '.join(map(repr, self.decoder.untyped_join_keys))} has no type; "
                "declare it in the view's schema"
            )
        self._consumer: Any = None
        self._stage = "write"
        self._written: dict[Any, int] = {}
        self._committed: dict[Any, int] = {}
        self._commit_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"StreamConsumer(view={self.view.name!r}, topic={self.topic!r}, "
            f"group={self.group_id!r})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _new_consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if self.from_beginning else "latest",
            "max_partition_fetch_bytes": 8 * 1024 * 1024,
            "fetch_max_wait_ms": 100,
            "client_id": f"repast-{self.view.name}",
        }
        options.update(self.consumer_options)
        return AIOKafkaConsumer(self.topic, **options)

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Connect and subscribe, retrying with backoff while Kafka cannot be reached.
        False when `stop` was set before it could."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            consumer = self._new_consumer()
            try:
                await consumer.start()
            except Exception as exc:
                await consumer.stop()
                if not _transient(exc):
                    raise
                delay = self.backoff.next()
                log.warning(
                    "view %s: cannot reach Kafka (%s); retrying in %.1fs",
                    self.view.name,
                    exc,
                    delay,
                )
                if await sleep_or_stop(stop, delay):
                    return False
                continue
            self._consumer = consumer
            self.backoff.reset()
            log.info("view %s: consuming %s as group %s", self.view.name, self.topic, self.group_id)
            return True
        return False

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    @property
    def consumer(self) -> Any:
        if self._consumer is None:
            raise RuntimeError(f"{self!r} is not started")
        return self._consumer

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; the batch in hand is written and committed.

        Pipelined: while batch N is written (in a thread, waiting on the store) batch N+1 is
        fetched and decoded, and N-1's offsets are committed in the background. Writes stay in
        order (N+1's starts after N's ends) and a commit only ever covers written batches; a
        failed commit is retried with the next one. If N's write fails, N+1 is dropped and
        both are read again.
        """
        pending: tuple[asyncio.Task[BatchResult], Prepared] | None = None
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(
                    timeout_ms=_POLL_MS, max_records=self.max_records
                )
                prepared = self.prepare(batch) if batch else None
                if pending is not None:
                    task, previous = pending
                    pending = None
                    if not await self._settle(task, previous, prepared, stop):
                        continue
                if prepared is not None:
                    pending = (asyncio.create_task(self.write(prepared)), prepared)
                self._commit_soon()
            if pending is not None:
                await self._settle(*pending, None, stop)
        finally:
            if self._commit_task is not None:
                await self._commit_task
        await self.commit()

    def _commit_soon(self) -> None:
        """Commit what was written, in the background, unless a commit is under way."""
        if self._dirty() and (self._commit_task is None or self._commit_task.done()):
            self._commit_task = asyncio.create_task(self._commit_quietly())

    def _dirty(self) -> bool:
        return any(self._committed.get(tp) != offset for tp, offset in self._written.items())

    async def _commit_quietly(self) -> None:
        try:
            await self.commit()
        except Exception as exc:
            if not _transient(exc):
                raise
            # The offsets stay pending; the next batch's commit (or the last one) covers them.
            self.metrics.retries.labels(self.view.name, "commit").inc()
            log.warning("view %s: commit failed (%s); retrying later", self.view.name, exc)

    async def commit(self) -> None:
        """Commit the offsets of every batch written so far (of partitions still assigned)."""
        assigned = self.consumer.assignment()
        offsets = {tp: o for tp, o in self._written.items() if tp in assigned}
        for tp in [tp for tp in self._written if tp not in assigned]:
            del self._written[tp]  # revoked: its new owner resumes from the last commit
        if not offsets or all(self._committed.get(tp) == o for tp, o in offsets.items()):
            return
        await self.consumer.commit(offsets)
        self._committed.update(offsets)
        self._observe_lag(offsets)

    async def _settle(
        self,
        task: asyncio.Task[BatchResult],
        prepared: Prepared,
        following: Prepared | None,
        stop: asyncio.Event,
    ) -> bool:
        """Wait for a batch's write; False (after rewinding to it and backing off) when it
        failed in a way that passes."""
        try:
            await task
        except Exception as exc:
            if not _transient(exc):
                raise
            self._retry(exc, [prepared] if following is None else [prepared, following])
            await sleep_or_stop(stop, self.backoff.next())
            return False
        self.backoff.reset()
        return True

    def _retry(self, exc: BaseException, batches: Sequence[Prepared]) -> None:
        self.metrics.retries.labels(self.view.name, self._stage).inc()
        log.warning(
            "view %s: %s failed (%s); reading the batch again after a backoff",
            self.view.name,
            self._stage,
            exc,
        )
        first: dict[Any, int] = {}
        for prepared in reversed(batches):
            first.update(prepared.first_offsets)
        assigned = self.consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)

    async def handle(
        self, batch: Mapping[Any, Sequence[Any]], stop: asyncio.Event
    ) -> BatchResult | None:
        """Process one batch; on a transient failure rewind to it and back off (None)."""
        prepared = self.prepare(batch)
        try:
            result = await self.finish(prepared)
        except Exception as exc:
            if not _transient(exc):
                raise
            self._retry(exc, [prepared])
            await sleep_or_stop(stop, self.backoff.next())
            return None
        self.backoff.reset()
        return result

    async def process(self, batch: Mapping[Any, Sequence[Any]]) -> BatchResult:
        """Decode, write online (and offline), dead-letter the bad messages, commit."""
        return await self.finish(self.prepare(batch))

    def prepare(self, batch: Mapping[Any, Sequence[Any]]) -> Prepared:
        """Decode a batch (no I/O)."""
        records = [r for rs in batch.values() for r in rs]
        self.metrics.consumed.labels(self.view.name).inc(len(records))
        return Prepared(
            records=records,
            decoded=self.decoder.decode([r.value for r in records]),
            first_offsets={tp: rs[0].offset for tp, rs in batch.items() if rs},
            offsets={tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs},
        )

    async def finish(self, prepared: Prepared) -> BatchResult:
        """`write` a decoded batch, then commit its offsets."""
        result = await self.write(prepared)
        await self.commit()
        return result

    async def write(self, prepared: Prepared) -> BatchResult:
        """Write a decoded batch online (and offline) and dead-letter its bad messages; its
        offsets become committable."""
        view = self.view.name
        decoded = prepared.decoded
        rejections = dict(decoded.errors)
        written = 0
        if len(decoded.table) and self.view.online:
            self._stage = "write"
            try:
                written = await asyncio.to_thread(
                    write_online,
                    self.store,
                    self.view,
                    decoded,
                    self.decoder.event_timestamp_column,
                )
            except Exception as exc:
                if _transient(exc) or not isinstance(exc, RepastError | pa.ArrowException):
                    raise
                # A batch the encoder refuses would be refused again: dead-letter it, go on.
                log.exception("view %s: rows could not be encoded", view)
                for i in decoded.rows.tolist():
                    rejections[i] = Rejection("write_failed", f"{type(exc).__name__}: {exc}")
            else:
                self._observe_freshness(decoded)
        if len(decoded.table) and not any(r.reason == "write_failed" for r in rejections.values()):
            self._stage = "offline"
            await self._write_offline(decoded)
        self._stage = "dead_letter"
        dead = await self.dead_letters.send(view, prepared.records, rejections)
        self._written.update(prepared.offsets)
        self.metrics.written.labels(view).inc(written)
        for reason in {r.reason for r in rejections.values()}:
            count = sum(1 for r in rejections.values() if r.reason == reason)
            self.metrics.dead_lettered.labels(view, reason).inc(count)
        return BatchResult(len(prepared.records), written, dead, prepared.offsets)

    # -- side outputs ------------------------------------------------------------------------

    def _observe_freshness(self, decoded: Decoded) -> None:
        ts = decoded.table.column(self.decoder.event_timestamp_column).combine_chunks()
        micros = ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
        seconds = self.clock() - micros.astype(np.float64) / 1e6
        self.metrics.freshness.observe(self.view.name, seconds)

    def _observe_lag(self, offsets: Mapping[Any, int]) -> None:
        for tp, position in offsets.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                self.metrics.lag.labels(self.view.name, tp.topic, str(tp.partition)).set(
                    max(0, highwater - position)
                )

    async def _write_offline(self, decoded: Decoded) -> None:
        if not self.view.offline:
            return
        # The offline store takes rows named as the batch source names them (it maps view
        # names back through the source's field_mapping).
        table = decoded.table
        source = self.view.batch_source
        ts = source.timestamp_field
        if ts and ts != self.decoder.event_timestamp_column:
            table = table.rename_columns(
                [ts if c == self.decoder.event_timestamp_column else c for c in table.column_names]
            )
        created = source.created_timestamp_column
        if created and created not in table.column_names:
            # As Feast's stream processor does: the rows were created when they were ingested.
            now = np.full(len(table), int(self.clock() * 1e6), dtype=np.int64)
            table = table.append_column(created, pa.array(now).cast(TIMESTAMP))
        await asyncio.to_thread(write_to_offline_store, self.store, self.view.name, table)
