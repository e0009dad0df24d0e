"""Kafka message values → an Arrow table of one feature view's columns.

A message is one JSON object whose fields are the source columns
(docs/feast-compatibility.md §12.2). orjson parses each message; each column is then one
list built from the parsed objects and one Arrow conversion, so no per-value Python runs on
the happy path. Only a column that fails to convert as a whole is re-checked value by
value, to name the rows that are wrong.

A Map, Struct, ScalarMap (their lists, VALUE_LIST, VALUE_SET) feature's values become JSON
text cells, as a /push body's do (one `orjson.dumps` of the column, split in Rust), checked by
the writer's own converter so that a value the store would refuse is rejected here, with its
message.

Rows that cannot be stored (not a JSON object, a missing or wrongly typed join key, a
missing or unparseable event time, a wrongly typed feature) are returned beside the table
with the reason, for the dead-letter queue; they never stop the batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.data_source import DataSource
from repast.errors import RepastError
from repast.feature_view import FeatureView
from repast.online.base import TIMESTAMP
from repast.online.stored_types import JSON_TEXT
from repast.stream.dead_letter import Rejection
from repast.value_type import ValueType

__all__ = ["Decoded", "MessageDecoder", "parse_timestamps"]

# Epoch numbers are read by magnitude: below 1e11 they are seconds (1e11 s is the year 5138),
# below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
_EPOCH_LIMITS = np.array([1e11, 1e14, 1e17])
_EPOCH_TO_MICROS = np.array([1e6, 1e3, 1.0, 1e-3])
_ZONED = r"(Z|z|[+-]\d\d:?\d\d)$"
_NS_UTC = pa.timestamp("ns", tz="UTC")


@dataclass
class Decoded:
    """A batch after decoding: the good rows (view column names, typed) and the bad ones."""

    table: pa.Table
    """Join keys, the event time (`event_timestamp_column`) and every feature of the view
    (null where a message lacks the field)."""
    rows: np.ndarray
    """For each row of `table`, the index of its message in the batch."""
    errors: dict[int, Rejection]
    """Message index → why it was rejected."""


class _ColumnError(Exception):
    """A column did not convert as a whole."""


def _numbers_to_timestamps(array: pa.Array) -> pa.Array:
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(array.type):
        # Whole numbers stay integers: nanoseconds do not fit a double exactly.
        ints = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy()
        unit = np.searchsorted(_EPOCH_LIMITS, np.abs(ints), side="right")
        micros = np.select(
            [unit == 0, unit == 1, unit == 2], [ints * 1_000_000, ints * 1_000, ints], ints // 1_000
        )
        return pa.array(micros, pa.int64(), mask=nulls).cast(TIMESTAMP)
    values = pc.fill_null(pc.cast(array, pa.float64()), 0.0).to_numpy()
    unit = np.searchsorted(_EPOCH_LIMITS, np.abs(np.nan_to_num(values)), side="right")
    scaled = np.round(values * _EPOCH_TO_MICROS[unit])
    valid = np.isfinite(scaled) & (np.abs(scaled) < 9.2e18)
    micros = np.where(valid, scaled, 0).astype(np.int64)
    return pa.array(micros, pa.int64(), mask=nulls | ~valid).cast(TIMESTAMP)


def _strings_to_timestamps(array: pa.Array) -> pa.Array:
    # Naive times are UTC; Arrow parses ISO 8601 with a zone only into a zoned type.
    zoned = pc.match_substring_regex(array, _ZONED)
    with_zone = pc.if_else(zoned, array, pc.binary_join_element_wise(array, "Z", ""))
    return pc.cast(pc.cast(with_zone, _NS_UTC), TIMESTAMP, safe=False)


def _timestamp_scalar(value: Any) -> int | None:
    """Microseconds for one value, for the slow path; None when it is not a time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        column = _numbers_to_timestamps(pa.array([value], pa.float64()))
        micros = column.cast(pa.int64())[0].as_py()
        return int(micros) if micros is not None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return None


def parse_timestamps(values: Sequence[Any]) -> tuple[pa.Array, dict[int, str]]:
    """Event times from ISO 8601 strings or epoch numbers (s, ms, µs or ns by magnitude)
    as `timestamp[us, UTC]`; values that are not times become null and are reported."""
    try:
        array = pa.array(values, from_pandas=False)
        if pa.types.is_string(array.type):
            return _strings_to_timestamps(array), {}
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            return _numbers_to_timestamps(array), {}
        if pa.types.is_null(array.type):
            return pa.nulls(len(values), TIMESTAMP), {}
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    # Mixed kinds, or a value Arrow cannot parse: one value at a time, naming the bad ones.
    micros: list[int | None] = []
    errors: dict[int, str] = {}
    for i, value in enumerate(values):
        parsed = None if value is None else _timestamp_scalar(value)
        if value is not None and parsed is None:
            errors[i] = f"{_short(value)} is not an ISO 8601 time or an epoch number"
        micros.append(parsed)
    return pa.array(micros, pa.int64()).cast(TIMESTAMP), errors


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(values: list[Any], target: pa.DataType) -> pa.Array:
    """One column to `target`, exactly (no truncation, no bool-as-number, no number-as-text);
    raises `_ColumnError` when any value does not fit."""
    if pa.types.is_timestamp(target):
        array, errors = parse_timestamps(values)
        if errors:
            raise _ColumnError
        return array.cast(target)
    try:
        array = pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise _ColumnError from exc
    source = array.type
    if pa.types.is_null(source) or source == target:
        return array.cast(target)
    numeric = pa.types.is_integer(source) or pa.types.is_floating(source)
    allowed = (
        (numeric and (pa.types.is_integer(target) or pa.types.is_floating(target)))
        or (pa.types.is_string(source) and pa.types.is_binary(target))
        or (pa.types.is_list(source) and pa.types.is_list(target))
    )
    if not allowed:
        raise _ColumnError
    try:
        return array.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise _ColumnError from exc


def _convert_each(
    values: list[Any], target: pa.DataType, label: str
) -> tuple[pa.Array, dict[int, str]]:
    """The slow path for a column that failed as a whole: convert value by value."""
    good: list[Any] = []
    errors: dict[int, str] = {}
    for i, value in enumerate(values):
        try:
            _convert([value], target)
            good.append(value)
        except _ColumnError:
            errors[i] = f"{label} {_short(value)} is not a valid {target}"
            good.append(None)
    return _convert(good, target), errors


_WHERE = re.compile(r"^column '[^']*'(?: row \d+)?: ")


def _nested_cells(
    values: list[Any], value_type: int, declared: pa.DataType, name: str, label: str
) -> tuple[pa.Array, dict[int, str]]:
    """A nested feature's values as JSON text cells, each checked as the writer will check it
    (`stored_types.to_json_text`); a value it refuses is null here and named in the errors.
    Only when the column fails as a whole is each value converted on its own, to name every
    bad one."""
    try:
        cells = _core.json_array_cells(orjson.dumps(values), name)
        _core.nested_json_text(cells, value_type, declared, name)
        return cells, {}
    except RepastError:
        pass
    texts: list[str | None] = []
    errors: dict[int, str] = {}
    for i, value in enumerate(values):
        try:
            cell = _core.json_array_cells(orjson.dumps([value]), name)
            _core.nested_json_text(cell, value_type, declared, name)
            texts.append(cell[0].as_py())
        except RepastError as exc:
            errors[i] = f"{label} {_WHERE.sub('', str(exc))}"
            texts.append(None)
    return pa.array(texts, pa.string()), errors


@dataclass(frozen=True)
class _Column:
    name: str
    """The view's column name (after `field_mapping`)."""
    source: str
    """The JSON field (before `field_mapping`)."""
    type: pa.DataType
    role: str
    """'join key', 'event time' or 'feature'."""
    nested: tuple[int, pa.DataType] | None = None
    """A feature stored as JSON text: its Feast value type and declared Arrow type."""


def _nested_type(dtype: Any) -> tuple[int, pa.DataType] | None:
    value_type = int(dtype.to_value_type())
    return (value_type, dtype.to_arrow_type()) if value_type in JSON_TEXT else None


def _feature_column(name: str, source: str, dtype: Any) -> _Column:
    """A feature's column. A ZonedTimestamp stays text: the writer reads its offset or
    `[zone]` (online/stored_types.py), which a UTC timestamp loses; a nested feature is JSON
    text (`_nested_cells`)."""
    nested = _nested_type(dtype)
    if nested is not None or dtype.to_value_type() == ValueType.ZONED_TIMESTAMP:
        return _Column(name, source, pa.string(), "feature", nested)
    return _Column(name, source, dtype.to_arrow_type(), "feature")


class MessageDecoder:
    """Decodes message values for one view; see the module docstring."""

    def __init__(self, view: FeatureView, source: DataSource) -> None:
        self.view = view
        mapping = source.field_mapping or {}
        raw_of = {mapped: raw for raw, mapped in mapping.items()}
        self.event_timestamp_column = mapping.get(source.timestamp_field, source.timestamp_field)
        by_name = {f.name: f for f in view.entity_columns}
        join_keys = list(view.join_keys)
        columns = [
            _Column(k, raw_of.get(k, k), by_name[k].dtype.to_arrow_type(), "join key")
            for k in join_keys
            if k in by_name
        ]
        columns.append(
            _Column(self.event_timestamp_column, source.timestamp_field, TIMESTAMP, "event time")
        )
        # An aggregated view's messages carry its aggregations' inputs, not its features.
        fields = getattr(view, "aggregation_inputs", None) or view.features
        columns += [
            _feature_column(f.name, raw_of.get(f.name, f.name), f.dtype)
            for f in fields
            if f.name not in join_keys
        ]
        self.columns = columns
        # Join keys whose type is unknown (an entity without a schema column) cannot be encoded.
        self.untyped_join_keys = [k for k in join_keys if k not in by_name]

    def decode(self, values: Sequence[bytes | None]) -> Decoded:
        errors: dict[int, Rejection] = {}
        objects: list[dict[str, Any]] = []
        positions: list[int] = []
        for i, value in enumerate(values):
            try:
                obj = orjson.loads(value) if value is not None else None
            except orjson.JSONDecodeError as exc:
                errors[i] = Rejection("not_json", f"not JSON: {exc}")
                continue
            if not isinstance(obj, dict):
                errors[i] = Rejection("not_json", f"not a JSON object: {_short(obj)}")
                continue
            objects.append(obj)
            positions.append(i)
        rows = np.asarray(positions, dtype=np.int64)
        arrays: dict[str, pa.Array] = {}
        bad = np.zeros(len(objects), dtype=bool)
        for column in self.columns:
            array, column_errors = self._column(column, objects)
            wrong = "bad_timestamp" if column.role == "event time" else "wrong_type"
            for row, message in column_errors.items():
                errors.setdefault(int(rows[row]), Rejection(wrong, message))
                bad[row] = True
            if column.role != "feature":
                missing = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                reason = "bad_timestamp" if column.role == "event time" else "missing_join_key"
                message = f"{column.role} '{column.source}' is missing or null"
                for missing_row in np.flatnonzero(missing & ~bad).tolist():
                    errors.setdefault(int(rows[missing_row]), Rejection(reason, message))
                bad |= missing
            arrays[column.name] = array
        # A feature field a message lacks is null, as Spark's from_json reads it
        # (docs/feast-compatibility.md §12.2).
        table = pa.table(arrays)
        if bad.any():
            keep = ~bad
            table = table.filter(pa.array(keep))
            rows = rows[keep]
        return Decoded(table, rows, errors)

    def _column(
        self, column: _Column, objects: list[dict[str, Any]]
    ) -> tuple[pa.Array, dict[int, str]]:
        values = [obj.get(column.source) for obj in objects]
        label = f"{column.role} '{column.source}':"
        if column.role == "event time":
            array, errors = parse_timestamps(values)
            return array, {i: f"{label} {m}" for i, m in errors.items()}
        if column.nested is not None:
            value_type, declared = column.nested
            return _nested_cells(values, value_type, declared, column.name, label)
        try:
            return _convert(values, column.type), {}
        except _ColumnError:
            return _convert_each(values, column.type, label)
