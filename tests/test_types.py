from __future__ import annotations

import pyarrow as pa
import pytest

from repast import ValueType
from repast.errors import RepoValidationError
from repast.types import (
    Array,
    Bool,
    Bytes,
    ComplexFeastType,
    Decimal,
    FeastType,
    Float32,
    Float64,
    ImageBytes,
    Int32,
    Int64,
    Invalid,
    Json,
    Map,
    PdfBytes,
    PrimitiveFeastType,
    ScalarMap,
    Set,
    String,
    Struct,
    TimeUuid,
    UnixTimestamp,
    Uuid,
    ZonedTimestamp,
    from_arrow_type,
    from_feast_to_pyarrow_type,
    from_feast_type,
    from_string,
    from_value_type,
    to_arrow_type,
)


def test_value_type_numbers_match_feast() -> None:
    assert ValueType.UNKNOWN.value == 0
    assert ValueType.INT64.value == 4
    assert ValueType.DOUBLE.value == 5
    assert ValueType.FLOAT.value == 6
    assert ValueType.UNIX_TIMESTAMP_LIST.value == 18
    assert ValueType.NULL.value == 19
    assert ValueType.UNIX_TIMESTAMP_SET.value == 29
    assert ValueType.PDF_BYTES.value == 30
    assert ValueType.IMAGE_BYTES.value == 31
    assert ValueType.JSON.value == 32
    assert ValueType.DECIMAL_SET.value == 46
    assert ValueType.ZONED_TIMESTAMP.value == 48
    assert len(ValueType) == 47  # 0-8 and 11-48


@pytest.mark.parametrize(
    ("feast_type", "value_type"),
    [
        (Invalid, ValueType.UNKNOWN),
        (Bytes, ValueType.BYTES),
        (String, ValueType.STRING),
        (Int32, ValueType.INT32),
        (Int64, ValueType.INT64),
        (Float32, ValueType.FLOAT),
        (Float64, ValueType.DOUBLE),
        (Bool, ValueType.BOOL),
        (UnixTimestamp, ValueType.UNIX_TIMESTAMP),
        (Json, ValueType.JSON),
        (Map, ValueType.MAP),
        (Uuid, ValueType.UUID),
        (TimeUuid, ValueType.TIME_UUID),
        (Decimal, ValueType.DECIMAL),
        (PdfBytes, ValueType.PDF_BYTES),
        (ImageBytes, ValueType.IMAGE_BYTES),
        (ScalarMap, ValueType.SCALAR_MAP),
        (ZonedTimestamp, ValueType.ZONED_TIMESTAMP),
        (Array(Int64), ValueType.INT64_LIST),
        (Array(Float32), ValueType.FLOAT_LIST),
        (Array(Float64), ValueType.DOUBLE_LIST),
        (Array(UnixTimestamp), ValueType.UNIX_TIMESTAMP_LIST),
        (Array(Json), ValueType.JSON_LIST),
        (Array(Map), ValueType.MAP_LIST),
        (Array(Uuid), ValueType.UUID_LIST),
        (Array(Decimal), ValueType.DECIMAL_LIST),
        (Array(Struct({"a": Int64})), ValueType.STRUCT_LIST),
        (Array(Array(Int64)), ValueType.VALUE_LIST),
        (Set(String), ValueType.STRING_SET),
        (Set(Float64), ValueType.DOUBLE_SET),
        (Set(TimeUuid), ValueType.TIME_UUID_SET),
        (Set(Array(Int32)), ValueType.VALUE_SET),
        (Struct({"a": Int64}), ValueType.STRUCT),
    ],
)
def test_to_value_type(feast_type: FeastType, value_type: ValueType) -> None:
    assert feast_type.to_value_type() == value_type
    assert from_feast_type(feast_type) == value_type


@pytest.mark.parametrize(
    "feast_type",
    [
        Int64,
        UnixTimestamp,
        Array(String),
        Set(Bytes),
        Array(Array(Float32)),
        Struct({"lat": Float64, "tags": Array(String), 'odd, name"': Struct({"x": Bool})}),
        Array(Struct({"a": Int32})),
    ],
)
def test_string_form_round_trips(feast_type: FeastType) -> None:
    text = str(feast_type)
    assert from_string(text) == feast_type
    assert str(from_string(text)) == text


def test_string_forms_are_feast_names() -> None:
    assert str(Float32) == "Float32"
    assert str(UnixTimestamp) == "UnixTimestamp"
    assert str(Array(Int64)) == "Array(Int64)"
    assert str(Set(String)) == "Set(String)"
    assert str(Struct({"a": Int64})) == 'Struct({"a": Int64})'
    assert from_string(" Array( Int64 ) ") == Array(Int64)


@pytest.mark.parametrize(
    "text", ["", "Int65", "Array(Int64", "Array(Int64))", "Struct({a: Int64})"]
)
def test_bad_string_forms(text: str) -> None:
    with pytest.raises(RepoValidationError, match="bad type string"):
        from_string(text)


def test_complex_types_compare_and_hash_by_string() -> None:
    assert Array(Int64) == Array(Int64)
    assert Array(Int64) != Array(Int32)
    assert Array(Int64) != Int64
    assert len({Array(Int64), Array(Int64), Set(Int64)}) == 2
    assert isinstance(Array(Int64), ComplexFeastType)
    assert isinstance(Int64, PrimitiveFeastType)
    assert repr(Array(Int64)) == "Array(Int64)"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Array(PdfBytes), "Array: PdfBytes cannot be an Array element type"),
        (lambda: Array(Invalid), "Array: Invalid cannot be an Array element type"),
        (lambda: Set(Json), "Set: Json cannot be a Set element type"),
        (lambda: Set(Struct({"a": Int64})), "cannot be a Set element type"),
        (
            lambda: Array(ValueType.INT64),  # type: ignore[arg-type]
            "Array: expected a repast.types type",
        ),
        (lambda: Struct({"": Int64}), "Struct: field name '' must be a non-empty string"),
        (
            lambda: Struct({"a": int}),  # type: ignore[dict-item]
            "Struct field 'a': expected a repast.types type",
        ),
    ],
)
def test_invalid_types(build: object, message: str) -> None:
    with pytest.raises(RepoValidationError, match=message.replace("(", r"\(")):
        build()  # type: ignore[operator]


def test_from_value_type() -> None:
    assert from_value_type(ValueType.INT64) is Int64
    assert from_value_type(ValueType.UNKNOWN) is Invalid
    assert from_value_type(ValueType.FLOAT_LIST) == Array(Float32)
    assert from_value_type(ValueType.STRING_SET) == Set(String)
    assert from_value_type(ValueType.PDF_BYTES) is PdfBytes
    for vt in ValueType:
        if vt not in (ValueType.STRUCT, ValueType.STRUCT_LIST, ValueType.NULL) and vt not in (
            ValueType.VALUE_LIST,
            ValueType.VALUE_SET,
        ):
            assert from_value_type(vt).to_value_type() == vt
    with pytest.raises(RepoValidationError, match="has no single repast.types type"):
        from_value_type(ValueType.STRUCT)


@pytest.mark.parametrize(
    ("feast_type", "arrow_type"),
    [
        (Bytes, pa.binary()),
        (String, pa.string()),
        (Int32, pa.int32()),
        (Int64, pa.int64()),
        (Float64, pa.float64()),
        (Float32, pa.float32()),
        (Bool, pa.bool_()),
        (UnixTimestamp, pa.timestamp("us", tz="UTC")),
        (Json, pa.string()),
        (Array(Int64), pa.list_(pa.int64())),
        (Array(UnixTimestamp), pa.list_(pa.timestamp("us", tz="UTC"))),
        (Set(String), pa.list_(pa.string())),
        (Struct({"a": Int64}), pa.struct([("a", pa.int64())])),
        (Map, pa.map_(pa.string(), pa.string())),
        (Array(Map), pa.list_(pa.map_(pa.string(), pa.string()))),
        # Feast's column type; any timestamp column (or a struct of timestamp and zone) is read.
        (ZonedTimestamp, pa.timestamp("us", tz="UTC")),
        # Nominal (Feast has none): map columns with int, float or bool keys are read.
        (ScalarMap, pa.map_(pa.int64(), pa.string())),
    ],
)
def test_to_arrow_type(feast_type: FeastType, arrow_type: pa.DataType) -> None:
    assert to_arrow_type(feast_type) == arrow_type
    assert feast_type.to_arrow_type() == arrow_type
    assert from_feast_to_pyarrow_type(feast_type) == arrow_type


def test_to_arrow_type_unsupported() -> None:
    with pytest.raises(RepoValidationError, match="type Invalid has no Arrow column type"):
        to_arrow_type(Invalid)


@pytest.mark.parametrize(
    ("arrow_type", "feast_type"),
    [
        (pa.int64(), Int64),
        (pa.int32(), Int32),
        (pa.int16(), Int32),
        (pa.uint32(), Int64),
        (pa.float64(), Float64),
        (pa.float32(), Float32),
        (pa.string(), String),
        (pa.large_string(), String),
        (pa.binary(), Bytes),
        (pa.large_binary(), Bytes),
        (pa.bool_(), Bool),
        (pa.timestamp("ns"), UnixTimestamp),
        (pa.timestamp("us", tz="UTC"), UnixTimestamp),
        (pa.list_(pa.int64()), Array(Int64)),
        (pa.large_list(pa.string()), Array(String)),
        (pa.dictionary(pa.int32(), pa.string()), String),
        (pa.struct([("a", pa.float64())]), Struct({"a": Float64})),
        (pa.map_(pa.string(), pa.int64()), Map),
        (pa.map_(pa.int64(), pa.string()), ScalarMap),
        (pa.map_(pa.float32(), pa.list_(pa.int64())), ScalarMap),
        (pa.map_(pa.bool_(), pa.string()), ScalarMap),
        (pa.map_(pa.binary(), pa.string()), ScalarMap),
        (pa.map_(pa.timestamp("us", tz="UTC"), pa.int64()), ScalarMap),
    ],
)
def test_from_arrow_type(arrow_type: pa.DataType, feast_type: FeastType) -> None:
    assert from_arrow_type(arrow_type) == feast_type


@pytest.mark.parametrize(
    "arrow_type",
    [pa.null(), pa.uint64(), pa.map_(pa.uint64(), pa.string()), pa.list_(pa.null())],
)
def test_from_arrow_type_unsupported_is_none(arrow_type: pa.DataType) -> None:
    assert from_arrow_type(arrow_type) is None
