"""Column helpers shared by the in-memory join (`join.py`) and the bounded one
(`partitioned.py`): which source columns a view needs (after `field_mapping`), join keys and
timestamps normalized to what the Rust kernel takes, and feature columns gathered with Arrow
`take` (in parallel: it releases the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import ColumnNotFoundError, KeyTypeMismatchError, TimestampTypeError
from repast.offline.view import ViewJoin

__all__ = [
    "KERNEL_TYPE",
    "gather",
    "key_array",
    "key_columns",
    "key_kind",
    "needed_columns",
    "raw_column",
    "raw_time_column",
    "single_array",
    "timestamps_ns",
    "where",
]


# --- sources --------------------------------------------------------------------------------


def where(view: ViewJoin, column: str) -> str:
    return f"column '{column}' of the {view.describe_source()}"


def raw_column(view: ViewJoin, name: str, schema: pa.Schema) -> str:
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


def raw_time_column(view: ViewJoin, name: str, schema: pa.Schema) -> str:
    # Feast's SQL stores read `timestamp_field` on the raw table, the Dask store after the
    # mapping: accept either.
    if name in schema.names:
        return name
    return raw_column(view, name, schema)


def needed_columns(view: ViewJoin, schema: pa.Schema) -> list[str]:
    names = [raw_column(view, src, schema) for _, src in view.entity_join_keys]
    names.append(raw_time_column(view, view.timestamp_field, schema))
    if view.created_timestamp_column is not None:
        names.append(raw_time_column(view, view.created_timestamp_column, schema))
    names.extend(raw_column(view, feature, schema) for feature, _ in view.features)
    return list(dict.fromkeys(names))


# --- column normalization -------------------------------------------------------------------


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        if column.num_chunks == 0:
            return pa.array([], type=column.type)
        return column.combine_chunks()
    return column


def timestamps_ns(column: pa.ChunkedArray | pa.Array, where: str) -> pa.Array:
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
        return single_array(column.cast(pa.int64()))
    except pa.ArrowInvalid as exc:
        raise TimestampTypeError(f"{where}: {exc}") from exc


_INT = "integer"
_STR = "string"
_BIN = "binary"


def key_kind(kind: pa.DataType) -> str | None:
    if pa.types.is_dictionary(kind):
        return key_kind(kind.value_type)
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


KERNEL_TYPE = {_INT: pa.int64(), _STR: pa.large_string(), _BIN: pa.large_binary()}


def key_array(column: pa.ChunkedArray, kind: str, where: str) -> pa.Array:
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
            column = column.cast(KERNEL_TYPE[kind])
        except pa.ArrowInvalid as exc:
            raise KeyTypeMismatchError(f"{where}: {exc}") from exc
    return single_array(column)


def key_columns(
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
        raw = raw_column(view, source_name, source.schema)
        e_col = entity.column(entity_name)
        s_col = source.column(raw)
        where_e = f"entity frame column '{entity_name}'"
        where_s = where(view, raw)
        try:
            e_kind = key_kind(e_col.type)
        except TypeError as exc:
            raise KeyTypeMismatchError(f"{where_e}: {exc}") from exc
        try:
            s_kind = key_kind(s_col.type)
        except TypeError as exc:
            raise KeyTypeMismatchError(f"{where_s}: {exc}") from exc
        if e_kind is not None and s_kind is not None and e_kind != s_kind:
            raise KeyTypeMismatchError(
                f"join key of feature view '{view.name}': {where_e} is {e_col.type} but "
                f"{where_s} is {s_col.type}; both must be integers, or both strings"
            )
        kind = e_kind or s_kind or _INT
        entity_keys.append((entity_name, key_array(e_col, kind, where_e)))
        source_keys.append((raw, key_array(s_col, kind, where_s)))
    return entity_keys, source_keys


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
    values = single_array(column)
    if _fixed_width(values.type) and (values.null_count or indices.null_count):
        return _take_fixed_width(values, indices)
    return values.take(indices)


def gather(jobs: list[tuple[pa.Table, str, pa.Array]]) -> list[pa.ChunkedArray | pa.Array]:
    if len(jobs) <= 1:
        return [_take(job) for job in jobs]
    # Arrow's take releases the GIL: gather the feature columns in parallel.
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return list(pool.map(_take, jobs))
