"""Windowed aggregates of a historical retrieval as a Spark job, one aggregated view at a time
(docs/aggregations.md).

As the point-in-time join does (`repast.spark.join`), the entity rows and the view's raw events
are bucketed by a hash of the join keys and co-grouped on the bucket; each bucket's entity rows
and events reach one Python worker as two Arrow tables, and the local as-of aggregation
(`repast.offline.aggregate.aggregate_as_of`, the Rust kernel) answers them. The events of a
bucket are put back in the order the local store reads them (files in path order, rows in file
order), so `last` breaks equal event times alike and floats are folded in the same order: the
values are the local store's, bit for bit. An entity-less view is one bucket.

Events are pruned to the longest window (plus one tile) before the shuffle, by the entity
frame's time bounds; the kernel applies every window exactly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa

from repast.errors import OfflineStoreError
from repast.offline.aggregate import AggregateJoin, aggregate_as_of
from repast.offline.columns import raw_column
from repast.offline.join import ViewJoin
from repast.spark.join import BUCKET, ROW, TS_NS, bucket_events, cogroup_buckets, view_rows
from repast.spark.sources import arrow_schema
from repast.spark_source import SparkSource

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["aggregate_views", "local_types", "output_types"]

_ENTITY_ROW = re.compile(r"entity row (\d+)")


def _pruning_view(join: AggregateJoin) -> ViewJoin:
    """The view with the ttl that keeps every event some entity row's windows can reach."""
    longest = max(a.window for a in join.aggregates)
    return replace(join.view, ttl=longest + join.tile)


def output_types(join: AggregateJoin, source: pa.Schema) -> list[pa.DataType]:
    """The Arrow type of each aggregate over a source of schema `source`: the kernel run on
    no rows, so the types are exactly what it returns (sum of integers int64, min/max/last the
    input's type, ...)."""
    probe = replace(join.view, source=source.empty_table())
    keys = pa.schema(
        [
            (entity, source.field(raw_column(probe, key, source)).type)
            for entity, key in join.view.entity_join_keys
        ]
    )
    empty = pa.array([], pa.int64())
    columns = aggregate_as_of(keys.empty_table(), empty, replace(join, view=probe))
    return [c.type for c in columns]


def local_types(join: AggregateJoin) -> dict[str, pa.DataType]:
    """Output name → the type the local store returns, for a local Parquet source (the Spark
    schema may differ: nanosecond timestamps are microseconds in Spark)."""
    import pyarrow.dataset as ds

    source = join.view.source
    if isinstance(source, SparkSource) or "://" in os.fspath(source):
        return {}
    try:
        schema = ds.dataset(os.fspath(source), format="parquet", partitioning="hive").schema
    except (OSError, pa.ArrowInvalid):
        return {}
    types = output_types(join, schema)
    return {a.output: kind for a, kind in zip(join.aggregates, types, strict=True)}


@dataclass(frozen=True)
class _BucketAggregate:
    """What a worker runs per bucket: the local as-of aggregation of its rows (picklable)."""

    join: AggregateJoin
    output: pa.Schema

    def function(self) -> Callable[[pa.Table, pa.Table], pa.Table]:
        # A plain two-argument function: Spark counts a callable object's `self` when it checks
        # the arity, and would pass the group key.
        def aggregate_bucket(left: pa.Table, right: pa.Table) -> pa.Table:
            return self(left, right)

        return aggregate_bucket

    def __call__(self, left: pa.Table, right: pa.Table) -> pa.Table:
        if left.num_rows == 0:
            return self.output.empty_table()
        left = left.drop_columns([BUCKET])
        join = replace(self.join, view=replace(self.join.view, source=bucket_events(right)))
        try:
            columns = aggregate_as_of(left, left.column(TS_NS).combine_chunks(), join)
        except OfflineStoreError as exc:
            # The kernel numbers the bucket's rows: name the entity frame's row instead.
            rows = left.column(ROW)
            message = _ENTITY_ROW.sub(lambda m: f"entity row {rows[int(m[1])]}", str(exc))
            raise type(exc)(message) from exc
        for aggregate, column in zip(join.aggregates, columns, strict=True):
            left = left.append_column(aggregate.output, column)
        return left.cast(self.output)


def _aggregate_view(
    frame: DataFrame,
    join: AggregateJoin,
    source: DataFrame,
    bounds: tuple[int, int] | None,
    partitions: int,
) -> DataFrame:
    from pyspark.sql.pandas.types import from_arrow_schema

    view = _pruning_view(join)
    source, source_schema = view_rows(view, source, bounds)
    outputs = output_types(join, source_schema)
    output = pa.schema(
        [
            *arrow_schema(frame),
            *(pa.field(a.output, kind) for a, kind in zip(join.aggregates, outputs, strict=True)),
        ]
    )
    task = _BucketAggregate(replace(join, view=replace(join.view, source=None)), output)
    grouped = cogroup_buckets(view, frame, source, source_schema, partitions)
    return grouped.applyInArrow(task.function(), schema=from_arrow_schema(output))


def aggregate_views(
    frame: DataFrame,
    joins: Sequence[ViewJoin | AggregateJoin],
    read: Callable[[ViewJoin], DataFrame],
    bounds: tuple[int, int] | None,
    partitions: int,
) -> DataFrame:
    """`frame` (the entity rows, with `__repast_row` and `__repast_ts_ns`, and the plain views'
    features) with every aggregated view of `joins` added, its sources read by `read`; the
    feature columns in the order of `joins`, rows in no particular order."""
    plain = {out for j in joins if isinstance(j, ViewJoin) for _, out in j.features}
    entity = [c for c in frame.columns if c not in plain]
    for join in joins:
        if isinstance(join, AggregateJoin):
            frame = _aggregate_view(frame, join, read(join.view), bounds, partitions)
    ordered = [*entity, *(out for j in joins for _, out in j.features)]
    return frame.select(*[f"`{c}`" for c in ordered])
