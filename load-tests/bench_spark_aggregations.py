"""Windowed aggregations on Spark (issues 16 and 17): the spark offline store's aggregated
retrieval on `local[2]` vs Repast's local as-of kernel over the same Parquet files.

The data is `bench_aggregations.py`'s (seeded): `--events` events (int64 key over `--keys`
keys, 30 days, an int64 value with 1 % nulls) written as a directory of 8 Parquet files, and
`--entity-rows` entity rows. Both engines compute sum, count, mean and max of the value over
1 hour, 1 day and 7 days (12 aggregates, 5-minute tiles) for every entity row:

- `local`: `repast.offline.aggregate.aggregate_as_of` with the Parquet directory as the source
  (what the file offline store runs: read, prune, dense ids, the Rust kernel);
- `spark`: `SparkRetrievalJob(...).to_arrow()` with `offline_store: {type: spark}` on
  `local[2]`, 8 shuffle partitions (entity rows and events bucketed by key hash, co-grouped,
  the same kernel per bucket, features collected beside the entity frame).

`--materialize-events N` (0 to skip) then backfills a BatchFeatureView with the same 12
aggregations (1-second tiles) from N events of the last 7 days over `--keys` keys into a fresh
redis-server (`layout: packed`) on 127.0.0.1, with the local engine and with the Spark engine
(`local[2]`, 8 partitions, after one untimed warm-up run), alternating, flushing Redis
between runs; online reads of 2 000
entities after each engine's first run are checked equal (floats to 1e-12 relative: the local
engine's read batches may split an entity's events, which changes the fold order).

One warm-up Spark run first (JVM and Python workers up, not timed); then the engines alternate
in one process, `--repeats` times each; medians of wall time are printed and written to
`--json`. The two results are checked equal (Arrow `equals`: bit for bit).

    .venv/bin/python load-tests/bench_spark_aggregations.py            # 1 M x 100 k, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_aggregations import FUNCTIONS, TILE_US, WINDOWS, generate
from bench_spark import SPARK_CONF  # the same Spark settings as the plain-view benchmark
from repast.config import RepoConfig, SparkOfflineStoreConfig
from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.view import ViewJoin


def join_for(path: str) -> AggregateJoin:
    return AggregateJoin(
        view=ViewJoin(
            name="bench",
            source=path,
            entity_join_keys=[("key", "key")],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(microseconds=TILE_US),
        aggregates=[
            WindowedFeature(f, "value", window, f"{f}_{name}")
            for name, window in WINDOWS.items()
            for f in FUNCTIONS
        ],
    )


def run_local(entity: pa.Table, join: AggregateJoin) -> pa.Table:
    ts = entity.column("event_timestamp").cast(pa.timestamp("ns", tz="UTC"))
    columns = aggregate_as_of(entity, ts.cast(pa.int64()).combine_chunks(), join)
    names = [a.output for a in join.aggregates]
    return pa.Table.from_arrays([*entity.columns, *columns], [*entity.column_names, *names])


def run_spark(entity: pa.Table, join: AggregateJoin) -> pa.Table:
    from repast.spark.retrieval import SparkRetrievalJob

    config = RepoConfig(
        project="bench",
        registry="unused.json",
        offline_store=SparkOfflineStoreConfig(spark_conf=SPARK_CONF),
    )
    job = SparkRetrievalJob(config, entity, "event_timestamp", [join], False, lambda t: t)
    return job.to_arrow()


def bench_materialize(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from datetime import UTC, datetime
    from unittest import mock

    import redis as redis_py

    import repast
    from repast.config import SparkBatchEngineConfig
    from repast.materialize import materialize
    from repast.types import Int64
    from services import start_redis_server

    now = datetime.now(UTC).replace(microsecond=0)
    now_us = int(now.timestamp()) * 1_000_000
    rng = np.random.default_rng(args.seed)
    n = args.materialize_events
    (work / "events").mkdir()
    part = -(-n // 8)
    for i in range(8):
        m = min(part, n - i * part)
        table = pa.table(
            {
                "key": pa.array(rng.integers(0, args.keys, m), pa.int64()),
                "ts": pa.array(now_us - 1_000_000 - rng.integers(0, 7 * 86_400_000_000, m)).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "value": pa.array(rng.integers(0, 1000, m), pa.int64()),
            }
        )
        pq.write_table(table, work / "events" / f"part-{i}.parquet")
    server = start_redis_server(work / "redis")
    try:
        key = repast.Entity(name="key", join_keys=["key"])
        source = repast.FileSource(name="events", path=str(work / "events"), timestamp_field="ts")
        view = repast.BatchFeatureView(
            name="agg",
            entities=[key],
            source=source,
            schema=[
                repast.Field(name="key", dtype=Int64),
                repast.Field(name="value", dtype=Int64),
            ],
            aggregations=[
                repast.Aggregation(column="value", function=f, time_window=window)
                for window in WINDOWS.values()
                for f in FUNCTIONS
            ],
            online=True,
        )
        online = {
            "type": "redis",
            "connection_string": server.connection_string,
            "layout": "packed",
        }
        stores = {
            engine: repast.FeatureStore(
                config=repast.RepoConfig(
                    project="bench",
                    registry=str(work / "registry.json"),
                    online_store=online,
                    batch_engine=engine_config,
                    repo_path=work,
                )
            )
            for engine, engine_config in (
                ("local", {"type": "local"}),
                ("spark", SparkBatchEngineConfig(spark_conf=SPARK_CONF, partitions=8)),
            )
        }
        stores["local"].apply([key, source, view])
        features = [f"agg:{a.resolved_name(a.time_window)}" for a in view.aggregations]
        sample = [{"key": int(k)} for k in range(0, args.keys, max(1, args.keys // 2000))]
        client = redis_py.Redis(host=server.host, port=server.port)
        start = now - timedelta(days=8)
        # Warm-up (not timed): the session, the JVM's code and the Python workers.
        materialize(stores["spark"].context, start, now, ["agg"], False, progress=False)
        runs: dict[str, list[float]] = {"local": [], "spark": []}
        reads: dict[str, Any] = {}
        for _ in range(args.repeats):
            for engine, store in stores.items():
                client.flushall()
                wall, _ = timed(
                    materialize, store.context, start, now, ["agg"], False, progress=False
                )
                runs[engine].append(wall)
                if engine not in reads:
                    # After both engines' writes (each drops what is older than the longest
                    # window as of its own clock), so both read the same events.
                    at = (now_us // 1_000_000 + 600) * 1_000_000_000
                    with mock.patch("repast.online.tiles.now_ns", return_value=at):
                        reads[engine] = store.get_online_features(features, sample).to_dict()
        client.close()
    finally:
        server.stop()
    for name in reads["local"]:
        for got, want in zip(reads["spark"][name], reads["local"][name], strict=True):
            same = got == want or abs(got - want) <= 1e-12 * abs(want)
            assert same, (name, got, want)
    return {
        "events": n,
        "keys": args.keys,
        "aggregates": len(FUNCTIONS) * len(WINDOWS),
        "online_store": "redis packed (one local redis-server)",
        "same_online_reads": True,
        **{
            engine: {
                "wall_s": [round(w, 3) for w in times],
                "median_wall_s": round(statistics.median(times), 3),
                "events_per_s": round(n / statistics.median(times)),
            }
            for engine, times in runs.items()
        },
    }


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - began, out


def bench_retrieval(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    events, entity = generate(args)
    directory = work / "retrieval-events"
    directory.mkdir()
    part = -(-events.num_rows // 8)
    for i in range(8):
        pq.write_table(events.slice(i * part, part), directory / f"part-{i}.parquet")
    join = join_for(str(directory))
    warm, _ = timed(run_spark, entity, join)
    runs: dict[str, list[float]] = {"local": [], "spark": []}
    checked = False
    for _ in range(args.repeats):
        wall, local = timed(run_local, entity, join)
        runs["local"].append(wall)
        wall, spark = timed(run_spark, entity, join)
        runs["spark"].append(wall)
        if not checked:
            assert spark.equals(local), "spark and local results differ"
            checked = True
        del local, spark
    result: dict[str, Any] = {
        "events": args.events,
        "entity_rows": args.entity_rows,
        "keys": args.keys,
        "aggregates": len(FUNCTIONS) * len(WINDOWS),
        "spark_warm_up_s": round(warm, 3),
        "identical_values": checked,
    }
    for engine, times in runs.items():
        result[engine] = {
            "wall_s": [round(w, 3) for w in times],
            "median_wall_s": round(statistics.median(times), 3),
        }
    result["spark_over_local_wall"] = round(
        result["spark"]["median_wall_s"] / result["local"]["median_wall_s"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--materialize-events", type=int, default=0)
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "spark_master": SPARK_CONF["spark.master"],
        "shuffle_partitions": int(SPARK_CONF["spark.sql.shuffle.partitions"]),
        "load_average_at_start": os.getloadavg()[0],
        "machine": platform.platform(),
    }
    with tempfile.TemporaryDirectory(prefix="repast-bench-spark-agg-") as tmp:
        if not args.skip_retrieval:
            result["retrieval"] = bench_retrieval(args, Path(tmp))
        if args.materialize_events:
            result["materialize"] = bench_materialize(args, Path(tmp))
    result["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
