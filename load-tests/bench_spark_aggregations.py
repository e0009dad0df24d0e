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
from repast.config import RepoConfig, SparkOfflineStoreConfig
from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.view import ViewJoin

SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.memory": "4g",
}


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


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - began, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    events, entity = generate(args)
    with tempfile.TemporaryDirectory(prefix="repast-bench-spark-agg-") as tmp:
        directory = Path(tmp) / "events"
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
        "spark_master": SPARK_CONF["spark.master"],
        "shuffle_partitions": int(SPARK_CONF["spark.sql.shuffle.partitions"]),
        "spark_warm_up_s": round(warm, 3),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
        "machine": platform.platform(),
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
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
