"""How the online stores hold the value types their codecs have no encoding of their own for.

The packed row codec in `repast._core` encodes the scalar and list types (1-8, 11-18) and JSON
(32, 33). The other Feast types are stored as one of those:

- MAP, MAP_LIST, STRUCT, STRUCT_LIST, VALUE_LIST, VALUE_SET, SCALAR_MAP: stored as JSON text
  (32), read back parsed (dicts and lists, as Feast's SDK returns them); a SCALAR_MAP with
  int, float and bool keys as an object with the keys' JSON text (`{"1": "a", "2.5": "b"}`),
  one with a bytes, UUID, decimal or datetime key as `[key, value]` pairs with those keys
  tagged (`[[{"bytes": "AP8="}, 1], [{"uuid": "..."}, 2], [{"decimal": "1.50"}, 3],
  [{"timestamp": 1710052200}, 4], [7, 5]]`); both read back with typed keys;
- ZONED_TIMESTAMP: STRING, `<isoformat>[<zone>]` (`_core.zoned_text`), read back as a
  tz-aware datetime in its zone, as Feast's SDK returns it;
- JSON (32): JSON text, read back parsed, as Feast's SDK returns it;
- the `*_SET` types (22-29): the list of the same element (11-18), deduplicated and sorted as
  Feast holds a set, read back as a list;
- UUID, TIME_UUID, DECIMAL: STRING; their lists and sets: STRING_LIST (the text checked as
  Python's `uuid.UUID` / `decimal.Decimal` parse it).

The JSON text is written in Rust from whole Arrow columns (`_core.nested_json_text`: struct,
map and list columns or JSON text): a MAP's keys sorted (as Feast's protobuf map reads back), a
STRUCT's fields in order and checked against the declared ones.

The Redis `layout: feast` stores every one of these types in Feast's own protobuf oneof
(`map_val`, `struct_val`, `scalar_map_val`, `zoned_timestamp_val`, `int64_set_val`,
`uuid_val`, ...; `_core.encode_nested`), byte for byte what Feast writes.
"""

from __future__ import annotations

import decimal
import functools
import re
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import orjson
import pyarrow as pa

from repast import _core
from repast.errors import InvalidValueError, RowsError, UnsupportedTypeError
from repast.value_type import ValueType

__all__ = [
    "CHECKED_TEXT",
    "JSON_TEXT",
    "SETS",
    "PARSED_ON_READ",
    "ZONED",
    "check_feast_layout",
    "check_text",
    "unique_sets",
    "is_json",
    "json_column",
    "parsed_values",
    "python_values",
    "stored_type",
    "to_json_text",
    "to_zoned_text",
    "scalar_map_inputs",
    "zone_name",
    "zoned_inputs",
]

V = ValueType
JSON_TEXT = frozenset(
    int(t)
    for t in (V.MAP, V.MAP_LIST, V.STRUCT, V.STRUCT_LIST, V.VALUE_LIST, V.VALUE_SET, V.SCALAR_MAP)
)
"""Value types stored as JSON text that Repast writes from nested values."""
PARSED_ON_READ = JSON_TEXT | {int(V.JSON), int(V.JSON_LIST)}
"""Value types whose stored JSON text is parsed when read."""
CHECKED_TEXT = frozenset(
    int(t)
    for t in (
        V.JSON,
        V.JSON_LIST,
        V.UUID,
        V.TIME_UUID,
        V.DECIMAL,
        V.UUID_LIST,
        V.TIME_UUID_LIST,
        V.DECIMAL_LIST,
        V.UUID_SET,
        V.TIME_UUID_SET,
        V.DECIMAL_SET,
    )
)
"""Value types held as text that must parse as JSON, a UUID or a decimal (what Python's
`json`, `uuid` and `decimal` would refuse is refused, naming the row: Feast refuses bad JSON,
and its reads of a bad UUID or decimal fail)."""
SETS = frozenset(range(int(V.BYTES_SET), int(V.UNIX_TIMESTAMP_SET) + 1)) | {
    int(V.UUID_SET),
    int(V.TIME_UUID_SET),
    int(V.DECIMAL_SET),
}
"""Set types: written with each row's elements deduplicated and sorted, as Feast holds them."""

ZONED = frozenset([int(V.ZONED_TIMESTAMP)])
"""Value types stored as `<isoformat>[<zone>]` text (`to_zoned_text`)."""

_STORED: dict[int, int] = {int(t): int(V.JSON) for t in (V.MAP, V.STRUCT, V.SCALAR_MAP)}
_STORED.update({int(t): int(V.JSON) for t in (V.MAP_LIST, V.STRUCT_LIST)})
_STORED.update({int(t): int(V.JSON) for t in (V.VALUE_LIST, V.VALUE_SET)})
# BYTES_SET (22) .. UNIX_TIMESTAMP_SET (29) hold the elements of BYTES_LIST (11) .. (18).
_STORED.update({s: s - 11 for s in range(int(V.BYTES_SET), int(V.UNIX_TIMESTAMP_SET) + 1)})
_STORED.update({int(t): int(V.STRING) for t in (V.UUID, V.TIME_UUID, V.DECIMAL)})
_STORED[int(V.ZONED_TIMESTAMP)] = int(V.STRING)
_STORED.update(
    {
        int(t): int(V.STRING_LIST)
        for t in (
            V.UUID_LIST,
            V.TIME_UUID_LIST,
            V.UUID_SET,
            V.TIME_UUID_SET,
            V.DECIMAL_LIST,
            V.DECIMAL_SET,
        )
    }
)


def stored_type(value_type: int) -> int:
    """The value type the store's codec writes for a feature of `value_type`."""
    return _STORED.get(int(value_type), int(value_type))


def check_feast_layout(view: str, features: Sequence[str], value_types: Sequence[int]) -> None:
    """Raise `UnsupportedTypeError` for a feature the `feast` layout cannot store as Feast does."""
    for name, vt in zip(features, value_types, strict=True):
        if stored_type(vt) != vt and not _core.is_native_feast_type(vt):
            raise UnsupportedTypeError(
                f"feature view '{view}': feature '{name}' is {ValueType(vt).name}, which the "
                "Redis `layout: feast` cannot store byte-identically to Feast yet; use "
                "`layout: packed` (the default) or SQLite for this view"
            )


def to_json_text(
    column: pa.Array | pa.ChunkedArray,
    value_type: int,
    name: str,
    declared: pa.DataType | None = None,
) -> pa.Array:
    """A `string` column of JSON text for a MAP/STRUCT/... feature column (nulls stay null).

    Takes what a DataFrame or a Parquet file holds for such a feature: a struct or map column,
    a list of them, or strings that already are JSON text (checked). `declared` is the
    feature's Arrow type: a STRUCT's values must have exactly its fields, of their kinds.
    Runs in Rust over the whole column.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return _core.nested_json_text(column, int(value_type), declared, name)


def to_zoned_text(column: pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    """The stored `<isoformat>[<zone>]` text of a ZONED_TIMESTAMP feature column (in Rust).

    Takes a timestamp column (its time zone is every row's zone; none: naive, read as UTC),
    ISO 8601 text (`2024-03-10T01:30:00-05:00`, optionally with a `[America/New_York]` zone
    suffix), or a struct of `timestamp` and `zone` (one zone per row). A zone Python's
    `zoneinfo` cannot resolve is refused, naming the row.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return _core.zoned_text(column, name)


def zone_name(tz: tzinfo | None) -> str:
    """The zone Feast stores for a datetime's tzinfo: its IANA key (zoneinfo; pytz's `zone`),
    else `str(tz)` (`UTC`, `UTC+05:30` for a fixed offset), `""` for a naive datetime."""
    if tz is None:
        return ""
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return str(key) if key else str(tz)


def zoned_inputs(values: Sequence[Any], name: str) -> list[Any]:
    """Python datetimes (pandas Timestamps too) as `<isoformat>[<zone>]` text, each in its own
    zone (an Arrow timestamp column holds one zone); text and `{timestamp, zone}` objects as
    given. One step per value: only for values that arrive as Python objects (push dicts,
    object columns). Anything else raises `InvalidValueError` naming the row, as Feast refuses
    what is not a datetime."""
    out: list[Any] = []
    for row, v in enumerate(values):
        if v is None or v != v:  # None, NaT
            out.append(None)
        elif isinstance(v, datetime):
            out.append(f"{v.isoformat()}[{zone_name(v.tzinfo)}]")
        elif isinstance(v, str | dict):
            out.append(v)
        else:
            raise InvalidValueError(
                f"column '{name}' row {row}: not a ZONED_TIMESTAMP value: "
                f"{type(v).__name__} {v!r} is not a datetime"
            )
    return out


def scalar_map_inputs(values: Sequence[Any], name: str) -> pa.Array:
    """Python dicts as JSON text cells for a SCALAR_MAP feature: a dict with only int, float or
    bool keys as a JSON object (keys as their JSON text, as `json.dumps` writes them), one with
    a bytes, `uuid.UUID`, `decimal.Decimal` or `datetime` key as `[key, value]` pairs with
    those keys tagged (`_core.tag_scalar_map_keys`, one pass in Rust), then one `orjson.dumps`
    of the column split in Rust; `to_json_text` checks each cell with its row."""
    tagged = _core.tag_scalar_map_keys(list(values), name)
    try:
        text = orjson.dumps(tagged, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise RowsError(f"column '{name}' holds values that have no JSON form: {exc}") from None
    return _core.json_array_cells(text, name)


def check_text(column: pa.Array, value_type: int, name: str) -> None:
    """Raise `InvalidValueError` naming the row of a UUID/decimal that Python would not parse."""
    _core.check_text_values(column, int(value_type), name)


def unique_sets(column: pa.Array, value_type: int, name: str) -> pa.Array:
    """A set feature's column with each row deduplicated and sorted (in Rust)."""
    return _core.unique_set_values(column, int(value_type), name)


def json_column(array: pa.Array) -> pa.Array:
    """Stored JSON text as an Arrow `json` extension array (read back parsed by `to_dict`); a
    JSON_LIST column (`list<string>`) becomes a list of `json` elements."""
    if isinstance(array.type, pa.JsonType):
        return array
    if pa.types.is_list(array.type):
        if isinstance(array.type.value_type, pa.JsonType):
            return array
        elements = json_column(array.values)
        return pa.ListArray.from_arrays(array.offsets, elements, mask=array.is_null())
    storage = array if pa.types.is_string(array.type) else array.cast(pa.string())
    return pa.ExtensionArray.from_storage(pa.json_(pa.string()), storage)


def is_json(arrow_type: pa.DataType) -> bool:
    """Whether a column holds JSON text read back parsed (`json`, or a list of `json`)."""
    if isinstance(arrow_type, pa.JsonType):
        return True
    return pa.types.is_list(arrow_type) and isinstance(arrow_type.value_type, pa.JsonType)


def parsed_values(array: pa.Array) -> list[Any]:
    """The Python values of a column; a `json` extension column's text comes back parsed."""
    if isinstance(array.type, pa.JsonType):
        return [None if v is None else orjson.loads(v) for v in array.storage.to_pylist()]
    if pa.types.is_list(array.type) and isinstance(array.type.value_type, pa.JsonType):
        if array.offset:
            array = pa.concat_arrays([array])  # offsets from 0, so `values` lines up
        flat = parsed_values(array.values)
        starts = array.offsets.to_pylist()
        return [
            None if not valid else flat[starts[i] : starts[i + 1]]
            for i, valid in enumerate(array.is_valid().to_pylist())
        ]
    values: list[Any] = array.to_pylist()
    return values


_UUIDS = frozenset(int(t) for t in (V.UUID, V.TIME_UUID, V.UUID_LIST, V.TIME_UUID_LIST))
_UUID_SETS = frozenset((int(V.UUID_SET), int(V.TIME_UUID_SET)))
_DECIMALS = frozenset((int(V.DECIMAL), int(V.DECIMAL_LIST), int(V.DECIMAL_SET)))


_FIXED = re.compile(r"(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})")


@functools.lru_cache(maxsize=512)
def zone(name: str) -> tzinfo:
    """The tzinfo Feast's SDK reads a stored zone name as: `""` is UTC, an IANA name a
    `ZoneInfo`, `UTC±HH:MM` a fixed offset; anything else UTC (Feast logs a warning)."""
    if not name:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    if name in ("UTC", "GMT"):
        return UTC
    match = _FIXED.fullmatch(name)
    if match is None:
        return UTC
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _zoned(text: str) -> datetime:
    stamp, _, name = text[:-1].rpartition("[")
    return datetime.fromisoformat(stamp).astimezone(zone(name))


def python_values(array: pa.Array, value_type: int | None) -> list[Any]:
    """The Python values of a read column as Feast's SDK returns them: JSON parsed, UUIDs as
    `uuid.UUID`, decimals as `decimal.Decimal` (their lists and sets as lists of those), a
    SCALAR_MAP with its typed keys, a ZONED_TIMESTAMP as a datetime in its zone."""
    if value_type == V.ZONED_TIMESTAMP and pa.types.is_string(array.type):
        return [None if t is None else _zoned(t) for t in array.to_pylist()]
    if value_type == V.SCALAR_MAP:
        storage = array.storage if isinstance(array.type, pa.JsonType) else array
        return _core.scalar_map_objects(storage)
    values = parsed_values(array)
    make: Callable[[str], Any]
    if value_type in _UUIDS or value_type in _UUID_SETS:
        make = uuid.UUID
    elif value_type in _DECIMALS:
        make = decimal.Decimal
    else:
        return values
    return [
        None
        if v is None
        else [None if e is None else make(e) for e in v]
        if isinstance(v, list)
        else make(v)
        for v in values
    ]
