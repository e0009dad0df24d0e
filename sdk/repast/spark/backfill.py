"""The `spark` batch engine for aggregated views: a backfill of their online tiles from the
executors (docs/aggregations.md, "Online").

As the local engine does, every event of the source in `[start, end]` is folded into its
entity's tiles (`repast.online.tiles.write_events`, the Rust kernel and the store's safe
read-modify-write), not only the latest row per entity. The driver plans; the source's rows are
hash-partitioned by the join keys and sorted within each partition by the keys, then in file
order, so each partition holds whole entities, each entity's events contiguous and in the
order the local engine reads them. A partition streams its Arrow batches and folds them in
chunks of about `online_write_batch_size` events cut at entity boundaries: an entity's events
are folded in one call, in (event time, file order) order, so its tiles hold the bits a local
backfill that reads the entity in one batch stores. Only one statistics row per partition
comes back to the driver.

Folding is not idempotent (an event folded twice counts twice), so unlike the latest-row
engine a partition is not retried over a store it may already have written: its second attempt
fails the job, naming the partition, and nothing is recorded.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast.config import RepoConfig, SparkBatchEngineConfig
from repast.context import StoreContext
from repast.errors import MaterializationError, RepastError
from repast.feature_view import FeatureView
from repast.latest import materialized_columns, write_rows
from repast.online.tiles import tile_store
from repast.spark.errors import first_line, worker_error
from repast.spark.materialize import (
    STATS,
    SparkMaterialization,
    check_store,
    run_partitions,
    source_window,
    spark_conf,
)
from repast.spark.session import spark_session
from repast.spark.sources import FILE, POSITION

__all__ = ["backfill_view", "entity_cut"]


def entity_cut(table: pa.Table, keys: list[str]) -> int:
    """The start of the last entity's run in `table` (rows grouped by `keys`): 0 when every
    row is one entity's (or the view has no entities)."""
    if table.num_rows < 2 or not keys:
        return 0
    changed = np.zeros(table.num_rows - 1, dtype=bool)
    for key in keys:
        column = table.column(key)
        before, after = column.slice(0, table.num_rows - 1), column.slice(1)
        nulls = pc.xor(before.is_null(), after.is_null())
        differs = pc.fill_null(pc.not_equal(before, after), False)
        changed |= pc.or_(differs, nulls).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(changed)
    return int(starts[-1]) + 1 if len(starts) else 0


@dataclass(frozen=True)
class _PartitionFold:
    """What each partition runs (picklable: the config and the view travel to the executors)."""

    config: RepoConfig
    view: FeatureView
    names: tuple[str, ...]  # the view's names for the selected source columns, in order
    keys: tuple[str, ...]  # the view's join keys (view names)
    chunk_rows: int

    def function(self) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        def fold_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return self(batches)

        return fold_partition

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        attempt = context.attemptNumber() if context is not None else 0
        if attempt > 0:
            raise MaterializationError(
                f"partition {partition} of aggregated view '{self.view.name}' failed on an "
                "earlier attempt that may have folded some of its events into the online tiles; "
                "retrying it would count them twice, so the job stops (nothing recorded)"
            )
        began = time.monotonic()
        read, written = self._fold(batches)
        yield pa.RecordBatch.from_pylist(
            [
                {
                    "partition": partition,
                    "attempt": attempt,
                    "rows_read": read,
                    "rows_written": written,
                    "seconds": time.monotonic() - began,
                    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                }
            ],
            schema=STATS,
        )

    def _fold(self, batches: Iterator[pa.RecordBatch]) -> tuple[int, int]:
        from repast.online import online_store_from_config
        from repast.online.tiles import write_events

        version = self.config.entity_key_serialization_version
        what = "materializing on Spark"
        store: Any = None
        read = written = 0
        held: list[pa.RecordBatch] = []
        held_rows = 0

        def fold(table: pa.Table) -> None:
            nonlocal store, written
            if store is None:
                store = online_store_from_config(self.config)
            written += write_events(store, self.view, table, version, what)

        try:
            for batch in batches:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=list(self.names))
                read += batch.num_rows
                held.append(batch)
                held_rows += batch.num_rows
                if held_rows < self.chunk_rows:
                    continue
                table = pa.Table.from_batches(held)
                cut = entity_cut(table, list(self.keys))
                if cut == 0:  # one entity so far (or no entities): keep it whole
                    if self.keys:
                        continue
                    cut = table.num_rows
                fold(table.slice(0, cut))
                held = table.slice(cut).to_batches()
                held_rows = table.num_rows - cut
            if held_rows:
                fold(pa.Table.from_batches(held))
        finally:
            if store is not None:
                store.close()
        return read, written


def backfill_view(
    store: StoreContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> SparkMaterialization:
    """Fold the view's events in `[start, end]` into its online tiles as a Spark job; raise
    `MaterializationError` unless every partition succeeded."""
    config = store.config
    engine = config.batch_engine
    partitions = engine.partitions if isinstance(engine, SparkBatchEngineConfig) else 0
    spark = spark_session(spark_conf(config))
    check_store(config, spark)
    try:  # refused here, before any executor starts, when the store cannot hold tiles
        tile_store(store.online_store, view.name)
    except RepastError as exc:
        raise MaterializationError(f"materializing {view.name}: {exc}") from exc
    frame, names, keys, ordered = source_window(
        spark, store, view, materialized_columns(view), start, end
    )
    count = partitions or int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    quoted = [f"`{k}`" for k in keys]
    frame = frame.repartition(count, *quoted) if keys else frame.repartition(1)
    # Whole entities, contiguous, each in the local engine's read order (file, then row).
    frame = frame.sortWithinPartitions(*quoted, *([FILE, POSITION] if ordered else []))
    if ordered:
        frame = frame.drop(FILE, POSITION)
    task = _PartitionFold(config, view, tuple(names), tuple(view.join_keys), write_rows(config))
    from pyspark.sql.pandas.types import from_arrow_schema

    job = frame.mapInArrow(task.function(), from_arrow_schema(STATS))
    return run_partitions(spark, job, view.name, "backfill", _job_error, progress, cancel)


def _job_error(exc: BaseException) -> str:
    """A Repast error raised in a partition by its message, else Spark's first line."""
    return str(worker_error(exc) or first_line(exc))
