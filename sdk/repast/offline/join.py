"""The point-in-time join driver: Arrow in, the Rust kernel for row indices, Arrow `take` out.

For every entity row and every requested view, the kernel (`repast._core.point_in_time_indices`)
picks the source row with equal join keys and the greatest event timestamp in
`[entity_ts - ttl, entity_ts]` (both inclusive, ttl 0/None = unbounded), ties broken by the greater
created timestamp (reference §7.1). This module only prepares columns (projection, time-filter
push-down, dtype normalization) and gathers the feature columns with Arrow `take`, so feature
payloads never leave Arrow and there is no per-row Python.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from repast import _core
from repast.offline.errors import (
    ColumnNotFoundError,
    EntityTimestampInferenceError,
    FeatureNameCollisionError,
    KeyTypeMismatchError,
    OfflineStoreError,
    SourceReadError,
    TimestampTypeError,
)

__all__ = ["ViewJoin", "infer_timestamp_column", "point_in_time_join"]

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"

_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@dataclass(frozen=True)
class ViewJoin:
    """One feature view (or projection) of a point-in-time join.

    `source` is an in-memory `pyarrow.Table` or a Parquet file or directory (partitioned or
    not). Column names in `entity_join_keys` (second item), `timestamp_field`,
    `created_timestamp_column` and `features` (first item) are the names after `field_mapping`
    (`{source column: feature store name}`); the raw source column names work as well for the
    timestamp columns, as in Feast's SQL stores.

    >>> import pyarrow as pa
    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> source = pa.table({"driver_id": [1, 1], "event_timestamp": [t, t + timedelta(hours=1)],
    ...                    "trips": [10, 20]})
    >>> view = ViewJoin(name="driver_stats", source=source,
    ...                 entity_join_keys=[("driver_id", "driver_id")],
    ...                 timestamp_field="event_timestamp", features=[("trips", "trips")],
    ...                 ttl=timedelta(hours=2))
    >>> entity = pa.table({"driver_id": [1, 2], "event_timestamp": [t + timedelta(minutes=90)] * 2})
    >>> point_in_time_join(entity, "event_timestamp", [view]).column("trips").to_pylist()
    [20, None]
    """

    name: str
    source: Any  # pa.Table | str | os.PathLike[str]
    entity_join_keys: Sequence[tuple[str, str]]
    timestamp_field: str
    features: Sequence[tuple[str, str]]
    created_timestamp_column: str | None = None
    field_mapping: Mapping[str, str] = field(default_factory=dict)
    ttl: timedelta | None = None

    def __post_init__(self) -> None:
        # Freeze the sequences so the spec cannot change under a running job.
        object.__setattr__(self, "entity_join_keys", tuple(map(tuple, self.entity_join_keys)))
        object.__setattr__(self, "features", tuple(map(tuple, self.features)))
        object.__setattr__(self, "field_mapping", dict(self.field_mapping))
        if self.ttl is not None and self.ttl < timedelta(0):
            raise OfflineStoreError(f"feature view '{self.name}': ttl must not be negative")

    @property
    def ttl_ns(self) -> int:
        if self.ttl is None:
            return 0
        return (self.ttl // timedelta(microseconds=1)) * 1_000

    def describe_source(self) -> str:
        if isinstance(self.source, (str, os.PathLike)):
            return f"source '{os.fspath(self.source)}' of feature view '{self.name}'"
        return f"in-memory source of feature view '{self.name}'"


def infer_timestamp_column(schema: pa.Schema) -> str:
    """The entity frame's timestamp column (reference §7.2).

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
    entity_ts = _timestamps_ns(
        entity.column(timestamp_column), f"entity frame column '{timestamp_column}'"
    )
    bounds = _time_bounds(entity_ts)
    opened = [_open_source(view, bounds) for view in views]
    # Imported here: the bounded path reuses this module's column helpers.
    from repast.offline import partitioned

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
            [_read(views[i], opened[i]) for i in in_memory],
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
        entity_keys, source_keys = _key_columns(view, entity, source)
        created = None
        if view.created_timestamp_column is not None:
            name = _raw_time_column(view, view.created_timestamp_column, source.schema)
            created = (name, _timestamps_ns(source.column(name), _where(view, name)))
        ts_name = _raw_time_column(view, view.timestamp_field, source.schema)
        event = (ts_name, _timestamps_ns(source.column(ts_name), _where(view, ts_name)))
        kernel_views.append((view.name, entity_keys, source_keys, event, created, view.ttl_ns))

    indices = _core.point_in_time_indices(entity_ts, kernel_views, filter_by_created_timestamp)

    gathers = [
        (source, _raw_column(view, feature, source.schema), idx)
        for view, source, idx in zip(views, sources, indices, strict=True)
        for feature, _ in view.features
    ]
    columns = iter(_gather(gathers))
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


def _where(view: ViewJoin, column: str) -> str:
    return f"column '{column}' of the {view.describe_source()}"


def _raw_column(view: ViewJoin, name: str, schema: pa.Schema) -> str:
    """The source column that `field_mapping` maps to `name` (or `name` itself)."""
    for raw, mapped in view.field_mapping.items():
        if mapped == name and raw in schema.names:
            return raw
    if name in schema.names and name not in view.field_mapping:
        return name
    raise ColumnNotFoundError(
        f"the {view.describe_source()} has no column '{name}'"
        + (f" (after field_mapping {view.field_mapping})" if view.field_mapping else "")
        + f"; it has: {', '.join(schema.names)}"
    )


def _raw_time_column(view: ViewJoin, name: str, schema: pa.Schema) -> str:
    # Feast's SQL stores read `timestamp_field` on the raw table, the Dask store after the
    # mapping: accept either.
    if name in schema.names:
        return name
    return _raw_column(view, name, schema)


def _needed_columns(view: ViewJoin, schema: pa.Schema) -> list[str]:
    names = [_raw_column(view, src, schema) for _, src in view.entity_join_keys]
    names.append(_raw_time_column(view, view.timestamp_field, schema))
    if view.created_timestamp_column is not None:
        names.append(_raw_time_column(view, view.created_timestamp_column, schema))
    names.extend(_raw_column(view, feature, schema) for feature, _ in view.features)
    return list(dict.fromkeys(names))


def _open_source(view: ViewJoin, bounds: tuple[int, int] | None) -> pa.Table | ds.Dataset:
    """The columns the join needs of an in-memory source, or a Parquet source as a dataset
    without the files and row groups outside the time window (nothing read but metadata)."""
    if isinstance(view.source, pa.Table):
        return view.source.select(_needed_columns(view, view.source.schema))
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
        _needed_columns(view, dataset.schema)  # fail fast on a missing column
        ts_name = _raw_time_column(view, view.timestamp_field, dataset.schema)
        expression = _time_filter(dataset.schema.field(ts_name).type, ts_name, view, bounds)
        return _prune(dataset, expression)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceReadError(f"cannot read the {view.describe_source()}: {exc}") from exc


def _read(view: ViewJoin, source: pa.Table | ds.Dataset) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    try:
        return source.to_table(columns=_needed_columns(view, source.schema))
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


# --- column normalization -------------------------------------------------------------------


def _single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        if column.num_chunks == 0:
            return pa.array([], type=column.type)
        return column.combine_chunks()
    return column


def _timestamps_ns(column: pa.ChunkedArray | pa.Array, where: str) -> pa.Array:
    """Int64 nanoseconds since the epoch, UTC (naive timestamps are taken as UTC)."""
    kind = column.type
    try:
        if pa.types.is_timestamp(kind):
            if kind.unit != "ns":
                column = column.cast(pa.timestamp("ns", kind.tz))
        elif pa.types.is_date(kind):
            column = column.cast(pa.timestamp("ns"))
        else:
            raise TimestampTypeError(f"{where} is {kind}, not a timestamp")
        return _single_array(column.cast(pa.int64()))
    except pa.ArrowInvalid as exc:
        raise TimestampTypeError(f"{where}: {exc}") from exc


_INT = "integer"
_STR = "string"
_BIN = "binary"


def _key_kind(kind: pa.DataType) -> str | None:
    if pa.types.is_dictionary(kind):
        return _key_kind(kind.value_type)
    if pa.types.is_integer(kind):
        return _INT
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _STR
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_binary_view(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        return _BIN
    if pa.types.is_null(kind):
        return None
    raise TypeError(f"{kind} cannot be a join key (use integers, strings or bytes)")


_KERNEL_TYPE = {_INT: pa.int64(), _STR: pa.large_string(), _BIN: pa.large_binary()}


def _key_array(column: pa.ChunkedArray, kind: str, where: str) -> pa.Array:
    """The column as int64, or as string/large_string/binary/large_binary (kept zero-copy)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    current = column.type
    keep = (
        pa.types.is_int64(current)
        or pa.types.is_string(current)
        or pa.types.is_large_string(current)
        or pa.types.is_binary(current)
        or pa.types.is_large_binary(current)
    )
    if not keep:
        try:
            column = column.cast(_KERNEL_TYPE[kind])
        except pa.ArrowInvalid as exc:
            raise KeyTypeMismatchError(f"{where}: {exc}") from exc
    return _single_array(column)


def _key_columns(
    view: ViewJoin, entity: pa.Table, source: pa.Table
) -> tuple[list[tuple[str, pa.Array]], list[tuple[str, pa.Array]]]:
    entity_keys: list[tuple[str, pa.Array]] = []
    source_keys: list[tuple[str, pa.Array]] = []
    for entity_name, source_name in view.entity_join_keys:
        if entity_name not in entity.column_names:
            raise ColumnNotFoundError(
                f"the entity frame has no column '{entity_name}', a join key of feature view "
                f"'{view.name}' (entity columns: {', '.join(entity.column_names)})"
            )
        raw = _raw_column(view, source_name, source.schema)
        e_col = entity.column(entity_name)
        s_col = source.column(raw)
        where_e = f"entity frame column '{entity_name}'"
        where_s = _where(view, raw)
        try:
            e_kind = _key_kind(e_col.type)
        except TypeError as exc:
            raise KeyTypeMismatchError(f"{where_e}: {exc}") from exc
        try:
            s_kind = _key_kind(s_col.type)
        except TypeError as exc:
            raise KeyTypeMismatchError(f"{where_s}: {exc}") from exc
        if e_kind is not None and s_kind is not None and e_kind != s_kind:
            raise KeyTypeMismatchError(
                f"join key of feature view '{view.name}': {where_e} is {e_col.type} but "
                f"{where_s} is {s_col.type}; both must be integers, or both strings"
            )
        kind = e_kind or s_kind or _INT
        entity_keys.append((entity_name, _key_array(e_col, kind, where_e)))
        source_keys.append((raw, _key_array(s_col, kind, where_s)))
    return entity_keys, source_keys


def _time_bounds(entity_ts: pa.Array) -> tuple[int, int] | None:
    if entity_ts.null_count == len(entity_ts):
        return None
    lo_hi = pc.min_max(entity_ts)
    return int(lo_hi["min"].as_py()), int(lo_hi["max"].as_py())


# --- gathering ------------------------------------------------------------------------------


def _fixed_width(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_boolean(kind)
    )


def _take_fixed_width(values: pa.Array, indices: pa.Array) -> pa.Array:
    """`values.take(indices)` for a fixed-width type, a few times faster than Arrow's take when
    values or indices have nulls: the values are gathered without validity (Arrow's fast path),
    then the validity bits on their own, and the two are put back together."""
    everywhere = pa.Array.from_buffers(
        indices.type, len(indices), [None, indices.buffers()[1]], offset=indices.offset
    )
    data = pa.Array.from_buffers(
        values.type, len(values), [None, values.buffers()[1]], offset=values.offset
    ).take(everywhere)
    valid = None
    if values.null_count:
        bits = pa.Array.from_buffers(
            pa.bool_(), len(values), [None, values.buffers()[0]], offset=values.offset
        )
        valid = bits.take(everywhere)
    if indices.null_count:
        matched = pa.Array.from_buffers(
            pa.bool_(), len(indices), [None, indices.buffers()[0]], offset=indices.offset
        )
        valid = matched if valid is None else pc.and_(valid, matched)
    if valid is None:
        return data
    if valid.offset:  # only a sliced `indices` gives one; realign the bits to `data`'s
        valid = pc.and_(valid, pa.scalar(True))
    return pa.Array.from_buffers(
        values.type, len(indices), [valid.buffers()[1], data.buffers()[1]], null_count=-1
    )


def _take(job: tuple[pa.Table, str, pa.Array]) -> pa.ChunkedArray | pa.Array:
    source, name, indices = job
    column = source.column(name)
    if len(indices) == 0 or len(column) == 0:
        return pa.nulls(len(indices), type=column.type)
    # Concatenating first is cheaper than taking from many chunks (one memcpy against a chunk
    # lookup per index).
    values = _single_array(column)
    if _fixed_width(values.type) and (values.null_count or indices.null_count):
        return _take_fixed_width(values, indices)
    return values.take(indices)


def _gather(jobs: list[tuple[pa.Table, str, pa.Array]]) -> list[pa.ChunkedArray | pa.Array]:
    if len(jobs) <= 1:
        return [_take(job) for job in jobs]
    # Arrow's take releases the GIL: gather the feature columns in parallel.
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return list(pool.map(_take, jobs))
