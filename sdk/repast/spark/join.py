"""The point-in-time join as a Spark job, one view at a time.

The entity frame and the view's source rows are both bucketed by a hash of the join keys
(cast to one type per key so that an `int` entity key and a `bigint` source key hash alike)
and co-grouped on the bucket: each bucket's entity rows and source rows reach one Python
worker as two Arrow tables, and the local join (`repast.offline.point_in_time_join`, the Rust
kernel) answers them. The semantics are therefore the local store's, row for row: ttl edges,
created-timestamp ties, `field_mapping`, null keys. No window function, no per-row Python.

Entity timestamps travel as int64 nanoseconds (`__repast_ts_ns`), since Spark keeps only
microseconds; the source's own timestamps are Spark's (microseconds, as Parquet usually has).
Every entity row carries its position (`__repast_row`) so the result can be put back in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import ColumnNotFoundError, KeyTypeMismatchError
from repast.offline.columns import key_kind, needed_columns, raw_column, raw_time_column
from repast.offline.view import ViewJoin
from repast.spark.sources import FILE, POSITION, arrow_schema, prune_dates, with_file_order

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.pandas.group_ops import PandasCogroupedOps

__all__ = [
    "BUCKET",
    "ROW",
    "TS_NS",
    "bucket_column",
    "bucket_events",
    "cogroup_buckets",
    "join_views",
    "key_casts",
    "source_dates",
    "time_window",
    "view_rows",
]

ROW = "__repast_row"
TS_NS = "__repast_ts_ns"
BUCKET = "__repast_bucket"
_TS = "__repast_ts"
_SPARK_KEY_TYPE = {"integer": "bigint", "string": "string", "binary": "binary"}


@dataclass(frozen=True)
class _BucketJoin:
    """What a worker runs per bucket: the local join of that bucket's rows (picklable)."""

    view: ViewJoin
    filter_by_created_timestamp: bool
    output: pa.Schema

    def function(self) -> Callable[[pa.Table, pa.Table], pa.Table]:
        # A plain two-argument function: Spark counts a callable object's `self` when it checks
        # the arity, and would pass the group key.
        def join_bucket(left: pa.Table, right: pa.Table) -> pa.Table:
            return self(left, right)

        return join_bucket

    def __call__(self, left: pa.Table, right: pa.Table) -> pa.Table:
        from repast.offline.join import point_in_time_join

        if left.num_rows == 0:
            return self.output.empty_table()
        left = left.drop_columns([BUCKET])
        ts = left.column(TS_NS).cast(pa.timestamp("ns", tz="UTC"))
        view = replace(self.view, source=bucket_events(right))
        joined = point_in_time_join(
            left.append_column(_TS, ts), _TS, [view], self.filter_by_created_timestamp
        )
        return joined.drop_columns([_TS]).cast(self.output)


def bucket_column(columns: Sequence[Column], partitions: int) -> Column:
    from pyspark.sql import functions as F

    if not columns:  # an entity-less view: one bucket
        return F.lit(0)
    return F.pmod(F.xxhash64(*columns), F.lit(partitions))


def key_casts(
    view: ViewJoin, entity: pa.Schema, source: pa.Schema
) -> tuple[list[Column], list[Column]]:
    """Both sides' join keys cast to one Spark type per key, for hashing."""
    from pyspark.sql import functions as F

    left: list[Column] = []
    right: list[Column] = []
    for entity_name, source_name in view.entity_join_keys:
        if entity_name not in entity.names:
            shown = ", ".join(n for n in entity.names if not n.startswith("__repast_"))
            raise ColumnNotFoundError(
                f"the entity frame has no column '{entity_name}', a join key of feature view "
                f"'{view.name}' (entity columns: {shown})"
            )
        raw = raw_column(view, source_name, source)
        kinds = []
        for where_, kind in (
            (f"entity frame column '{entity_name}'", entity.field(entity_name).type),
            (f"column '{raw}' of the {view.describe_source()}", source.field(raw).type),
        ):
            try:
                kinds.append(key_kind(kind))
            except TypeError as exc:
                raise KeyTypeMismatchError(f"{where_}: {exc}") from exc
        if kinds[0] is not None and kinds[1] is not None and kinds[0] != kinds[1]:
            raise KeyTypeMismatchError(
                f"join key of feature view '{view.name}': entity frame column '{entity_name}' "
                f"is {entity.field(entity_name).type} but column '{raw}' of the "
                f"{view.describe_source()} is {source.field(raw).type}; both must be integers, "
                "or both strings"
            )
        cast = _SPARK_KEY_TYPE[kinds[0] or kinds[1] or "integer"]
        left.append(F.col(f"`{entity_name}`").cast(cast))
        right.append(F.col(f"`{raw}`").cast(cast))
    return left, right


def time_window(
    source: DataFrame, ts_name: str, ts_type: pa.DataType, bounds: tuple[int, int] | None, ttl: int
) -> DataFrame:
    """Source rows that can match some entity row: `min - ttl <= ts <= max`, in microseconds
    widened outwards (the kernel applies the window exactly)."""
    from pyspark.sql import functions as F

    if not pa.types.is_timestamp(ts_type):
        return source
    if bounds is None:  # no entity row has a timestamp: nothing can match
        return source.limit(0)
    column = F.unix_micros(F.col(f"`{ts_name}`").cast("timestamp"))
    lo_ns, hi_ns = bounds
    condition = column <= F.lit(-(-hi_ns // 1000))
    if ttl > 0:
        condition = condition & (column >= F.lit((lo_ns - ttl) // 1000))
    return source.where(condition)


def source_dates(
    bounds: tuple[int, int] | None, ttl: int
) -> tuple[datetime | None, datetime | None]:
    """The times a view's source rows can match: `[min - ttl, max]` (no start without a ttl)."""
    if bounds is None:
        return None, None
    lo_ns, hi_ns = bounds

    def at(ns: int) -> datetime:
        return datetime.fromtimestamp(ns // 10**9, UTC)

    return (at(lo_ns - ttl) if ttl > 0 else None), at(hi_ns)


def view_rows(
    view: ViewJoin, source: DataFrame, bounds: tuple[int, int] | None
) -> tuple[DataFrame, pa.Schema]:
    """The source rows `view` can match for entity times within `bounds` (its date partitions
    pruned, its needed columns, then the file order columns when it has them), and the
    source's Arrow schema."""
    source = prune_dates(source, view.source, *source_dates(bounds, view.ttl_ns))
    schema = arrow_schema(source)
    columns = needed_columns(view, schema)
    ts_name = raw_time_column(view, view.timestamp_field, schema)
    source, ordered = with_file_order(source)
    order = [FILE, POSITION] if ordered else []
    rows = time_window(
        source.select(*[f"`{c}`" for c in [*columns, *order]]),
        ts_name,
        schema.field(ts_name).type,
        bounds,
        view.ttl_ns,
    )
    return rows, schema


def cogroup_buckets(
    view: ViewJoin, frame: DataFrame, rows: DataFrame, schema: pa.Schema, partitions: int
) -> PandasCogroupedOps:
    """The entity frame and the view's rows (`view_rows`, of a source of Arrow schema
    `schema`) co-grouped by key-hash bucket, ready for `applyInArrow`."""
    left_keys, right_keys = key_casts(view, arrow_schema(frame), schema)
    left = frame.withColumn(BUCKET, bucket_column(left_keys, partitions)).groupBy(BUCKET)
    right = rows.withColumn(BUCKET, bucket_column(right_keys, partitions)).groupBy(BUCKET)
    return left.cogroup(right)


def bucket_events(right: pa.Table) -> pa.Table:
    """A bucket's source rows as a worker receives them, back in the local store's read order
    (files in path order, rows in file order: a full tie goes to the later row), without the
    bucket and file order columns."""
    if FILE in right.column_names:
        order = pc.sort_indices(right, [(FILE, "ascending"), (POSITION, "ascending")])
        right = right.take(order).drop_columns([FILE, POSITION])
    return right.drop_columns([BUCKET])


def join_views(
    entity: DataFrame,
    views: Sequence[tuple[ViewJoin, DataFrame]],
    bounds: tuple[int, int] | None,
    partitions: int,
    filter_by_created_timestamp: bool = False,
) -> DataFrame:
    """`entity` (with `__repast_row` and `__repast_ts_ns`) and every view's features, in the
    order of `views`, each named by its `ViewJoin.features`; rows in no particular order."""
    from pyspark.sql.types import StructField, StructType

    frame = entity
    for view, source in views:
        source, source_schema = view_rows(view, source, bounds)
        spark_fields = {f.name: f for f in source.schema.fields}
        struct = StructType(
            [
                *frame.schema.fields,
                *(
                    StructField(
                        out, spark_fields[raw_column(view, feature, source_schema)].dataType
                    )
                    for feature, out in view.features
                ),
            ]
        )
        task = _BucketJoin(
            replace(view, source=None), filter_by_created_timestamp, _to_arrow(struct)
        )
        frame = cogroup_buckets(view, frame, source, source_schema, partitions).applyInArrow(
            task.function(), schema=struct
        )
    return frame


def _to_arrow(struct: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    schema: pa.Schema = to_arrow_schema(struct, timezone="UTC")
    return schema
