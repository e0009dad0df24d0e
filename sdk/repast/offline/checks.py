"""Rows checked and cast for an offline write, whatever the source (`repast.offline.write` for
FileSources, `repast.spark.write` for SparkSources): the exact column set, the source's order,
its types, and the first row that does not convert named."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from repast.data_source import DataSource
from repast.errors import OfflineWriteError, RepastError
from repast.online.stored_types import json_column, python_values
from repast.value_type import ValueType

__all__ = ["cast_to", "check_columns", "unmapped"]


def unmapped(table: pa.Table, source: DataSource, schema: pa.Schema) -> pa.Table:
    """Columns named as the feature store names them (after `field_mapping`) get the source's
    own names back; columns already named as in the source stay."""
    if not source.field_mapping:
        return table
    back = {mapped: raw for raw, mapped in source.field_mapping.items()}
    names = [
        back[c] if c not in schema.names and back.get(c) in schema.names else c
        for c in table.column_names
    ]
    return table.rename_columns(names)


def _listing(names: list[str]) -> str:
    return "[" + ", ".join(f"'{n}'" for n in names) + "]"


def check_columns(
    table: pa.Table, schema: pa.Schema, view: str, location: str, reorder: bool, what: str
) -> pa.Table:
    have = table.column_names
    duplicated = sorted({c for c in have if have.count(c) > 1})
    if duplicated:
        raise OfflineWriteError(
            f"{what} for feature view '{view}' has duplicated columns {_listing(duplicated)}"
        )
    missing = [c for c in schema.names if c not in have]
    extra = [c for c in have if c not in schema.names]
    if missing or extra:
        raise OfflineWriteError(
            f"{what} for feature view '{view}': its columns must be exactly those of the batch "
            f"source '{location}' {_listing(schema.names)}; missing {_listing(missing)}, "
            f"extra {_listing(extra)}"
        )
    if have != schema.names:
        if not reorder:
            raise OfflineWriteError(
                f"{what} for feature view '{view}': columns {_listing(have)} are not in the "
                f"order of the batch source '{location}' {_listing(schema.names)} (pass "
                "reorder_columns=True)"
            )
        table = table.select(schema.names)
    return table


def _try_cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_string(array.type) and pa.types.is_timestamp(target):
        # A ZonedTimestamp given as Python datetimes in several zones arrives as
        # `<isoformat>[<zone>]` text (online/stored_types.py): the file's column keeps the
        # instant, in its own zone.
        array = pc.replace_substring_regex(array, pattern=r"\[[^\[]*\]$", replacement="")
    elif pa.types.is_string(array.type) and pa.types.is_map(target):
        # A ScalarMap given as Python dicts arrives as its stored JSON text (typed keys).
        try:
            maps = python_values(json_column(array), int(ValueType.SCALAR_MAP))
            return pa.array(maps, target)
        except (RepastError, ValueError, TypeError, pa.ArrowTypeError) as exc:
            raise pa.ArrowInvalid(str(exc)) from None
    # Timestamps may lose sub-unit digits (as online writes do); anything else converts exactly.
    return array.cast(target, safe=not pa.types.is_timestamp(target))


def _first_bad_row(array: pa.Array, target: pa.DataType) -> int:
    """The first row that does not cast: bisection over slices (about 2n values cast)."""
    lo, hi = 0, len(array)  # the bad row is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _try_cast(array.slice(lo, mid - lo), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


def cast_to(table: pa.Table, schema: pa.Schema, view: str, location: str, what: str) -> pa.Table:
    columns = []
    for name, field in zip(schema.names, schema, strict=True):
        column = table.column(name)
        if column.type == field.type:
            columns.append(column)
            continue
        array = column.combine_chunks()
        try:
            columns.append(_try_cast(array, field.type))
        except pa.ArrowNotImplementedError:
            raise OfflineWriteError(
                f"{what} for feature view '{view}': column '{name}' is {array.type} and cannot "
                f"be stored as {field.type} (the type of '{name}' in the batch source "
                f"'{location}')"
            ) from None
        except pa.ArrowInvalid as exc:
            row = _first_bad_row(array, field.type)
            raise OfflineWriteError(
                f"{what} for feature view '{view}': column '{name}' ({array.type}) cannot be "
                f"stored as {field.type} (its type in the batch source '{location}'): row "
                f"{row} holds {array[row].as_py()!r} ({exc})"
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)
