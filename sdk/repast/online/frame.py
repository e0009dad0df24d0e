"""`{column: [values]}` rows → a pyarrow Table typed by the views they are written to.

The feature server's pushes arrive as JSON lists, and the SDK takes the same shape as a dict:
both become Arrow here, so a value is read the same way whichever door it came in by. Numeric
feature columns take their view's type (integers exactly: `1001.7` is refused, `1001.0` kept),
timestamp columns are parsed from ISO 8601 (naive means UTC, as Feast reads them), and anything
else is inferred by Arrow and cast by the writer, which names the column when it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.conversion import BAD_VALUES, exact_array, has_hidden_bools
from repast.errors import RepastError, RowsError
from repast.feature_view import FeatureView
from repast.online.base import TIMESTAMP
from repast.online.stored_types import zoned_inputs
from repast.online.write import epoch_nanos, write_plan
from repast.value_type import ValueType

__all__ = ["frame", "typed_sources"]


def _nested_sources(views: Sequence[FeatureView]) -> frozenset[str]:
    """Source column names of features stored as JSON text (Map, Struct, ...)."""
    names: set[str] = set()
    for view in views:
        if getattr(view, "aggregations", None):
            continue  # its events feed tiles: numbers and strings, never nested values
        plan = write_plan(view)
        reverse = {v: k for k, v in plan.mapping.items()}
        names.update(reverse.get(name, name) for name in plan.json_text)
    return frozenset(names)


def _zoned_sources(views: Sequence[FeatureView]) -> frozenset[str]:
    """Source column names of ZONED_TIMESTAMP features."""
    names: set[str] = set()
    for view in views:
        if getattr(view, "aggregations", None):
            continue
        plan = write_plan(view)
        reverse = {v: k for k, v in plan.mapping.items()}
        names.update(reverse.get(name, name) for name in plan.zoned)
    return frozenset(names)


def typed_sources(views: Sequence[FeatureView]) -> tuple[frozenset[str], frozenset[str]]:
    """Source column names of the views' ScalarMap features and of their ZonedTimestamp
    features: what a DataFrame holds as Python objects Arrow cannot convert as they are
    (dicts with int keys; datetimes in several zones)."""
    maps: set[str] = set()
    for view in views:
        if getattr(view, "aggregations", None):
            continue
        plan = write_plan(view)
        reverse = {v: k for k, v in plan.mapping.items()}
        maps.update(
            reverse.get(name, name)
            for name, (vt, _) in plan.json_text.items()
            if vt == ValueType.SCALAR_MAP
        )
    return frozenset(maps), _zoned_sources(views)


def _json_cells(name: str, values: list[Any]) -> pa.Array | None:
    """A nested feature's values as JSON text cells: one `orjson.dumps` of the whole list,
    split in Rust, so each value keeps exactly its own keys for the writer's checks (a
    ScalarMap's int, float or bool keys as their JSON text). None when the values have no
    JSON form (bytes): Arrow inference then takes them."""
    try:
        return _core.json_array_cells(orjson.dumps(values, option=orjson.OPT_NON_STR_KEYS), name)
    except (TypeError, RepastError):
        return None


_NUMERIC = frozenset([pa.int32(), pa.int64(), pa.float32(), pa.float64()])


@dataclass(frozen=True)
class _Sources:
    timestamp_sources: frozenset[str]
    numeric_sources: dict[str, pa.DataType]


def _sources(view: FeatureView) -> Any:
    """The view's cached write plan, or for an aggregated view (whose events go into tiles)
    the same two facts about its aggregations' inputs."""
    inputs = getattr(view, "aggregation_inputs", None)
    if not getattr(view, "aggregations", None) or inputs is None:
        return write_plan(view)
    source = view.batch_source
    raw = {mapped: name for name, mapped in (source.field_mapping or {}).items()}
    stamps = [source.timestamp_field, getattr(view, "timestamp_field", "")]
    numeric = {
        raw.get(f.name, f.name): f.dtype.to_arrow_type()
        for f in inputs
        if f.dtype.to_arrow_type() in _NUMERIC
    }
    return _Sources(frozenset(raw.get(n, n) for n in stamps if n), numeric)


def _column_types(views: Sequence[FeatureView]) -> tuple[frozenset[str], dict[str, pa.DataType]]:
    """Source column names that must become timestamps, and those of numeric features with
    their Arrow type (from each view's cached write plan)."""
    plans = [_sources(v) for v in views]
    if len(plans) == 1:
        return plans[0].timestamp_sources, plans[0].numeric_sources
    numeric: dict[str, pa.DataType] = {}
    for plan in plans:
        for name, arrow in plan.numeric_sources.items():
            numeric.setdefault(name, arrow)
    # Views that disagree on a column's type: let Arrow infer it and each view cast.
    for plan in plans:
        for name, arrow in plan.numeric_sources.items():
            if numeric.get(name) != arrow:
                numeric.pop(name, None)
    return frozenset().union(*(p.timestamp_sources for p in plans)), numeric


def _parse_timestamps(array: pa.Array, column: str) -> pa.Array:
    if pa.types.is_integer(array.type):
        return epoch_nanos(array).cast(TIMESTAMP, safe=False)  # as Feast: nanoseconds
    try:
        return array.cast(TIMESTAMP)
    except pa.ArrowInvalid:
        pass
    try:
        # No zone offset: UTC, as Feast (pandas) reads naive timestamps.
        return pc.assume_timezone(array.cast(pa.timestamp("us")), "UTC")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RowsError(f"column '{column}' must hold ISO 8601 timestamps: {exc}") from None


_BAD_VALUES = (*BAD_VALUES, RepastError)


def _typed(values: list[Any], target: pa.DataType) -> pa.Array:
    """`values` as a numeric feature's type: floats straight (float32 without a float64
    detour); integers inferred, then cast safely (`exact_array`), because
    `pa.array([2.5], pa.int64())` silently truncates to 2 where Feast refuses the value (a
    whole 2.0 is kept)."""
    if pa.types.is_integer(target):
        return exact_array(values, target, "column")
    return pa.array(values, target)


def _array(name: str, values: list[Any], target: pa.DataType | None) -> pa.Array:
    if target is not None:
        # Values that do not fit fall through to inference, whose cast on write reports
        # them with the column's name.
        try:
            return _typed(values, target)
        except _BAD_VALUES:
            pass
    try:
        array = pa.array(values)
    except _BAD_VALUES as exc:
        raise RowsError(f"column '{name}' holds values of mixed or bad types: {exc}") from None
    if has_hidden_bools(values, array):
        # `[1001.0, true]` infers as doubles: the boolean would be stored as the number 1.
        row = next(i for i, v in enumerate(values) if isinstance(v, bool))
        raise RowsError(f"column '{name}': row {row} is {values[row]!r}, among numbers")
    return array


def frame(columns: Mapping[str, list[Any]], rows: int, views: Sequence[FeatureView]) -> pa.Table:
    """`{column: [values]}` (lists of `rows` values, as JSON gives them) as a table whose
    numeric feature columns have the views' types and whose timestamp columns are parsed;
    a `RowsError` names the column that cannot be."""
    timestamps, numeric = _column_types(views)
    # None when some numeric value needs inference or is bad: then every column is built on
    # its own, so the error (which column, which message) is the one it always was.
    built = _numeric_groups(columns, rows, numeric, timestamps)
    nested = _nested_sources(views)
    zoned = _zoned_sources(views)
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        array = built.get(name) if built is not None else None
        if array is None and name in nested:
            array = _json_cells(name, values)
        if array is None and name in zoned:
            # Datetimes as text in their own zones (Arrow would put a column in one zone).
            values = zoned_inputs(values, name)
        if array is None:
            array = _array(name, values, numeric.get(name))
        if name in timestamps and (pa.types.is_string(array.type) or array.null_count == rows):
            array = _parse_timestamps(array.cast(pa.string()), name)
        arrays[name] = array
    # A RecordBatch then a Table: about half the cost of `pa.table(dict)` for 50 columns.
    batch = pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))
    return pa.Table.from_batches([batch])


# Above this many rows the copy into one list costs more than the `pa.array` calls it saves
# (measured: even at ~250 rows, ahead by 1.7x at 16 rows, behind at 1,000).
_GROUP_ROWS = 128


def _numeric_groups(
    columns: Mapping[str, list[Any]],
    rows: int,
    numeric: Mapping[str, pa.DataType],
    timestamps: frozenset[str],
) -> dict[str, pa.Array] | None:
    """The numeric feature columns, built as one `pa.array` per Arrow type (all their values
    back to back) and sliced: a `pa.array` call costs ~3 us whatever its length, so one per
    type instead of one per column. `pa.array(values, type)` converts each value on its own,
    so a slice holds what the column's own call would make. None when a group fails, or for
    large pushes."""
    if rows > _GROUP_ROWS:
        return None
    groups: dict[pa.DataType, list[str]] = {}
    for name in columns:
        target = numeric.get(name)
        if target is not None and name not in timestamps:
            groups.setdefault(target, []).append(name)
    arrays: dict[str, pa.Array] = {}
    try:
        for target, names in groups.items():
            if len(names) == 1:
                arrays[names[0]] = _typed(columns[names[0]], target)
                continue
            # `chain` concatenates in C: no Python step per value for large pushes.
            flat = _typed(list(chain.from_iterable(columns[n] for n in names)), target)
            for i, name in enumerate(names):
                arrays[name] = flat.slice(i * rows, rows)
    except _BAD_VALUES:
        return None
    return arrays
