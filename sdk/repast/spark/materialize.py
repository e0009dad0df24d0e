"""The `spark` batch engine: materialize a view as a Spark job.

The driver plans; the executors do the work. The view's source rows in `[start, end]` are
hash-partitioned by the join keys, so all rows of an entity land in one partition. Each
partition streams its Arrow batches through `LatestState` (Rust, as the local engine does),
encodes the winners with the Rust encoder and writes them straight into the online store
(Redis pipelined, newer event time wins; SQLite only with a local master, where executors share
the driver's disk). Nothing but one statistics row per partition comes back to the driver.

A failed task is retried by Spark (`spark.task.maxFailures`; with `local[N]` set it as
`local[N,F]`). A retry rewrites the rows the failed attempt may already have written: the store
keeps the newer event time and skips an equal one, so writing the same row twice stores it once,
and a retry has no second effect. The materialized interval is recorded (by the caller) only
after the job succeeded, i.e. every partition wrote all its rows.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.config import RedisOnlineStoreConfig, RepoConfig, SparkBatchEngineConfig
from repast.context import StoreContext
from repast.errors import MaterializationCancelled, MaterializationError, RepastError
from repast.feature_view import FeatureView
from repast.latest import source_columns, write_rows
from repast.spark.errors import first_line
from repast.spark.session import is_connect, spark_session
from repast.spark.sources import FILE, POSITION, prune_dates, read_source, with_file_order

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "STATS",
    "JobWatcher",
    "SparkMaterialization",
    "check_store",
    "materialize_view",
    "run_partitions",
    "source_window",
    "spark_conf",
]

logger = logging.getLogger(__name__)

STATS = pa.schema(
    [
        ("partition", pa.int32()),
        ("attempt", pa.int32()),
        ("rows_read", pa.int64()),
        ("rows_written", pa.int64()),
        ("seconds", pa.float64()),
        # The Python worker's peak resident memory so far (workers are reused across tasks).
        ("peak_rss_bytes", pa.int64()),
    ]
)


def spark_conf(config: RepoConfig) -> dict[str, str]:
    """The session settings: the offline store's (when it is spark), then the engine's."""
    conf: dict[str, str] = {}
    offline = config.offline_store
    if offline.type == "spark" and offline.spark_conf:
        conf.update(offline.spark_conf)
    engine = config.batch_engine
    if isinstance(engine, SparkBatchEngineConfig) and engine.spark_conf:
        conf.update(engine.spark_conf)
    return conf


@dataclass(frozen=True)
class _PartitionWrite:
    """What each partition runs (picklable: the config and the view travel to the executors)."""

    config: RepoConfig
    view: FeatureView
    names: tuple[str, ...]  # the view's names for the selected source columns, in order
    write_rows: int

    def function(self) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return self(batches)

        return write_partition

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        attempt = context.attemptNumber() if context is not None else 0
        try:
            row = self._write(batches)
        except Exception as exc:
            # Named here, where the partition is known: the driver sees only this line.
            raise MaterializationError(
                f"partition {partition} failed on attempt {attempt + 1}: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from exc
        yield pa.RecordBatch.from_pylist(
            [{"partition": partition, "attempt": attempt, **row}], schema=STATS
        )

    def _write(self, batches: Iterator[pa.RecordBatch]) -> dict[str, Any]:
        from repast.latest import KEY, latest_of
        from repast.online import online_store_from_config
        from repast.online.base import OnlineView
        from repast.online.write import write_batch

        began = time.monotonic()
        read = [0]

        def count(n: int) -> None:
            read[0] += n

        renamed = (pa.RecordBatch.from_arrays(b.columns, names=list(self.names)) for b in batches)
        version = self.config.entity_key_serialization_version
        latest = latest_of(self.view, renamed, version, count)
        written = 0
        if latest.num_rows:
            store = online_store_from_config(self.config)
            try:
                chunks = latest.to_batches(max_chunksize=self.write_rows)
                tables = (pa.Table.from_batches([c]) for c in chunks)
                written = store.write_batches(
                    OnlineView.of(self.view),
                    (write_batch(self.view, t, t.column(KEY).combine_chunks()) for t in tables),
                )
            finally:
                store.close()
        return {
            "rows_read": read[0],
            "rows_written": int(written or 0),
            "seconds": time.monotonic() - began,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }


@dataclass
class SparkMaterialization:
    """One view's job: what it read and wrote (the statistics rows of its partitions)."""

    partitions: int
    rows_read: int
    rows_written: int
    seconds: float
    worker_peak_rss_bytes: int = 0
    # Partitions whose successful attempt was not their first (Spark retried a failed task).
    retried: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def source_window(
    spark: SparkSession,
    store: StoreContext,
    view: FeatureView,
    columns: dict[str, str],
    start: datetime,
    end: datetime,
) -> tuple[DataFrame, list[str], list[str], bool]:
    """The source's `columns` (view name -> source name) in `[start, end]`, the date
    partitions outside it never read (then its file order columns, if it has them); the view's
    names for the columns; the key columns (source names)."""
    from pyspark.sql import functions as F

    frame = prune_dates(
        read_source(spark, store.config, view.batch_source), view.batch_source, start, end
    )
    missing = [c for c in columns.values() if c not in frame.columns]
    if missing:
        raise MaterializationError(
            f"view '{view.name}': its source has no column '{missing[0]}' "
            f"(columns: {', '.join(frame.columns)})"
        )
    ts = F.col(f"`{columns[view.batch_source.timestamp_field]}`").cast("timestamp")
    window = (ts >= F.lit(start)) & (ts <= F.lit(end))
    frame, ordered = with_file_order(frame)
    order = [FILE, POSITION] if ordered else []
    frame = frame.select(*[F.col(f"`{c}`") for c in [*columns.values(), *order]]).where(window)
    keys = [columns[k] for k in view.join_keys if k in columns]
    return frame, list(columns), keys, ordered


def materialize_view(
    store: StoreContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> SparkMaterialization:
    """Run the job for `view`; raise `MaterializationError` unless every partition succeeded.

    `progress(done, total)` is called with the partitions finished so far while it runs (not on
    Spark Connect, which reports no task progress to the client).
    """
    config = store.config
    engine = config.batch_engine
    partitions = engine.partitions if isinstance(engine, SparkBatchEngineConfig) else 0
    spark = spark_session(spark_conf(config))
    check_store(config, spark)
    frame, names, keys, ordered = source_window(
        spark, store, view, source_columns(view), start, end
    )
    count = partitions or int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    frame = frame.repartition(count, *[f"`{k}`" for k in keys]) if keys else frame.repartition(1)
    if ordered:
        # Each partition in file order, as the local engine reads: a full tie (same event and
        # created time) goes to the later row in both engines.
        frame = frame.sortWithinPartitions(FILE, POSITION).drop(FILE, POSITION)
    task = _PartitionWrite(config, view, tuple(names), write_rows(store.config))
    from pyspark.sql.pandas.types import from_arrow_schema

    job = frame.mapInArrow(task.function(), from_arrow_schema(STATS))
    result = run_partitions(spark, job, view.name, "materialize", _job_error, progress, cancel)
    logger.info(
        "materialized %s on Spark: %d partitions (%d retried), %d rows read (%.0f rows/s), "
        "%d rows written",
        view.name,
        result.partitions,
        result.retried,
        result.rows_read,
        result.rows_per_second,
        result.rows_written,
    )
    return result


def check_store(config: RepoConfig, spark: Any) -> None:
    if isinstance(config.online_store, RedisOnlineStoreConfig):
        return
    master = "" if is_connect(spark) else str(spark.sparkContext.master)
    if not master.startswith("local"):
        raise MaterializationError(
            "the spark batch engine writes a SQLite online store only with a local master "
            f"(spark.master local[...]; this session's is {master or 'Spark Connect'}): "
            "executors elsewhere cannot reach the file; use a Redis online store"
        )


class JobWatcher:
    """Reports finished partitions while a job runs and cancels it when `cancel` is set."""

    def __init__(
        self,
        spark: Any,
        group: str,
        progress: Callable[[int, int], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        self._spark = spark
        self._group = group
        self._progress = progress
        self._cancel = cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="repast-spark-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        context = self._spark.sparkContext
        tracker = context.statusTracker()
        while not self._done.wait(0.5):
            if self._cancel is not None and self._cancel.is_set():
                context.cancelJobGroup(self._group)
                return
            if self._progress is None:
                continue
            done = total = 0
            for job_id in tracker.getJobIdsForGroup(self._group):
                job = tracker.getJobInfo(job_id)
                for stage_id in sorted(job.stageIds) if job is not None else []:
                    stage = tracker.getStageInfo(stage_id)
                    if stage is not None:
                        done, total = stage.numCompletedTasks, stage.numTasks
            if total:
                self._progress(done, total)


def run_partitions(
    spark: Any,
    job: DataFrame,
    view_name: str,
    kind: str,
    job_error: Callable[[BaseException], str],
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> SparkMaterialization:
    """Run a view's job, whose partitions each return one `STATS` row, with progress and
    cancellation; its totals, or `MaterializationError` (`job_error` says what failed a job
    that did not raise a Repast error on the driver)."""
    began = time.monotonic()
    group = f"repast-{kind}-{view_name}-{time.time_ns()}"
    watcher = JobWatcher(spark, group, progress, cancel) if not is_connect(spark) else None
    try:
        if watcher is not None:
            spark.sparkContext.setJobGroup(group, f"materialize {view_name}", True)
            watcher.start()
        stats = job.toArrow()
    except Exception as exc:
        if cancel is not None and cancel.is_set():
            raise MaterializationCancelled(
                f"materializing {view_name} was cancelled; nothing recorded"
            ) from exc
        if isinstance(exc, RepastError):
            raise MaterializationError(f"materializing {view_name} failed: {exc}") from exc
        raise MaterializationError(
            f"materializing {view_name} on Spark failed (nothing recorded): {job_error(exc)}"
        ) from exc
    finally:
        if watcher is not None:
            watcher.stop()
    if progress is not None:
        progress(stats.num_rows, stats.num_rows)
    return SparkMaterialization(
        partitions=stats.num_rows,
        rows_read=int(pc.sum(stats.column("rows_read")).as_py() or 0),
        rows_written=int(pc.sum(stats.column("rows_written")).as_py() or 0),
        seconds=time.monotonic() - began,
        worker_peak_rss_bytes=int(pc.max(stats.column("peak_rss_bytes")).as_py() or 0),
        retried=int(pc.sum(pc.greater(stats.column("attempt"), 0)).as_py() or 0),
    )


def _job_error(exc: BaseException) -> str:
    """What failed a job: for an exception raised in a Python worker, the last line of its
    traceback (a partition's `MaterializationError` names the partition and attempt), without
    the exception's module path; otherwise the first line of Spark's message."""
    params: Any = getattr(exc, "getMessageParameters", lambda: None)()
    trace = params.get("traceback", "") if isinstance(params, dict) else ""
    lines = [line for line in str(trace).splitlines() if line.strip()]
    if lines:
        name, sep, rest = lines[-1].partition(": ")
        return f"{name.rsplit('.', 1)[-1]}{sep}{rest}"
    return first_line(exc)
