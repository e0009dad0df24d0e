"""Stream ingestion benchmark (issue 6): Kafka topic → StreamConsumer → Redis.

Two measurements, each bounded in events and in time, against a real Kafka broker and a
real redis-server started here on 127.0.0.1 (the test fixtures' starters):

1. Throughput: `--events` JSON events are produced to a one-partition topic first, then a
   fresh consumer group reads them from the beginning; events/s = events / (time from the
   first batch to the last commit). Repeated `--runs` times (Redis flushed in between);
   the median is reported. Target: >= 50,000 events/s.
2. Freshness: a producer process (pinned to the other core) sends `--rate` events/s for
   `--seconds`, each stamped with its send time; the consumer (pinned to core 0) records
   write time - event time for every row. `--runs` times, the median reported.
   Target: p99 <= 100 ms at 10,000 events/s.

    .venv/bin/python load-tests/bench_stream.py [--events 500000] [--runs 3] [--json out.json]
    # Issue 17: the view aggregates instead (sum of trips over 1 h, 1 d and 7 d, 5-minute
    # tiles): every event goes into its driver's tiles.
    .venv/bin/python load-tests/bench_stream.py --aggregations

Prints a summary and, with --json, writes every figure so two commits can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from aiokafka import AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from kafka_service import running_kafka_broker  # noqa: E402
from repast import FeatureStore  # noqa: E402
from repast.stream import DeadLetterQueue, StreamConsumer  # noqa: E402
from services import start_redis_server  # noqa: E402
from stream_helpers import VIEW, fresh_metrics, stream_store  # noqa: E402

LABELS = ["gold", "silver", "bronze", "none"]
# Kafka's stock KAFKA_JVM_PERFORMANCE_OPTS (kafka-run-class.sh) with a 1 GiB heap, rather than the
# test fixture's small-footprint serial collector, whose young pauses show in a latency tail.
BROKER_JVM = (
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def _event(i: int, keys: int, ts: float) -> bytes:
    return b'{"driver_id":%d,"event_timestamp":%.6f,"conv_rate":%.4f,"trips":%d,"label":"%s"}' % (
        i % keys,
        ts,
        (i % 1000) / 1000,
        i,
        LABELS[i % 4].encode(),
    )


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, events: int, keys: int, rate: float | None) -> float:
    """Send `events`; at `rate` per second (paced in 1 ms slices) or as fast as possible.
    Each event's time is its send time. Returns the achieved rate."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=1 if rate else 20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        start = time.perf_counter()
        pending = []
        sent = 0
        while sent < events:
            if rate:
                due = min(events, int((time.perf_counter() - start) * rate) + 1)
                if due <= sent:
                    await asyncio.sleep(0.001)
                    continue
            else:
                due = min(events, sent + 5000)
            for i in range(sent, due):
                # Stamped at its send: the event happens now, whenever the loop gets to it.
                pending.append(await producer.send(topic, _event(i, keys, time.time())))
            sent = due
            # Acknowledgements are collected in small groups: gathering thousands at once
            # stalls this loop, and the events stamped just before would look late.
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return events / (time.perf_counter() - start)
    finally:
        await producer.stop()


def _producer_process(bootstrap: str, topic: str, events: int, keys: int, rate: float) -> None:
    _pin(1)
    achieved = asyncio.run(_produce(bootstrap, topic, events, keys, rate))
    print(f"  producer: {events} events at {achieved:,.0f}/s", flush=True)


class _TimedConsumer(StreamConsumer):
    """Records when the first batch was decoded, when each batch was written, and every
    freshness value (for exact percentiles rather than histogram buckets)."""

    first = 0.0
    last = 0.0
    consumed = 0
    written = 0
    batches = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fresh: list[np.ndarray] = []
        observe = self.metrics.freshness.observe

        def record(view: str, seconds: np.ndarray) -> None:
            self.fresh.append(seconds.copy())
            observe(view, seconds)

        self.metrics.freshness.observe = record  # type: ignore[method-assign]

    def prepare(self, batch: Any) -> Any:
        if not self.first:
            self.first = time.perf_counter()
        return super().prepare(batch)

    async def write(self, prepared: Any) -> Any:
        result = await super().write(prepared)
        self.consumed += result.consumed
        self.written += result.written
        self.batches += 1
        self.last = time.perf_counter()
        return result


async def _consume(
    store: FeatureStore,
    bootstrap: str,
    events: int,
    deadline_s: float,
    *,
    on_ready: Any = None,
    max_records: int = 20_000,
) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    consumer = _TimedConsumer(
        store.context,
        store.get_stream_feature_view(VIEW),
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        dead_letters=DeadLetterQueue(producer),
        metrics=fresh_metrics(),
        from_beginning=True,
        max_records=max_records,
    )
    stop = asyncio.Event()
    gc.freeze()  # as `repast stream` does once started
    try:
        await consumer.start(stop)
        task = asyncio.create_task(consumer.run(stop))
        while not consumer.consumer.assignment():
            await asyncio.sleep(0.01)
        if on_ready is not None:
            on_ready()
        limit = time.perf_counter() + deadline_s
        while consumer.consumed < events and time.perf_counter() < limit and not task.done():
            await asyncio.sleep(0.01)
        stop.set()
        await task
    finally:
        await consumer.close()
        await producer.stop()
    fresh = np.concatenate(consumer.fresh) if consumer.fresh else np.zeros(0)
    seconds = consumer.last - consumer.first
    return {
        "consumed": consumer.consumed,
        "written": consumer.written,
        "batches": consumer.batches,
        "seconds": seconds,
        "events_per_s": consumer.consumed / seconds if seconds > 0 else 0.0,
        "freshness_ms": {
            "p50": float(np.percentile(fresh, 50) * 1000) if len(fresh) else None,
            "p99": float(np.percentile(fresh, 99) * 1000) if len(fresh) else None,
            "max": float(fresh.max() * 1000) if len(fresh) else None,
        },
    }


def aggregate(store: FeatureStore) -> None:
    """Redefines the benchmark view to aggregate its events (issue 17)."""
    from datetime import timedelta

    from repast import Aggregation, StreamFeatureView

    live = store.get_stream_feature_view(VIEW)
    windows = [timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
    view = StreamFeatureView(
        name=VIEW,
        entities=live.entities,
        source=live.stream_source,
        schema=[*live.entity_columns, *live.features],
        aggregations=[Aggregation("trips", "sum", w) for w in windows],
        timestamp_field="event_timestamp",
        enable_tiling=True,
        tiling_hop_size=timedelta(minutes=5),
    )
    store.apply([view])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct drivers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-records", type=int, default=20_000)
    parser.add_argument("--deadline", type=float, default=120.0, help="per phase, seconds")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--aggregations", action="store_true", help="the view aggregates (issue 17): tiles"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run this process and what it starts (broker, redis, producer) at this niceness; "
        "a negative value (root) keeps unrelated jobs on a shared machine from skewing figures",
    )
    args = parser.parse_args()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-")))
        redis = start_redis_server(tmp / "redis")
        stack.callback(redis.stop)
        broker = stack.enter_context(running_kafka_broker(jvm_opts=BROKER_JVM))
        bootstrap = broker.bootstrap_servers
        _pin(0)
        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "cpu": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                # Other work on the machine shows here; the figures are only as quiet as it was.
                "loadavg_1m_at_start": os.getloadavg()[0],
            },
            "args": {k: str(v) for k, v in vars(args).items()},
        }

        # 1. Throughput from a pre-filled topic.
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        asyncio.run(_create_topic(bootstrap, topic))
        store = stream_store(tmp / "repo", redis, bootstrap, topic)
        if args.aggregations:
            aggregate(store)
        t = time.perf_counter()
        rate = asyncio.run(_produce(bootstrap, topic, args.events, args.keys, None))
        print(
            f"filled {topic}: {args.events:,} events in {time.perf_counter() - t:.1f}s "
            f"({rate:,.0f}/s)"
        )
        runs = []
        for run in range(args.runs):
            redis.flushall()
            r = asyncio.run(
                _consume(store, bootstrap, args.events, args.deadline, max_records=args.max_records)
            )
            runs.append(r)
            print(
                f"  run {run + 1}: {r['consumed']:,} events in {r['seconds']:.2f}s = "
                f"{r['events_per_s']:,.0f} events/s ({r['batches']} batches, "
                f"{r['written']:,} rows stored)",
                flush=True,
            )
        median = statistics.median(r["events_per_s"] for r in runs)
        results["throughput"] = {"runs": runs, "median_events_per_s": median}
        print(f"throughput median: {median:,.0f} events/s (target >= 50,000)")

        # 2. Freshness at a paced rate, producer in its own process on the other core.
        events = int(args.rate * args.seconds)
        fresh_runs = []
        for run in range(args.runs):
            topic2 = f"fresh-{uuid.uuid4().hex[:8]}"
            asyncio.run(_create_topic(bootstrap, topic2))
            store2 = stream_store(tmp / f"repo-fresh-{run}", redis, bootstrap, topic2)
            if args.aggregations:
                aggregate(store2)
            proc = multiprocessing.get_context("spawn").Process(
                target=_producer_process, args=(bootstrap, topic2, events, args.keys, args.rate)
            )
            fresh = asyncio.run(
                _consume(
                    store2,
                    bootstrap,
                    events,
                    args.seconds + args.deadline,
                    on_ready=proc.start,
                    max_records=args.max_records,
                )
            )
            proc.join(timeout=30)
            store2.online_store.close()
            fresh_runs.append(fresh)
            f = fresh["freshness_ms"]
            print(
                f"  run {run + 1}: p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, "
                f"max {f['max']:.1f} ms over {fresh['consumed']:,} events "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        p50 = statistics.median(r["freshness_ms"]["p50"] for r in fresh_runs)
        p99 = statistics.median(r["freshness_ms"]["p99"] for r in fresh_runs)
        results["freshness"] = {
            "rate": args.rate,
            "runs": fresh_runs,
            "median_p50_ms": p50,
            "median_p99_ms": p99,
        }
        print(
            f"freshness at {args.rate:,.0f} events/s: median p50 {p50:.1f} ms, "
            f"median p99 {p99:.1f} ms (target p99 <= 100 ms)"
        )
        results["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
        print(
            f"load average (1 min): {results['machine']['loadavg_1m_at_start']:.1f} at start, "
            f"{results['machine']['loadavg_1m_at_end']:.1f} at end, on {os.cpu_count()} CPUs"
        )
        store.online_store.close()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
