"""Feast Value and Timestamp protobuf codecs through `repast._core`, against Feast's golden
vectors, with Repast's documented differences (docs/internals.md, "Value types and Arrow")."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from golden_repo import GOLDEN
from repast import _core
from repast._core import DecodeError, InvalidValueError, UnsupportedTypeError

VALUES = json.loads((GOLDEN / "values.json").read_text())

CODES = {
    "BYTES": 1,
    "STRING": 2,
    "INT32": 3,
    "INT64": 4,
    "DOUBLE": 5,
    "FLOAT": 6,
    "BOOL": 7,
    "UNIX_TIMESTAMP": 8,
    "BYTES_LIST": 11,
    "STRING_LIST": 12,
    "INT32_LIST": 13,
    "INT64_LIST": 14,
    "DOUBLE_LIST": 15,
    "FLOAT_LIST": 16,
    "BOOL_LIST": 17,
    "UNIX_TIMESTAMP_LIST": 18,
    "JSON": 32,
}
SCALAR_TYPES = {
    "BYTES": pa.binary(),
    "STRING": pa.string(),
    "INT32": pa.int32(),
    "INT64": pa.int64(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float64(),  # Python floats; the codec rounds to float32 as Feast does
    "BOOL": pa.bool_(),
    "JSON": pa.string(),
}
TS = pa.timestamp("us", tz="UTC")
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _parse(value: Any, encoding: str) -> Any:
    if value is None:
        return None
    if encoding.endswith("_list"):
        return [_parse(v, encoding.removesuffix("_list")) for v in value]
    if encoding == "base64":
        return base64.b64decode(value)
    if encoding == "float_special" or (isinstance(value, str) and value in SPECIAL):
        return SPECIAL.get(value, value)
    if encoding in ("datetime_iso", "numpy_datetime64"):
        if value == "NaT":
            return None
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _arrow(name: str, encoding: str, values: list[Any]) -> pa.Array:
    """The Arrow column Repast is given for these Python values."""
    parsed = [_parse(v, encoding) for v in values]
    if name.endswith("_LIST"):
        element = name.removesuffix("_LIST")
        child = TS if element == "UNIX_TIMESTAMP" else SCALAR_TYPES[element]
        return pa.array(parsed, pa.list_(child))
    if name == "UNIX_TIMESTAMP":
        if encoding == "float_special":
            # Repast takes timestamps as Arrow timestamps: Feast's float NaN is a null one here.
            return pa.array([None] * len(values), TS)
        if encoding == "json":
            return pa.array(parsed, pa.int64())
        return pa.array(parsed, TS)
    if name in ("INT64", "INT32") and any(isinstance(v, float) for v in parsed):
        # pandas upcasts an int column with nulls to float64
        return pa.array(parsed, pa.float64(), from_pandas=True)
    return pa.array(parsed, SCALAR_TYPES[name])


def _repast_hex(case: dict[str, Any]) -> str:
    """Feast's bytes, except where Repast deliberately differs (docs/internals.md)."""
    note = case.get("note", "")
    if case["value_type"] == "BYTES" and case["python_value"] == "":
        return "0a00"  # b"" is bytes_val "" whatever else the column holds
    if case["value_type"] == "UNIX_TIMESTAMP" and "INT64_MIN" in note:
        return ""  # a null timestamp is an empty Value, not Feast's INT64_MIN sentinel
    return str(case["hex"])


ENCODABLE = [c for c in VALUES["cases"] if c["value_type"] in CODES]
NOT_ENCODABLE = [c for c in VALUES["cases"] if c["value_type"] not in CODES]


def _id(case: dict[str, Any]) -> str:
    return f"{case['value_type']}={case['python_value']!r}"


@pytest.mark.parametrize("case", ENCODABLE, ids=[_id(c) for c in ENCODABLE])
def test_golden_encode(case: dict[str, Any]) -> None:
    context = case.get("batch_context")
    column = context["column"] if context else [case["python_value"]]
    index = context["index"] if context else 0
    array = _arrow(case["value_type"], case["encoding"], column)
    encoded = _core.encode_values(array, CODES[case["value_type"]], "c")
    assert encoded.type == pa.binary()
    assert encoded.null_count == 0
    assert encoded[index].as_py().hex() == _repast_hex(case)


@pytest.mark.parametrize("case", ENCODABLE, ids=[_id(c) for c in ENCODABLE])
def test_golden_decode_round_trip(case: dict[str, Any]) -> None:
    code = CODES[case["value_type"]]
    stored = pa.array([bytes.fromhex(case["hex"])], pa.binary())
    decoded = _core.decode_values(stored, code, "c")
    if not case["hex"] or "INT64_MIN" in case.get("note", ""):
        assert decoded.to_pylist() == [None]
        return
    assert _core.encode_values(decoded, code, "c")[0].as_py().hex() == case["hex"]


def test_not_encodable_golden_cases() -> None:
    """MAP and NULL are not value types of the codec; their stored bytes still decode sanely."""
    assert {c["value_type"] for c in NOT_ENCODABLE} == {"MAP", "NULL"}
    for case in NOT_ENCODABLE:
        stored = pa.array([bytes.fromhex(case["hex"])], pa.binary())
        with pytest.raises(
            UnsupportedTypeError, match=r"column 'c': value type \d+ is not supported"
        ):
            _core.encode_values(pa.array([None]), {"MAP": 20, "NULL": 19}[case["value_type"]], "c")
        if case["value_type"] == "NULL":
            assert _core.decode_values(stored, 4, "c").to_pylist() == [None]
        else:
            with pytest.raises(DecodeError, match="expected int64_val for INT64, found map_val"):
                _core.decode_values(stored, 4, "c")


def test_decoded_arrow_types() -> None:
    expect = {
        1: pa.binary(),
        2: pa.string(),
        3: pa.int32(),
        4: pa.int64(),
        5: pa.float64(),
        6: pa.float32(),
        7: pa.bool_(),
        8: TS,
        32: pa.string(),
        14: pa.list_(pa.int64()),
        18: pa.list_(TS),
    }
    for code, arrow_type in expect.items():
        assert _core.decode_values(pa.array([b""]), code).type == arrow_type


def test_unix_timestamps_are_whole_seconds() -> None:
    ts = pa.array([datetime(2024, 1, 1, 12, 0, 0, 999_999, tzinfo=UTC), None], TS)
    encoded = _core.encode_values(ts, 8)
    assert encoded.to_pylist() == [bytes.fromhex("40c0d2caac06"), b""]
    decoded = _core.decode_values(encoded, 8)
    assert decoded.to_pylist() == [datetime(2024, 1, 1, 12, tzinfo=UTC), None]
    feast_null = pa.array([bytes.fromhex("4080808080808080808001")])
    assert _core.decode_values(feast_null, 8).to_pylist() == [None]


@pytest.mark.parametrize("case", VALUES["timestamps"], ids=[c["iso"] for c in VALUES["timestamps"]])
def test_golden_timestamps(case: dict[str, Any]) -> None:
    micros = case["seconds"] * 1_000_000 + case["nanos"] // 1000
    encoded = _core.encode_timestamps(pa.array([micros], TS), "ts")
    assert encoded[0].as_py().hex() == case["hex"]
    decoded = _core.decode_timestamps(encoded, "ts")
    assert decoded.type == TS
    assert decoded.cast(pa.int64())[0].as_py() == micros


def test_timestamps_from_int64_nanoseconds() -> None:
    nanos = pa.array([1_704_106_800_500_000_000, 0], pa.int64())
    encoded = _core.encode_timestamps(nanos)
    assert [b.hex() for b in encoded.to_pylist()] == ["08b0b6caac061080cab5ee01", ""]


def test_timestamp_errors_name_column_and_row() -> None:
    with pytest.raises(
        InvalidValueError, match=r"^column 'event_ts' row 1: an event timestamp cannot be null$"
    ):
        _core.encode_timestamps(pa.array([1, None], TS), "event_ts")
    with pytest.raises(
        DecodeError, match=r"^column '_ts' row 0: not a valid google.protobuf.Timestamp"
    ):
        _core.decode_timestamps(pa.array([b"\x08"]), "_ts")


def test_garbage_names_column_and_row() -> None:
    stored = pa.array([bytes.fromhex("2001"), b"", bytes.fromhex("20ff")])
    with pytest.raises(DecodeError) as info:
        _core.decode_values(stored, 4, "trips")
    assert str(info.value) == (
        "column 'trips' row 2: not a valid feast.types.Value: truncated varint at byte 2"
    )
    assert isinstance(info.value, InvalidValueError)
    with pytest.raises(
        DecodeError,
        match=r"^column 'rate' row 0: expected double_val for DOUBLE, found string_val$",
    ):
        _core.decode_values(pa.array([bytes.fromhex("120161")]), 5, "rate")


def test_encode_errors_name_column_and_row() -> None:
    with pytest.raises(
        UnsupportedTypeError,
        match=r"^column 'trips': an Arrow Utf8 column cannot be encoded as INT64$",
    ):
        _core.encode_values(pa.array(["1"]), 4, "trips")
    with pytest.raises(
        InvalidValueError, match=r"^column 'trips' row 1: 2.5 is not an integer in range$"
    ):
        _core.encode_values(pa.array([1.0, 2.5]), 4, "trips")
    with pytest.raises(
        InvalidValueError,
        match=r"^column 'ids' row 1: a Feast INT64_LIST cannot hold a null element$",
    ):
        _core.encode_values(pa.array([[1], [None]], pa.list_(pa.int64())), 14, "ids")
    with pytest.raises(InvalidValueError, match=r"^column 'n' row 0: 3000000000 does not fit"):
        _core.encode_values(pa.array([3_000_000_000], pa.int64()), 3, "n")


def test_unknown_fields_are_skipped() -> None:
    stored = pa.array([bytes.fromhex("a006052001aa060161")])
    assert _core.decode_values(stored, 4).to_pylist() == [1]


def test_list_inputs() -> None:
    expect = _core.encode_values(pa.array([[1, 2], [], None], pa.list_(pa.int64())), 14)
    assert [b.hex() for b in expect.to_pylist()] == ["72040a020102", "7200", ""]
    large = pa.array([[1, 2], [], None], pa.large_list(pa.int32()))
    assert _core.encode_values(large, 14) == expect
    strings = _core.encode_values(pa.array([["a", "b"]], pa.list_(pa.large_string())), 12)
    assert strings[0].as_py().hex() == "62060a01610a0162"


# --- encode -> decode round trips -------------------------------------------------------------

ROUND_TRIPS: list[tuple[int, pa.DataType, st.SearchStrategy[Any]]] = [
    (1, pa.binary(), st.binary()),
    (2, pa.string(), st.text()),
    (32, pa.string(), st.text()),
    (3, pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (4, pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (5, pa.float64(), st.floats(allow_nan=False)),
    (6, pa.float32(), st.floats(allow_nan=False, width=32)),
    (7, pa.bool_(), st.booleans()),
    (
        8,
        TS,
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
    ),
    (14, pa.list_(pa.int64()), st.lists(st.integers(-(2**63), 2**63 - 1))),
    (12, pa.list_(pa.string()), st.lists(st.text())),
    (16, pa.list_(pa.float32()), st.lists(st.floats(allow_nan=False, width=32))),
    (17, pa.list_(pa.bool_()), st.lists(st.booleans())),
]


@pytest.mark.parametrize(
    ("code", "arrow_type", "strategy"), ROUND_TRIPS, ids=[str(r[0]) for r in ROUND_TRIPS]
)
def test_round_trip(code: int, arrow_type: pa.DataType, strategy: st.SearchStrategy[Any]) -> None:
    @given(st.lists(st.none() | strategy, max_size=20))
    def check(values: list[Any]) -> None:
        array = pa.array(values, arrow_type)
        decoded = _core.decode_values(_core.encode_values(array, code, "c"), code, "c")
        assert decoded.type == arrow_type
        assert decoded.equals(array)

    check()


@given(st.lists(st.datetimes(timezones=st.just(UTC)), max_size=20))
def test_timestamp_round_trip(values: list[datetime]) -> None:
    array = pa.array(values, TS)
    assert _core.decode_timestamps(_core.encode_timestamps(array)).equals(array)
