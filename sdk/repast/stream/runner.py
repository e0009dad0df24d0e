"""Run the stream consumers of a repo: `repast stream`.

One consumer (and consumer group `<group-id>.<view>`) per view whose stream source is a
KafkaSource, one dead-letter producer per Kafka cluster. Kafka or Redis being down only
delays: consumers connect with backoff, a batch that could not be written is read again,
and a consumer that fails unexpectedly is restarted from its committed offsets. SIGINT and
SIGTERM stop every consumer after the batch in hand is written and committed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from repast.context import StoreContext
from repast.errors import FeatureViewNotFoundError, RepastError
from repast.feature_view import FeatureView
from repast.stream.consumer import (
    DEFAULT_MAX_RECORDS,
    Backoff,
    StreamConsumer,
    _transient,
    kafka_source_of,
    sleep_or_stop,
)
from repast.stream.dead_letter import DEFAULT_TOPIC_TEMPLATE, DeadLetterQueue
from repast.stream.metrics import StreamMetrics, serve_metrics
from repast.stream_feature_view import StreamFeatureView
from repast.validate import closest

__all__ = ["StreamRunner", "run_streams", "stream_views"]

log = logging.getLogger("repast.stream")


def stream_views(store: StoreContext, names: Sequence[str] | None = None) -> list[FeatureView]:
    """The views to consume: those named (each must read a KafkaSource), else every view
    whose stream source is a KafkaSource."""
    views: list[FeatureView] = store.catalog.online_feature_views(allow_cache=False)
    by_name = {v.name: v for v in views}
    if names:
        chosen = []
        for name in dict.fromkeys(names):
            if name not in by_name:
                raise FeatureViewNotFoundError(
                    f"feature view '{name}' does not exist in project '{store.project}'"
                    f"{closest(name, list(by_name))}"
                )
            if kafka_source_of(by_name[name]) is None:
                raise RepastError(f"feature view '{name}' does not read a KafkaSource")
            chosen.append(by_name[name])
    else:
        chosen = [v for v in views if kafka_source_of(v) is not None]
        if not chosen:
            raise RepastError(f"no feature view in project '{store.project}' reads a KafkaSource")
    for view in chosen:
        if not isinstance(view, StreamFeatureView):
            continue
        if view.udf is not None or view.udf_string:
            # Writing the untransformed rows would store wrong values without a word.
            raise RepastError(
                f"StreamFeatureView '{view.name}' has a udf, which `repast stream` does not "
                "apply yet; transform the messages before they reach the topic"
            )
    return chosen


class StreamRunner:
    """The consumers of `views` (default: every Kafka-fed view) of one store."""

    def __init__(
        self,
        store: StoreContext,
        views: Sequence[str] | None = None,
        *,
        group_id: str | None = None,
        from_beginning: bool = False,
        dead_letter_topic: str = DEFAULT_TOPIC_TEMPLATE,
        bootstrap_servers: str | None = None,
        metrics: StreamMetrics | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        consumer_options: Mapping[str, Any] | None = None,
        producer_options: Mapping[str, Any] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self.views = stream_views(store, views)
        self.group_prefix = group_id or f"repast.{store.project}"
        self.from_beginning = from_beginning
        self.dead_letter_topic = dead_letter_topic
        self.bootstrap_servers = bootstrap_servers
        self.metrics = metrics or StreamMetrics()
        self.max_records = max_records
        self.consumer_options = dict(consumer_options or {})
        self.producer_options = dict(producer_options or {})
        self.backoff = backoff or Backoff()
        self.consumers: list[StreamConsumer] = []
        self._producers: dict[str, Any] = {}
        self._producer_lock = asyncio.Lock()
        # Built now so a bad template or an untyped join key fails before anything connects.
        DeadLetterQueue(None, dead_letter_topic)
        for view in self.views:
            self._consumer(view, DeadLetterQueue(None, dead_letter_topic))

    def group_id(self, view: FeatureView) -> str:
        return f"{self.group_prefix}.{view.name}"

    def _consumer(self, view: FeatureView, dead_letters: DeadLetterQueue) -> StreamConsumer:
        return StreamConsumer(
            self.store,
            view,
            group_id=self.group_id(view),
            dead_letters=dead_letters,
            metrics=self.metrics,
            from_beginning=self.from_beginning,
            bootstrap_servers=self.bootstrap_servers,
            max_records=self.max_records,
            backoff=Backoff(self.backoff.initial, self.backoff.maximum, self.backoff.factor),
            consumer_options=self.consumer_options,
        )

    async def _producer(self, servers: str, stop: asyncio.Event) -> Any:
        """The started dead-letter producer of one cluster, retrying while Kafka is down."""

        async with self._producer_lock:  # views on one cluster share one producer
            if servers not in self._producers:
                producer = await self._start_producer(servers, stop)
                if producer is None:
                    return None
                self._producers[servers] = producer
            return self._producers[servers]

    async def _start_producer(self, servers: str, stop: asyncio.Event) -> Any:
        from aiokafka import AIOKafkaProducer

        backoff = Backoff(self.backoff.initial, self.backoff.maximum, self.backoff.factor)
        while not stop.is_set():
            options = {"acks": "all", "linger_ms": 5, "client_id": "repast-dead-letters"}
            producer = AIOKafkaProducer(
                bootstrap_servers=servers, **{**options, **self.producer_options}
            )
            try:
                await producer.start()
            except Exception as exc:
                await producer.stop()
                if not _transient(exc):
                    raise
                delay = backoff.next()
                log.warning("cannot reach Kafka at %s (%s); retrying in %.1fs", servers, exc, delay)
                await sleep_or_stop(stop, delay)
                continue
            return producer
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then close every consumer and producer."""
        try:
            tasks = [asyncio.create_task(self._run_view(v, stop)) for v in self.views]
            await asyncio.gather(*tasks)
        finally:
            for producer in self._producers.values():
                await producer.stop()
            self._producers.clear()

    async def _run_view(self, view: FeatureView, stop: asyncio.Event) -> None:
        source = kafka_source_of(view)
        assert source is not None
        servers = self.bootstrap_servers or source.kafka_bootstrap_servers or ""
        backoff = Backoff(self.backoff.initial, self.backoff.maximum, self.backoff.factor)
        while not stop.is_set():
            producer = await self._producer(servers, stop)
            if producer is None:
                return
            consumer = self._consumer(view, DeadLetterQueue(producer, self.dead_letter_topic))
            self.consumers.append(consumer)
            try:
                if not await consumer.start(stop):
                    return
                await consumer.run(stop)
                return
            except Exception:
                # A bug or an unexpected error: start again from the committed offsets.
                delay = backoff.next()
                log.exception("view %s: consumer failed; restarting in %.1fs", view.name, delay)
                await sleep_or_stop(stop, delay)
            finally:
                self.consumers.remove(consumer)
                await consumer.close()


def run_streams(
    store: StoreContext,
    views: Sequence[str] | None = None,
    *,
    metrics_port: int | None = None,
    **options: Any,
) -> None:
    """Run `StreamRunner(store, views, **options)` until SIGINT or SIGTERM."""
    runner = StreamRunner(store, views, **options)
    if metrics_port is not None:
        serve_metrics(metrics_port, runner.metrics.registry)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Everything alive now (modules, registry, clients) lives for the whole run: frozen, the
        # collector stops rescanning it, so its pauses, which delay every message in flight,
        # stay short (a full collection went from ~100 ms to none in load-tests/bench_stream).
        gc.freeze()
        names = ", ".join(v.name for v in runner.views)
        log.warning("streaming %s (Ctrl-C stops after committing what was written)", names)
        await runner.run(stop)

    asyncio.run(main())
