"""The floor Spark itself puts under a point-in-time join (issue 16), for bench_spark.py.

The `spark-floor` engine times, in one Spark session with bench_spark's settings, the least
work any Spark job must do to co-locate the benchmark's data by key, with no Python worker:

- `shuffle`: read the entity Parquet (key, timestamp, row id) and the view's source Parquet
  (key, timestamp, 10 features), repartition both by the same key-hash bucket
  (`pmod(xxhash64(key), partitions)`, as repast.spark.join buckets) into the same number of
  partitions, in one job (the union of both exchanges) written to the `noop` format.
- `collect`: the same, plus a result of the join's size brought back to the driver as Arrow
  (`toArrow`, what `to_arrow()` must do): the shuffled entity rows, each with its row id and
  10 float64 values made in the JVM. The shuffled source rows stay in the job (filtered out
  after the exchange by a predicate Spark cannot push below it).
- `upload-collect`: `collect` with the entity frame uploaded from the driver's Arrow table
  (row id and nanosecond timestamps added, as Repast uploads a pyarrow entity frame) instead
  of read from Parquet.

- `upload-cogroup-collect` (a floor for Repast's plan, not for Spark's): `upload-collect` through
  Repast's co-group by bucket and `applyInArrow`, with a worker that answers each bucket with
  zeros (no sort, no kernel): what the Python round trip costs by itself.

Each variant runs once to warm up, then `--repeats` times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def floor_variants(work: Path, features: int, conf: dict[str, str]) -> dict[str, Callable[[], int]]:
    """Each variant as a function running one job and returning the rows it moved or fetched."""
    from pyspark.sql import functions as F

    from repast.spark.session import spark_session

    spark = spark_session(conf)  # Repast's session defaults (UTC, Arrow) on bench settings
    partitions = int(conf["spark.sql.shuffle.partitions"])
    names = [f"f{i}" for i in range(features)]

    def bucket(frame: Any) -> Any:
        return frame.repartition(partitions, F.pmod(F.xxhash64("key"), F.lit(partitions)))

    def source() -> Any:
        frame = spark.read.parquet(str(work / "source")).select("key", "event_timestamp", *names)
        return bucket(frame)

    def entity_parquet() -> Any:
        return spark.read.parquet(str(work / "entity.parquet")).select(
            "key", "event_timestamp", "rid"
        )

    table = pq.read_table(work / "entity.parquet")

    def entity_upload() -> Any:
        ts = table.column("event_timestamp").cast(pa.int64()).to_numpy() * 1000
        rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
        upload = pa.table({"key": table.column("key"), "rid": rows, "ts_ns": pa.array(ts)})
        return spark.createDataFrame(upload)

    def shuffle() -> int:
        left, right = bucket(entity_parquet()), source()
        left.unionByName(right, allowMissingColumns=True).write.format("noop").mode(
            "overwrite"
        ).save()
        return table.num_rows

    def collect_from(entity: Any, ts: str) -> int:
        # f0 reads the timestamp so the entity side carries key, timestamp and row id through
        # its shuffle, as Repast's does; the source side's filter must not be folded or pushed
        # below the exchange (Spark folds `rand() < -1`), hence the partition id.
        values = [F.rand(i) for i in range(features)]
        values[0] = F.when(F.col(ts).isNull(), F.lit(None)).otherwise(values[0])
        left = bucket(entity).select(
            "rid", *[v.alias(n) for v, n in zip(values, names, strict=True)]
        )
        kept = F.when(F.col("event_timestamp").isNull(), F.lit(None)).otherwise(F.col("f0"))
        right = (
            source()
            .where(F.spark_partition_id() < F.lit(0))
            .select(F.col("key").alias("rid"), kept.alias("f0"), *names[1:])
        )
        result = left.unionByName(right).toArrow()
        return int(result.num_rows)

    def cogroup() -> int:
        """Repast's plan with a no-op worker: both sides co-grouped by bucket through
        `applyInArrow`, each bucket answered by its entity rows' ids and 10 columns of zeros
        (no sort, no kernel), collected as Arrow."""
        from pyspark.sql.types import DoubleType, LongType, StructField, StructType

        schema = StructType(
            [StructField("rid", LongType()), *(StructField(n, DoubleType()) for n in names)]
        )

        def answer(left: pa.Table, right: pa.Table) -> pa.Table:
            zeros = pa.array(np.zeros(left.num_rows))
            return pa.Table.from_arrays([left.column("rid"), *[zeros] * features], names=names_out)

        names_out = ["rid", *names]
        key = F.pmod(F.xxhash64("key"), F.lit(partitions)).alias("bucket")
        left = entity_upload().select("*", key).groupBy("bucket")
        right = (
            spark.read.parquet(str(work / "source"))
            .select("key", "event_timestamp", *names, key)
            .groupBy("bucket")
        )
        result = left.cogroup(right).applyInArrow(answer, schema=schema).toArrow()
        return int(result.num_rows)

    return {
        "shuffle": shuffle,
        "collect": lambda: collect_from(entity_parquet(), "event_timestamp"),
        "upload-collect": lambda: collect_from(entity_upload(), "ts_ns"),
        "upload-cogroup-collect": cogroup,
    }


def floor_child(work: Path, features: int, conf: dict[str, str], repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, job in floor_variants(work, features, conf).items():
        job()  # warm-up
        times = []
        rows = 0
        for _ in range(repeats):
            began = time.perf_counter()
            rows = job()
            times.append(time.perf_counter() - began)
        out[name] = {"seconds": times, "rows": rows}
    return out
