"""Feature data types (`feast.types`): `Int64`, `Float32`, `Array(String)`, `Struct({...})`, ...

Each type maps to a `ValueType` (how Feast encodes values), to an Arrow type (how the
offline store holds columns) and to a stable string, `str(t)`, which is what the registry
stores and `from_string` parses back: `"Int64"`, `"Array(Float32)"`, `"Set(String)"`,
`'Struct({"lat": Float64, "tags": Array(String)})'`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeAlias

import pyarrow as pa

from repast.errors import RepoValidationError
from repast.value_type import ValueType

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "ComplexFeastType",
    "Decimal",
    "FeastType",
    "Float32",
    "Float64",
    "ImageBytes",
    "Int32",
    "Int64",
    "Invalid",
    "Json",
    "Map",
    "PdfBytes",
    "PrimitiveFeastType",
    "ScalarMap",
    "Set",
    "String",
    "Struct",
    "TimeUuid",
    "UnixTimestamp",
    "Uuid",
    "ZonedTimestamp",
    "from_arrow_type",
    "from_feast_to_pyarrow_type",
    "from_feast_type",
    "from_string",
    "from_value_type",
    "to_arrow_type",
]


class PrimitiveFeastType(Enum):
    """A scalar type; its value is the `ValueType` number it encodes as."""

    INVALID = 0
    BYTES = 1
    STRING = 2
    INT32 = 3
    INT64 = 4
    FLOAT64 = 5
    FLOAT32 = 6
    BOOL = 7
    UNIX_TIMESTAMP = 8
    MAP = 20
    PDF_BYTES = 30
    IMAGE_BYTES = 31
    JSON = 32
    UUID = 36
    TIME_UUID = 37
    DECIMAL = 44
    SCALAR_MAP = 47
    ZONED_TIMESTAMP = 48

    def to_value_type(self) -> ValueType:
        return ValueType(self.value)

    def to_arrow_type(self) -> pa.DataType:
        return to_arrow_type(self)

    def __str__(self) -> str:
        return _PRIMITIVE_NAMES[self]


Invalid = PrimitiveFeastType.INVALID
Bytes = PrimitiveFeastType.BYTES
String = PrimitiveFeastType.STRING
Int32 = PrimitiveFeastType.INT32
Int64 = PrimitiveFeastType.INT64
Float64 = PrimitiveFeastType.FLOAT64
Float32 = PrimitiveFeastType.FLOAT32
Bool = PrimitiveFeastType.BOOL
UnixTimestamp = PrimitiveFeastType.UNIX_TIMESTAMP
Map = PrimitiveFeastType.MAP
PdfBytes = PrimitiveFeastType.PDF_BYTES
ImageBytes = PrimitiveFeastType.IMAGE_BYTES
Json = PrimitiveFeastType.JSON
Uuid = PrimitiveFeastType.UUID
TimeUuid = PrimitiveFeastType.TIME_UUID
Decimal = PrimitiveFeastType.DECIMAL
ScalarMap = PrimitiveFeastType.SCALAR_MAP
ZonedTimestamp = PrimitiveFeastType.ZONED_TIMESTAMP

_PRIMITIVE_NAMES: dict[PrimitiveFeastType, str] = {
    Invalid: "Invalid",
    Bytes: "Bytes",
    String: "String",
    Int32: "Int32",
    Int64: "Int64",
    Float64: "Float64",
    Float32: "Float32",
    Bool: "Bool",
    UnixTimestamp: "UnixTimestamp",
    Map: "Map",
    PdfBytes: "PdfBytes",
    ImageBytes: "ImageBytes",
    Json: "Json",
    Uuid: "Uuid",
    TimeUuid: "TimeUuid",
    Decimal: "Decimal",
    ScalarMap: "ScalarMap",
    ZonedTimestamp: "ZonedTimestamp",
}
_PRIMITIVES_BY_NAME = {name: t for t, name in _PRIMITIVE_NAMES.items()}

# Element types with their own `<T>_LIST` value type (anything else in an Array is an error).
_LIST_OF: dict[PrimitiveFeastType, ValueType] = {
    Bytes: ValueType.BYTES_LIST,
    String: ValueType.STRING_LIST,
    Int32: ValueType.INT32_LIST,
    Int64: ValueType.INT64_LIST,
    Float64: ValueType.DOUBLE_LIST,
    Float32: ValueType.FLOAT_LIST,
    Bool: ValueType.BOOL_LIST,
    UnixTimestamp: ValueType.UNIX_TIMESTAMP_LIST,
    Map: ValueType.MAP_LIST,
    Json: ValueType.JSON_LIST,
    Uuid: ValueType.UUID_LIST,
    TimeUuid: ValueType.TIME_UUID_LIST,
    Decimal: ValueType.DECIMAL_LIST,
}
_SET_OF: dict[PrimitiveFeastType, ValueType] = {
    Bytes: ValueType.BYTES_SET,
    String: ValueType.STRING_SET,
    Int32: ValueType.INT32_SET,
    Int64: ValueType.INT64_SET,
    Float64: ValueType.DOUBLE_SET,
    Float32: ValueType.FLOAT_SET,
    Bool: ValueType.BOOL_SET,
    UnixTimestamp: ValueType.UNIX_TIMESTAMP_SET,
    Uuid: ValueType.UUID_SET,
    TimeUuid: ValueType.TIME_UUID_SET,
    Decimal: ValueType.DECIMAL_SET,
}


class ComplexFeastType(ABC):
    """A structured type; equal (and hashed) by its string form."""

    @abstractmethod
    def to_value_type(self) -> ValueType: ...

    @abstractmethod
    def __str__(self) -> str: ...

    def to_arrow_type(self) -> pa.DataType:
        return to_arrow_type(self)

    def __repr__(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComplexFeastType) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


FeastType: TypeAlias = PrimitiveFeastType | ComplexFeastType


def _check_type(t: object, where: str) -> FeastType:
    if not isinstance(t, PrimitiveFeastType | ComplexFeastType):
        raise RepoValidationError(f"{where}: expected a repast.types type such as Int64, got {t!r}")
    return t


class Array(ComplexFeastType):
    """A list of `base_type` values (`<T>_LIST`; a list of lists is a `VALUE_LIST`)."""

    def __init__(self, base_type: FeastType) -> None:
        _check_type(base_type, "Array")
        if isinstance(base_type, PrimitiveFeastType) and base_type not in _LIST_OF:
            raise RepoValidationError(f"Array: {base_type} cannot be an Array element type")
        self.base_type = base_type

    def to_value_type(self) -> ValueType:
        if isinstance(self.base_type, PrimitiveFeastType):
            return _LIST_OF[self.base_type]
        if isinstance(self.base_type, Struct):
            return ValueType.STRUCT_LIST
        return ValueType.VALUE_LIST

    def __str__(self) -> str:
        return f"Array({self.base_type})"


class Set(ComplexFeastType):
    """A set of `base_type` values (`<T>_SET`; a set of lists is a `VALUE_SET`)."""

    def __init__(self, base_type: FeastType) -> None:
        _check_type(base_type, "Set")
        if isinstance(base_type, Struct) or (
            isinstance(base_type, PrimitiveFeastType) and base_type not in _SET_OF
        ):
            raise RepoValidationError(f"Set: {base_type} cannot be a Set element type")
        self.base_type = base_type

    def to_value_type(self) -> ValueType:
        if isinstance(self.base_type, PrimitiveFeastType):
            return _SET_OF[self.base_type]
        return ValueType.VALUE_SET

    def __str__(self) -> str:
        return f"Set({self.base_type})"


class Struct(ComplexFeastType):
    """A record of named, typed fields (`STRUCT`); field order is kept."""

    def __init__(self, fields: Mapping[str, FeastType]) -> None:
        if not isinstance(fields, Mapping):
            raise RepoValidationError("Struct: fields must be a dict of name -> type")
        for name, t in fields.items():
            if not isinstance(name, str) or not name:
                raise RepoValidationError(f"Struct: field name {name!r} must be a non-empty string")
            _check_type(t, f"Struct field {name!r}")
        self.fields: dict[str, FeastType] = dict(fields)

    def to_value_type(self) -> ValueType:
        return ValueType.STRUCT

    def __str__(self) -> str:
        inner = ", ".join(f"{json.dumps(k)}: {v}" for k, v in self.fields.items())
        return f"Struct({{{inner}}})"


# --- value types ----------------------------------------------------------------------------

_FROM_VALUE_TYPE: dict[ValueType, FeastType] = {t.to_value_type(): t for t in PrimitiveFeastType}
_FROM_VALUE_TYPE.update({vt: Array(t) for t, vt in _LIST_OF.items()})
_FROM_VALUE_TYPE.update({vt: Set(t) for t, vt in _SET_OF.items()})


def from_value_type(value_type: ValueType) -> FeastType:
    """The type of `value_type`; STRUCT, VALUE_LIST and VALUE_SET carry too little to rebuild."""
    try:
        return _FROM_VALUE_TYPE[ValueType(value_type)]
    except (KeyError, ValueError):
        raise RepoValidationError(
            f"value type {value_type!r} has no single repast.types type"
        ) from None


def from_feast_type(feast_type: FeastType) -> ValueType:
    """Feast's name for `t.to_value_type()`."""
    return _check_type(feast_type, "from_feast_type").to_value_type()


# --- string form ----------------------------------------------------------------------------


def from_string(text: str) -> FeastType:
    """Parse the string form `str(t)` back into the type (the registry stores dtypes this way)."""
    parser = _Parser(text)
    t = parser.parse_type()
    parser.skip_ws()
    if parser.pos != len(text):
        parser.fail("unexpected trailing text")
    return t


class _Parser:
    """Recursive descent over `Name`, `Array(T)`, `Set(T)`, `Struct({"name": T, ...})`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> None:
        raise RepoValidationError(f"bad type string {self.text!r} at {self.pos}: {why}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_ws()
        if not self.text.startswith(char, self.pos):
            self.fail(f"expected {char!r}")
        self.pos += 1

    def parse_type(self) -> FeastType:
        self.skip_ws()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isalnum():
            self.pos += 1
        name = self.text[start : self.pos]
        if name in ("Array", "Set"):
            self.expect("(")
            inner = self.parse_type()
            self.expect(")")
            return Array(inner) if name == "Array" else Set(inner)
        if name == "Struct":
            return self.parse_struct()
        if name not in _PRIMITIVES_BY_NAME:
            self.pos = start
            self.fail("unknown type name")
        return _PRIMITIVES_BY_NAME[name]

    def parse_struct(self) -> Struct:
        self.expect("(")
        self.expect("{")
        fields: dict[str, FeastType] = {}
        self.skip_ws()
        while not self.text.startswith("}", self.pos):
            if fields:
                self.expect(",")
                self.skip_ws()
            try:
                key, end = json.JSONDecoder().raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                key, end = None, self.pos
            if not isinstance(key, str):
                self.fail("expected a quoted field name")
            self.pos = end
            self.expect(":")
            fields[str(key)] = self.parse_type()
            self.skip_ws()
        self.expect("}")
        self.expect(")")
        return Struct(fields)


# --- Arrow ----------------------------------------------------------------------------------


def _primitive_arrow(t: PrimitiveFeastType) -> pa.DataType | None:
    if t is Map:
        # Feast's choice for a Map column; Parquet data may also hold a struct (both are read).
        return pa.map_(pa.string(), pa.string())
    if t is ScalarMap:
        # Nominal: a map column with int, float, bool, binary or timestamp keys (or its JSON
        # text) is read; the values' types are each value's own, as in Feast.
        return pa.map_(pa.int64(), pa.string())
    if t is ZonedTimestamp:
        # Feast's column type; a timestamp column in any zone, or a struct of `timestamp` and
        # `zone`, is read too (docs/internals.md, Value types).
        return pa.timestamp("us", tz="UTC")
    if t in (Bytes, PdfBytes, ImageBytes):
        return pa.binary()
    if t in (String, Json, Uuid, TimeUuid, Decimal):
        return pa.string()
    simple: dict[PrimitiveFeastType, Any] = {
        Int32: pa.int32(),
        Int64: pa.int64(),
        Float64: pa.float64(),
        Float32: pa.float32(),
        Bool: pa.bool_(),
        UnixTimestamp: pa.timestamp("us", tz="UTC"),
    }
    return simple.get(t)


def to_arrow_type(feast_type: FeastType) -> pa.DataType:
    """The Arrow type the offline store uses for `feast_type` (lists and sets → `list<T>`)."""
    _check_type(feast_type, "to_arrow_type")
    if isinstance(feast_type, Array | Set):
        return pa.list_(to_arrow_type(feast_type.base_type))
    if isinstance(feast_type, Struct):
        return pa.struct([(k, to_arrow_type(v)) for k, v in feast_type.fields.items()])
    arrow = _primitive_arrow(feast_type) if isinstance(feast_type, PrimitiveFeastType) else None
    if arrow is None:
        raise RepoValidationError(f"type {feast_type} has no Arrow column type")
    return arrow


from_feast_to_pyarrow_type = to_arrow_type


def from_arrow_type(arrow_type: pa.DataType) -> FeastType | None:
    """The type of an Arrow column, or None when Repast has no type for it.

    Narrow integers widen to Int32, `uint32` to Int64; any timestamp or date is
    UnixTimestamp; a map with string keys is Map, one with integer, float, bool, binary or
    timestamp keys ScalarMap; `uint64`, other maps, nulls and unions have no type (None).
    """
    t = pa.types
    if t.is_dictionary(arrow_type):
        return from_arrow_type(arrow_type.value_type)
    if t.is_int64(arrow_type) or t.is_uint32(arrow_type):
        return Int64
    if t.is_int32(arrow_type) or t.is_int16(arrow_type) or t.is_int8(arrow_type):
        return Int32
    if t.is_uint16(arrow_type) or t.is_uint8(arrow_type):
        return Int32
    if t.is_float64(arrow_type):
        return Float64
    if t.is_float32(arrow_type) or t.is_float16(arrow_type):
        return Float32
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return String
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return Bytes
    if t.is_fixed_size_binary(arrow_type):
        return Bytes
    if t.is_boolean(arrow_type):
        return Bool
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return UnixTimestamp
    if t.is_decimal(arrow_type):
        return Decimal
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        element = from_arrow_type(arrow_type.value_type)
        if element is None or (isinstance(element, PrimitiveFeastType) and element not in _LIST_OF):
            return None
        return Array(element)
    if t.is_map(arrow_type):
        key = arrow_type.key_type
        if from_arrow_type(key) is String:
            return Map
        # Keys Feast's ScalarMap takes that an Arrow map can hold: integers, floats, bools,
        # bytes and timestamps (UUID and decimal keys come as Python objects or JSON).
        typed = (
            t.is_integer(key)
            or t.is_floating(key)
            or t.is_boolean(key)
            or t.is_binary(key)
            or t.is_large_binary(key)
            or t.is_timestamp(key)
        )
        return ScalarMap if typed and not t.is_uint64(key) else None
    if t.is_struct(arrow_type):
        fields: dict[str, FeastType] = {}
        for i in range(arrow_type.num_fields):
            field = arrow_type.field(i)
            ft = from_arrow_type(field.type)
            if ft is None:
                return None
            fields[field.name] = ft
        return Struct(fields)
    return None
