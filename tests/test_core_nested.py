"""The nested-value kernels of `repast._core` (core-rs/src/nested/) under generated input: every
value Feast can store survives JSON text → Feast Value bytes → JSON text and struct columns →
JSON text unchanged; bad values anywhere in a column are errors naming the column and that row;
UUID and decimal text is accepted exactly when Python's `uuid.UUID` / `decimal.Decimal` are."""

from __future__ import annotations

import decimal
import uuid
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repast import _core
from repast.errors import InvalidValueError
from repast.types import Array, Float64, Int64, String, Struct
from repast.value_type import ValueType

MAP, STRUCT, MAP_LIST = int(ValueType.MAP), int(ValueType.STRUCT), int(ValueType.MAP_LIST)

# What Feast's SDK stores inside a Map: scalars, non-empty lists of one scalar kind, maps, and
# non-empty lists of maps (it refuses empty, mixed and nested lists, and nulls in lists).
floats = st.floats(allow_nan=False, allow_infinity=False)
int64s = st.integers(-(2**63), 2**63 - 1)
scalars = st.none() | st.booleans() | int64s | floats | st.text()
scalar_lists = st.one_of(
    *(st.lists(s, min_size=1, max_size=4) for s in (st.booleans(), int64s, floats, st.text()))
)
keys = st.text(max_size=6)
map_values = st.recursive(
    scalars | scalar_lists,
    lambda inner: (
        st.dictionaries(keys, inner, max_size=3)
        | st.lists(st.dictionaries(keys, inner, max_size=3), min_size=1, max_size=3)
    ),
    max_leaves=10,
)
maps = st.dictionaries(keys, map_values, max_size=5)


def _texts(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())


def _sorted_keys(value: Any) -> Any:
    """`value` with every object's keys in sorted order (a Map's stored JSON text)."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(st.lists(maps | st.none(), max_size=6))
def test_maps_round_trip_through_feast_bytes(values: list[dict[str, Any] | None]) -> None:
    column = _texts(values)
    encoded = _core.encode_nested(column, MAP, "m")
    assert [len(b) == 0 for b in encoded.to_pylist()] == [v is None for v in values]
    decoded = _core.decode_nested(encoded, MAP, None, "m").to_pylist()
    assert [None if d is None else orjson.loads(d) for d in decoded] == values
    # The packed layout's JSON text: the same values, every object's keys sorted.
    texts = _core.nested_json_text(column, MAP, None, "m").to_pylist()
    for text, value in zip(texts, values, strict=True):
        if value is None:
            assert text is None
        else:
            assert orjson.dumps(orjson.loads(text)) == orjson.dumps(_sorted_keys(value))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(maps, max_size=3) | st.none(), max_size=5))
def test_map_lists_round_trip_through_feast_bytes(values: list[list[Any] | None]) -> None:
    encoded = _core.encode_nested(_texts(values), MAP_LIST, "ml")
    decoded = _core.decode_nested(encoded, MAP_LIST, None, "ml").to_pylist()
    assert [None if d is None else orjson.loads(d) for d in decoded] == values


PROFILE = Struct({"name": String, "age": Int64, "scores": Array(Float64)})
profiles = st.fixed_dictionaries(
    {
        "name": st.text() | st.none(),
        "age": st.integers(-(2**63), 2**63 - 1) | st.none(),
        "scores": st.lists(floats, min_size=1, max_size=3) | st.none(),
    }
)


@settings(max_examples=100, deadline=None)
@given(st.lists(profiles | st.none(), max_size=6))
def test_struct_columns_round_trip_in_field_order(values: list[dict[str, Any] | None]) -> None:
    declared = PROFILE.to_arrow_type()
    column = pa.array(values, declared)
    texts = _core.nested_json_text(column, STRUCT, declared, "p").to_pylist()
    parsed = [None if t is None else orjson.loads(t) for t in texts]
    assert parsed == values
    assert all(list(p) == ["name", "age", "scores"] for p in parsed if p is not None)
    encoded = _core.encode_nested(column, STRUCT, "p")
    back = _core.decode_nested(encoded, STRUCT, declared, "p").to_pylist()
    assert [None if b is None else orjson.loads(b) for b in back] == values
    assert [None if b is None else list(orjson.loads(b)) for b in back] == [
        None if v is None else ["name", "age", "scores"] for v in values
    ]


# --- errors ------------------------------------------------------------------------------------

BAD_MAPS = [
    ({"a": [1, "x"]}, "a list mixes"),
    ({"a": []}, "empty list"),
    ({"a": [None]}, "holds a null"),
    ({"a": [[1]]}, "list of lists"),
    ([1, 2], "not an object"),
    ("text", "not an object"),
]
BAD_STRUCTS = [
    ({"name": "x", "age": 1}, "missing declared field 'scores'"),
    ({"name": "x", "age": 1, "scores": [1.0], "extra": 1}, "field 'extra' is not declared"),
    ({"name": 5, "age": 1, "scores": None}, "at .name: an integer where Utf8 is declared"),
    ({"name": "x", "age": "1", "scores": None}, "at .age: a string where Int64 is declared"),
    ({"name": "x", "age": 1, "scores": ["a"]}, r"at .scores\[0\]: a string"),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(maps, min_size=1, max_size=6), st.data())
def test_a_bad_map_anywhere_names_its_row(good: list[dict[str, Any]], data: st.DataObject) -> None:
    row = data.draw(st.integers(0, len(good) - 1))
    value, why = data.draw(st.sampled_from(BAD_MAPS))
    values: list[Any] = list(good)
    values[row] = value
    pattern = rf"^column 'meta' row {row}: not a MAP value: .*{why}"
    with pytest.raises(InvalidValueError, match=pattern):
        _core.nested_json_text(_texts(values), MAP, None, "meta")
    with pytest.raises(InvalidValueError, match=pattern):
        _core.encode_nested(_texts(values), MAP, "meta")


@settings(max_examples=60, deadline=None)
@given(st.lists(profiles, min_size=1, max_size=6), st.data())
def test_a_bad_struct_anywhere_names_its_row(
    good: list[dict[str, Any]], data: st.DataObject
) -> None:
    row = data.draw(st.integers(0, len(good) - 1))
    value, why = data.draw(st.sampled_from(BAD_STRUCTS))
    values: list[Any] = list(good)
    values[row] = value
    with pytest.raises(
        InvalidValueError, match=rf"^column 'p' row {row}: not a STRUCT value: {why}"
    ):
        _core.nested_json_text(_texts(values), STRUCT, PROFILE.to_arrow_type(), "p")


def test_map_columns_with_other_keys_than_strings_are_refused() -> None:
    column = pa.array([[(1, "a")]], pa.map_(pa.int64(), pa.string()))
    with pytest.raises(
        InvalidValueError,
        match="row 0: not a MAP value: map keys are not strings: a Map has string keys",
    ):
        _core.nested_json_text(column, MAP, None, "m")


def test_arrow_types_without_a_nested_form_are_refused() -> None:
    with pytest.raises(
        _core.UnsupportedTypeError,
        match="a MAP feature is written from a struct, map or list column",
    ):
        _core.nested_json_text(pa.array([{"a": 1}], pa.struct([("a", pa.decimal128(5, 2))])), MAP)


# --- UUID and decimal text, against Python itself ----------------------------------------------

UUID_CHARS = "0123456789abcdefABCDEF-{}_+ x:urnid\t"
DECIMAL_CHARS = "0123456789.eE+-_ naNsiIfty\t"


def _python_takes(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except (ValueError, decimal.InvalidOperation):
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    st.text(UUID_CHARS, min_size=28, max_size=44)
    | st.uuids().map(str)
    | st.uuids().map(lambda u: "{" + u.hex.upper() + "}")
)
def test_uuid_text_is_accepted_exactly_when_python_takes_it(text: str) -> None:
    column = pa.array(["6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c", text])
    if _python_takes(uuid.UUID, text):
        _core.check_text_values(column, int(ValueType.UUID), "id")
    else:
        with pytest.raises(InvalidValueError, match=r"^column 'id' row 1: .* is not a UUID"):
            _core.check_text_values(column, int(ValueType.UUID), "id")


@settings(max_examples=300, deadline=None)
@given(st.text(DECIMAL_CHARS, max_size=10) | st.decimals(allow_nan=True).map(str))
def test_decimal_text_is_accepted_exactly_when_python_takes_it(text: str) -> None:
    column = pa.array([[text]], pa.list_(pa.string()))
    if _python_takes(decimal.Decimal, text):
        _core.check_text_values(column, int(ValueType.DECIMAL_LIST), "price")
    else:
        with pytest.raises(InvalidValueError, match=r"^column 'price' row 0: .* is not a decimal"):
            _core.check_text_values(column, int(ValueType.DECIMAL_LIST), "price")


SET_KINDS = [
    (ValueType.INT64_SET, pa.int64(), int64s),
    (ValueType.INT32_SET, pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (ValueType.DOUBLE_SET, pa.float64(), floats),
    (ValueType.STRING_SET, pa.string(), st.text(max_size=5)),
    (ValueType.BYTES_SET, pa.binary(), st.binary(max_size=5)),
    (ValueType.BOOL_SET, pa.bool_(), st.booleans()),
]


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(SET_KINDS), st.data())
def test_sets_round_trip_unique_and_sorted(kind: Any, data: st.DataObject) -> None:
    value_type, arrow, elements = kind
    rows = data.draw(st.lists(st.lists(elements, max_size=6) | st.none(), max_size=5))
    column = pa.array(rows, pa.list_(arrow))
    # Python's set keeps one of 0.0 and -0.0; compare by value.
    expected = [None if r is None else sorted(set(r)) for r in rows]
    unique = _core.unique_set_values(column, int(value_type), "s").to_pylist()
    assert unique == expected
    encoded = _core.encode_nested(column, int(value_type), "s")
    assert _core.decode_nested(encoded, int(value_type)).to_pylist() == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.uuids().map(str) | st.none(), max_size=5),
    st.lists(st.decimals(allow_nan=False, allow_infinity=False).map(str) | st.none(), max_size=5),
)
def test_uuid_and_decimal_text_round_trips(
    uuids: list[str | None], decimals: list[str | None]
) -> None:
    for value_type, values in ((ValueType.UUID, uuids), (ValueType.DECIMAL, decimals)):
        column = pa.array(values, pa.string())
        encoded = _core.encode_nested(column, int(value_type), "t")
        assert _core.decode_nested(encoded, int(value_type)).to_pylist() == values
