"""How the online stores hold the value types their codecs have no encoding of their own for.

The packed row and Feast Value codecs in `repast._core` encode the scalar and list types
(1-8, 11-18) and JSON (32, 33). The other Feast types are stored as one of those:

- MAP, MAP_LIST, STRUCT, STRUCT_LIST, VALUE_LIST, VALUE_SET, SCALAR_MAP: stored as JSON text
  (32), read back parsed (dicts and lists, as Feast's SDK returns them);
- JSON (32): JSON text, read back parsed, as Feast's SDK returns it;
- the `*_SET` types (22-29): the list of the same element (11-18), read back as a list;
- UUID, TIME_UUID, DECIMAL: STRING; their lists and sets: STRING_LIST.

A MAP's keys are written sorted (as Feast's protobuf map reads back); a STRUCT keeps its field
order. The `feast` Redis layout must be byte-identical to Feast, so it refuses the types whose
stored form is not Feast's own (`check_feast_layout`).

Turning a nested value into JSON text builds one Python object per value (`orjson`), so views
with such features write more slowly than views of scalars and lists, which never leave Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from repast.errors import InvalidValueError, UnsupportedTypeError
from repast.value_type import ValueType

__all__ = [
    "JSON_TEXT",
    "PARSED_ON_READ",
    "check_feast_layout",
    "is_json",
    "json_column",
    "parsed_values",
    "stored_type",
    "to_json_text",
]

V = ValueType
JSON_TEXT = frozenset(
    int(t)
    for t in (V.MAP, V.MAP_LIST, V.STRUCT, V.STRUCT_LIST, V.VALUE_LIST, V.VALUE_SET, V.SCALAR_MAP)
)
"""Value types stored as JSON text that Repast writes from nested values."""
PARSED_ON_READ = JSON_TEXT | {int(V.JSON), int(V.JSON_LIST)}
"""Value types whose stored JSON text is parsed when read."""
_MAPS = frozenset(int(t) for t in (V.MAP, V.MAP_LIST, V.SCALAR_MAP))

_STORED: dict[int, int] = {int(t): int(V.JSON) for t in (V.MAP, V.STRUCT, V.SCALAR_MAP)}
_STORED.update({int(t): int(V.JSON) for t in (V.MAP_LIST, V.STRUCT_LIST)})
_STORED.update({int(t): int(V.JSON) for t in (V.VALUE_LIST, V.VALUE_SET)})
# BYTES_SET (22) .. UNIX_TIMESTAMP_SET (29) hold the elements of BYTES_LIST (11) .. (18).
_STORED.update({s: s - 11 for s in range(int(V.BYTES_SET), int(V.UNIX_TIMESTAMP_SET) + 1)})
_STORED.update({int(t): int(V.STRING) for t in (V.UUID, V.TIME_UUID, V.DECIMAL)})
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
        if stored_type(vt) != vt:
            raise UnsupportedTypeError(
                f"feature view '{view}': feature '{name}' is {ValueType(vt).name}, which the "
                "Redis `layout: feast` cannot store byte-identically to Feast yet; use "
                "`layout: packed` (the default) or SQLite for this view"
            )


def _plain(value: Any) -> Any:
    """A JSON-able form of one Arrow value (maps already came as dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        raise TypeError("bytes inside a nested value have no JSON form")
    return value


def to_json_text(column: pa.Array | pa.ChunkedArray, value_type: int, name: str) -> pa.Array:
    """A `string` column of JSON text for a MAP/STRUCT/... feature column (nulls stay null).

    Takes what a DataFrame or a Parquet file holds for such a feature: a struct or map column,
    a list of them, or strings that already are JSON text (checked).
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    sort_keys = int(value_type) in _MAPS
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    texts: list[str | None] = []
    is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    for row, value in enumerate(column.to_pylist(maps_as_pydicts="strict")):
        if value is None:
            texts.append(None)
            continue
        try:
            if is_text:
                value = orjson.loads(value)
            texts.append(orjson.dumps(_plain(value), option=option).decode())
        except (TypeError, orjson.JSONDecodeError, orjson.JSONEncodeError) as exc:
            raise InvalidValueError(
                f"column '{name}' row {row}: {value!r} is not a {ValueType(value_type).name} "
                f"value ({exc})"
            ) from None
    return pa.array(texts, pa.string())


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
