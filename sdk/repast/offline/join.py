"""The point-in-time join driver: Arrow in, the Rust kernel for row indices, Arrow `take` out.

For every entity row and every requested view, the kernel (`repast._core.point_in_time_indices`)
picks the source row with equal join keys and the greatest event timestamp in
`[entity_ts - ttl, entity_ts]` (both inclusive, ttl 0/None = unbounded), ties broken by the greater
created timestamp (docs/feast-compatibility.md §7.1). This module only prepares columns
(projection, time-filter push-down, dtype normalization) and gathers the feature columns with
Arrow `take`, so feature payloads never leave Arrow and there is no per-row Python.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from repast import _core
from repast.errors import (
    ColumnNotFoundError,
    EntityTimestampInferenceError,
    FeatureNameCollisionError,
    OfflineStoreError,
    SourceReadError,
)
from repast.offline import partitioned
from repast.offline.columns import (
    gather,
    key_columns,
    needed_columns,
    raw_column,
    raw_time_column,
    timestamps_ns,
    where,
)
from repast.offline.view import ViewJoin

__all__ = [
    "ViewJoin",
    "infer_timestamp_column",
    "open_source",
    "point_in_time_join",
    "read_source",
    "time_bounds",
]

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"

_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def infer_timestamp_column(schema: pa.Schema) -> str:
    """The entity frame's timestamp column (docs/feast-compatibility.md §7.2).

    `event_timestamp` if present, else the only timestamp-typed column; anything else is an
    `EntityTimestampInferenceError`.

    >>> import pyarrow as pa
    >>> infer_timestamp_column(pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us"))]))
    'ts'
    """
    if DEFAULT_TIMESTAMP_COLUMN in schema.names:
        return DEFAULT_TIMESTAMP_COLUMN
    candidates = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    if len(candidates) == 1:
        return str(candidates[0])
    found = ", ".join(f"'{c}'" for c in candidates) if candidates else "none"
    raise EntityTimestampInferenceError(
        "cannot tell the entity frame's timestamp column: there is no "
        f"'{DEFAULT_TIMESTAMP_COLUMN}' column and {len(candidates)} timestamp columns "
        f"({found}); name one '{DEFAULT_TIMESTAMP_COLUMN}' or keep exactly one timestamp column"
    )


def point_in_time_join(
    entity: pa.Table,
    timestamp_column: str,
    views: Sequence[ViewJoin],
    filter_by_created_timestamp: bool = False,
    memory_limit: int | None = None,
) -> pa.Table:
    """Join every view's features onto the entity rows as of each row's timestamp.

    Returns every entity column unchanged and in order, then the requested features in request
    order (named by `ViewJoin.features`). Every entity row is kept, in input order, duplicates
    included; a row without a matching source row gets nulls. Feature columns keep their Arrow
    type (an int feature with nulls stays an int column).

    Parquet sources whose join would not fit in `memory_limit` bytes (see
    `repast.offline.budget.memory_limit` for the default and the environment override) are
    streamed row group by row group instead (`repast.offline.partitioned`), with the same result.
    """
    if isinstance(entity, pa.RecordBatch):
        entity = pa.Table.from_batches([entity])
    _check_output_names(entity, views)
    if timestamp_column not in entity.column_names:
        raise ColumnNotFoundError(
            f"the entity frame has no timestamp column '{timestamp_column}' "
            f"(columns: {', '.join(entity.column_names)})"
        )
    entity_ts = timestamps_ns(
        entity.column(timestamp_column), f"entity frame column '{timestamp_column}'"
    )
    bounds = time_bounds(entity_ts)
    opened = [open_source(view, bounds) for view in views]
    budget = partitioned.Budget.of(memory_limit)
    bounded = partitioned.choose_bounded(views, opened, entity.num_rows, budget)
    in_memory = [i for i in range(len(views)) if i not in bounded]
    columns: dict[int, list[pa.ChunkedArray | pa.Array]] = {}
    if in_memory:
        resident = [views[i] for i in in_memory]
        per_view = _join_in_memory(
            entity,
            (timestamp_column, entity_ts),
            resident,
            [read_source(views[i], opened[i]) for i in in_memory],
            filter_by_created_timestamp,
        )
        columns.update(zip(in_memory, per_view, strict=True))
    for i, plan in bounded.items():
        columns[i] = partitioned.join_view(
            views[i], plan, entity, (timestamp_column, entity_ts), filter_by_created_timestamp
        )
    names = [out for view in views for _, out in view.features]
    gathered = [column for i in range(len(views)) for column in columns[i]]
    return pa.Table.from_arrays([*entity.columns, *gathered], names=[*entity.column_names, *names])


def _join_in_memory(
    entity: pa.Table,
    entity_ts: tuple[str, pa.Array],
    views: Sequence[ViewJoin],
    sources: Sequence[pa.Table],
    filter_by_created_timestamp: bool,
) -> list[list[pa.ChunkedArray | pa.Array]]:
    """Every view's feature columns, with each view's needed source columns all in memory."""
    kernel_views = []
    for view, source in zip(views, sources, strict=True):
        entity_keys, source_keys = key_columns(view, entity, source)
        created = None
        if view.created_timestamp_column is not None:
            name = raw_time_column(view, view.created_timestamp_column, source.schema)
            created = (name, timestamps_ns(source.column(name), where(view, name)))
        ts_name = raw_time_column(view, view.timestamp_field, source.schema)
        event = (ts_name, timestamps_ns(source.column(ts_name), where(view, ts_name)))
        kernel_views.append((view.name, entity_keys, source_keys, event, created, view.ttl_ns))

    indices = _core.point_in_time_indices(entity_ts, kernel_views, filter_by_created_timestamp)

    gathers = [
        (source, raw_column(view, feature, source.schema), idx)
        for view, source, idx in zip(views, sources, indices, strict=True)
        for feature, _ in view.features
    ]
    columns = iter(gather(gathers))
    return [[next(columns) for _ in view.features] for view in views]


# --- output names ---------------------------------------------------------------------------


def _check_output_names(entity: pa.Table, views: Sequence[ViewJoin]) -> None:
    owners: dict[str, str] = {name: "the entity frame" for name in entity.column_names}
    for view in views:
        for feature, out in view.features:
            owner = owners.get(out)
            if owner is not None:
                raise FeatureNameCollisionError(
                    f"feature '{feature}' of feature view '{view.name}' would be named '{out}', "
                    f"which {owner} already uses; request it with full feature names "
                    "(view__feature) or rename one of them"
                )
            owners[out] = f"feature view '{view.name}'"


# --- sources --------------------------------------------------------------------------------


def open_source(view: ViewJoin, bounds: tuple[int, int] | None) -> pa.Table | ds.Dataset:
    """The columns the join needs of an in-memory source, or a Parquet source as a dataset
    without the files and row groups outside the time window (nothing read but metadata)."""
    if isinstance(view.source, pa.Table):
        return view.source.select(needed_columns(view, view.source.schema))
    if not isinstance(view.source, (str, os.PathLike)):
        raise OfflineStoreError(
            f"feature view '{view.name}': source must be a pyarrow Table or a Parquet path, "
            f"not {type(view.source).__name__}"
        )
    path = os.fspath(view.source)
    if "://" not in path and not Path(path).exists():
        raise SourceReadError(f"the {view.describe_source()} does not exist")
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        needed_columns(view, dataset.schema)  # fail fast on a missing column
        ts_name = raw_time_column(view, view.timestamp_field, dataset.schema)
        expression = _time_filter(dataset.schema.field(ts_name).type, ts_name, view, bounds)
        return _prune(dataset, expression)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceReadError(f"cannot read the {view.describe_source()}: {exc}") from exc


def read_source(view: ViewJoin, source: pa.Table | ds.Dataset) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    try:
        return source.to_table(columns=needed_columns(view, source.schema))
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceReadError(f"cannot read the {view.describe_source()}: {exc}") from exc


def _prune(dataset: ds.Dataset, expression: Any) -> ds.Dataset:
    """The dataset without the files and Parquet row groups that the time window excludes.

    Pruning uses partition values and row-group statistics only: the kernel applies the window
    exactly, and a row-level filter would copy every column once more.
    """
    if expression is None or not isinstance(dataset, ds.FileSystemDataset):
        return dataset
    fragments = []
    for fragment in dataset.get_fragments(filter=expression):
        if isinstance(fragment, ds.ParquetFileFragment):
            fragment = fragment.subset(filter=expression)
            if fragment.num_row_groups == 0:
                continue
        fragments.append(fragment)
    return ds.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)


def _time_filter(
    ts_type: pa.DataType, ts_name: str, view: ViewJoin, bounds: tuple[int, int] | None
) -> Any:
    """`lo <= ts <= hi` in the column's own unit, widened to whole units (the kernel is exact)."""
    if not pa.types.is_timestamp(ts_type):
        return None
    column = ds.field(ts_name)
    if bounds is None:  # no entity row has a timestamp: nothing can match
        return column.is_null() & ~column.is_null()
    lo_ns, hi_ns = bounds
    per = _NS_PER_UNIT[ts_type.unit]
    hi = -(-hi_ns // per)
    expression = column <= pa.scalar(hi, type=pa.int64()).cast(ts_type)
    ttl = view.ttl_ns
    if ttl > 0:
        lo = (lo_ns - ttl) // per
        expression = expression & (column >= pa.scalar(lo, type=pa.int64()).cast(ts_type))
    return expression


def time_bounds(entity_ts: pa.Array) -> tuple[int, int] | None:
    if entity_ts.null_count == len(entity_ts):
        return None
    lo_hi = pc.min_max(entity_ts)
    return int(lo_hi["min"].as_py()), int(lo_hi["max"].as_py())
