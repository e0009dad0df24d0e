"""`SparkRetrievalJob`: a historical retrieval of the `spark` offline store.

`to_arrow()` / `to_df()` upload only the entity frame's join keys, its timestamps (as int64
nanoseconds) and row numbers, run the join in Spark (`repast.spark.join`), collect the feature
columns with their row numbers, and put them beside the entity frame as given, in its order:
the same table the local store returns (feature columns cast back to the Parquet types when
the source is a local Parquet path). On-demand views then run on the driver, as locally.

`to_spark_df()` keeps everything in Spark (the whole entity frame is uploaded, on-demand views
run in the executors over Arrow batches) and sorts by entity row; `to_parquet(path)` writes
that frame from the executors into the directory `path` (part files, in entity order), so a
result larger than the driver never passes through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from repast.config import RepoConfig, SparkOfflineStoreConfig
from repast.errors import OfflineStoreError, RepastError
from repast.offline.aggregate import AggregateJoin
from repast.offline.columns import raw_column, timestamps_ns
from repast.offline.retrieval import RetrievalJob, RetrievalMetadata
from repast.offline.view import ViewJoin
from repast.spark.errors import typed_worker_errors
from repast.spark.join import ROW, TS_NS, join_views
from repast.spark.session import spark_session
from repast.spark.sources import arrow_schema, read_source, spark_location
from repast.spark_source import SparkSource

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkEntity", "SparkRetrievalJob", "spark_entity_frame"]

Finish = Callable[[pa.Table], pa.Table]


@dataclass(frozen=True)
class SparkEntity:
    """An entity frame that lives in Spark, and its Arrow schema."""

    frame: DataFrame
    schema: pa.Schema


def spark_entity_frame(config: RepoConfig, entity_df: Any) -> SparkEntity | None:
    """`entity_df` as a Spark entity frame when it is a Spark DataFrame or a Spark SQL query
    (a string that is not an existing path); None for the frames the driver holds."""
    frame: Any = None
    if type(entity_df).__module__.startswith("pyspark."):
        frame = entity_df
    elif isinstance(entity_df, str) and not Path(entity_df).exists():
        offline = config.offline_store
        assert isinstance(offline, SparkOfflineStoreConfig)
        try:
            frame = spark_session(offline.spark_conf).sql(entity_df)
            schema = arrow_schema(frame)
        except Exception as exc:  # Spark's ParseException / AnalysisException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, RepastError)):
                raise
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OfflineStoreError(
                f"entity_df {entity_df!r} is neither an existing file nor a Spark SQL query "
                f"that runs: {line}"
            ) from exc
        return SparkEntity(frame, schema)
    if frame is None:
        return None
    return SparkEntity(frame, arrow_schema(frame))


class SparkRetrievalJob(RetrievalJob):
    """A training frame computed by Spark; see the module docstring for what runs where."""

    def __init__(
        self,
        config: RepoConfig,
        entity: pa.Table,
        timestamp_column: str,
        joins: Sequence[ViewJoin | AggregateJoin],
        filter_by_created_timestamp: bool,
        finish: Finish,
        *,
        odfv_outputs: Sequence[tuple[str, pa.DataType]] = (),
        full_feature_names: bool = False,
        metadata: RetrievalMetadata | None = None,
        entity_frame: DataFrame | None = None,
    ) -> None:
        super().__init__(
            lambda: typed_worker_errors(self._collect),
            full_feature_names=full_feature_names,
            metadata=metadata,
        )
        offline = config.offline_store
        assert isinstance(offline, SparkOfflineStoreConfig)
        self._config = config
        self._offline = offline
        self._entity = entity
        self._timestamp_column = timestamp_column
        self._joins = list(joins)
        self._filter = filter_by_created_timestamp
        self._finish = finish
        self._odfv_outputs = list(odfv_outputs)
        # A Spark entity frame (`entity` is then its empty schema) stays in Spark.
        self._entity_frame = entity_frame
        ts = timestamps_ns(
            entity.column(timestamp_column), f"entity frame column '{timestamp_column}'"
        )
        self._ts_ns = ts
        self._bounds: tuple[int, int] | None = None
        if ts.null_count < len(ts):
            lo_hi = pc.min_max(ts)
            self._bounds = (int(lo_hi["min"].as_py()), int(lo_hi["max"].as_py()))

    # --- the Spark side -----------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        return spark_session(self._offline.spark_conf)

    def _partitions(self, spark: SparkSession) -> int:
        if self._offline.partitions:
            return self._offline.partitions
        return int(spark.conf.get("spark.sql.shuffle.partitions") or 200)

    def _source(self, spark: SparkSession, view: ViewJoin) -> DataFrame:
        if isinstance(view.source, SparkSource):
            return read_source(spark, self._config, view.source)
        from repast.data_source import FileSource

        path = os.fspath(view.source)
        return read_source(spark, self._config, FileSource(name=view.name, path=path))

    def _spark_entity(self, columns: Sequence[str]) -> DataFrame:
        """The Spark entity frame's `columns`, numbered in its order, with its timestamps in
        nanoseconds; the time bounds of the source pruning come from one aggregate."""
        from pyspark.sql import functions as F

        assert self._entity_frame is not None
        ts = F.col(f"`{self._timestamp_column}`").cast("timestamp")
        frame = self._entity_frame.select(*[f"`{c}`" for c in columns]).select(
            "*",
            F.monotonically_increasing_id().alias(ROW),
            (F.unix_micros(ts) * F.lit(1000)).alias(TS_NS),
        )
        row = frame.agg(F.min(TS_NS), F.max(TS_NS)).first()
        lo, hi = (None, None) if row is None else (row[0], row[1])
        self._bounds = None if lo is None or hi is None else (int(lo), int(hi))
        return frame

    def _upload(self, spark: SparkSession, columns: Sequence[str]) -> DataFrame:
        """The entity frame's `columns` plus row numbers and nanosecond timestamps, in Spark."""
        if self._entity_frame is not None:
            return self._spark_entity(columns)
        table = self._entity.select(list(columns))
        arrays = [_spark_ready(table.column(i)) for i in range(table.num_columns)]
        rows = pa.array(np.arange(self._entity.num_rows, dtype=np.int64))
        table = pa.Table.from_arrays(
            [*arrays, rows, self._ts_ns], names=[*table.column_names, ROW, TS_NS]
        )
        return spark.createDataFrame(table)

    def _joined(self, columns: Sequence[str]) -> DataFrame:
        spark = self.spark
        plain = [view for view in self._joins if isinstance(view, ViewJoin)]
        sources = [(view, self._source(spark, view)) for view in plain]
        frame = join_views(
            self._upload(spark, columns),
            sources,
            self._bounds,
            self._partitions(spark),
            self._filter,
        )
        if len(plain) == len(self._joins):
            return frame
        from repast.spark.aggregate import aggregate_views

        return aggregate_views(
            frame,
            self._joins,
            lambda view: self._source(spark, view),
            self._bounds,
            self._partitions(spark),
        )

    # --- results ------------------------------------------------------------------------------

    def _collect(self) -> pa.Table:
        if self._entity_frame is not None:
            # The entity frame is Spark's: everything comes back from the join, in its order.
            table = self._joined(self._entity.column_names).toArrow()
            table = table.take(pc.sort_indices(table.column(ROW))).drop_columns([ROW, TS_NS])
            types = self._local_types()
            return self._finish(
                pa.Table.from_arrays(
                    [_cast(table.column(n), types.get(n)) for n in table.column_names],
                    names=table.column_names,
                )
            )
        keys = [k for view in self._joins for k, _ in view.entity_join_keys]
        keys = [k for k in dict.fromkeys(keys) if k in self._entity.column_names]
        outputs = [out for view in self._joins for _, out in view.features]
        collected = self._joined(keys).select(ROW, *[f"`{o}`" for o in outputs]).toArrow()
        order = pc.sort_indices(collected.column(ROW))
        features = collected.take(order)
        types = self._local_types()
        columns = [_cast(features.column(name), types.get(name)) for name in outputs]
        frame = pa.Table.from_arrays(
            [*self._entity.columns, *columns], names=[*self._entity.column_names, *outputs]
        )
        return self._finish(frame)

    def _local_types(self) -> dict[str, pa.DataType]:
        """Output name → the Arrow type the local store returns, for local Parquet sources."""
        types: dict[str, pa.DataType] = {}
        for view in self._joins:
            if isinstance(view, AggregateJoin):
                from repast.spark.aggregate import local_types

                types.update(local_types(view))
                continue
            if isinstance(view.source, SparkSource) or "://" in os.fspath(view.source):
                continue
            try:
                schema = ds.dataset(
                    os.fspath(view.source), format="parquet", partitioning="hive"
                ).schema
            except (OSError, pa.ArrowInvalid):
                continue
            for feature, out in view.features:
                types[out] = schema.field(raw_column(view, feature, schema)).type
        return types

    def to_spark_df(self) -> DataFrame:
        """The training frame as a Spark DataFrame in entity-row order (nothing collected)."""
        joined = self._joined(self._entity.column_names)
        if self._odfv_outputs:
            schema = self._finished_schema(joined)
            finish = self._finish

            def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                for batch in batches:
                    yield from finish(pa.Table.from_batches([batch])).cast(schema).to_batches()

            from pyspark.sql.pandas.types import from_arrow_schema

            joined = joined.mapInArrow(run, from_arrow_schema(schema))
        return joined.orderBy(ROW).drop(ROW, TS_NS)

    def _finished_schema(self, joined: DataFrame) -> pa.Schema:
        """What `finish` returns for the joined columns: run on an empty table of them, with
        the on-demand outputs given their declared types."""
        outputs = [(out, view) for view in self._joins for _, out in view.features]
        fields = [
            *(
                pa.field(n, _spark_ready(self._entity.column(n)).type)
                for n in self._entity.column_names
            ),
            pa.field(ROW, pa.int64()),
            pa.field(TS_NS, pa.int64()),
        ]
        known = arrow_schema(joined)
        fields += [known.field(out) for out, _ in outputs]
        probe = self._finish(pa.schema(fields).empty_table())
        declared = dict(self._odfv_outputs)
        return pa.schema([pa.field(f.name, declared.get(f.name, f.type)) for f in probe.schema])

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the frame, in entity order, as Parquet part files into the directory `path`
        (written by the executors; replaced if it exists)."""
        target = spark_location(self._config, os.fspath(path))
        self.to_spark_df().write.mode("overwrite").parquet(target)


def _spark_ready(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column Spark takes from Arrow: dictionaries decoded, timestamps in microseconds."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        column = pc.cast(column, pa.timestamp("us", kind.tz), safe=False)
    return column


def _cast(column: pa.ChunkedArray, kind: Any) -> pa.ChunkedArray:
    if kind is None or column.type == kind:
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column
