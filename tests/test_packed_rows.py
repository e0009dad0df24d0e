"""Packed rows (the `packed` Redis layout) and latest-per-key: the Rust kernels through Python."""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repast import _core

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 11, tzinfo=UTC)

# Feast value type -> (Arrow type of decoded values, sample values incl. a null)
SAMPLES: dict[int, tuple[pa.DataType, list[Any]]] = {
    1: (pa.binary(), [b"", b"\x00\xff", None]),
    2: (pa.string(), ["", "é" * 40, None]),
    3: (pa.int32(), [-(2**31), 2**31 - 1, None]),
    4: (pa.int64(), [-(2**63), 2**63 - 1, None]),
    5: (pa.float64(), [-0.0, 1e308, None]),
    6: (pa.float32(), [0.5, -3.25, None]),
    7: (pa.bool_(), [False, True, None]),
    8: (pa.timestamp("us", "UTC"), [T0, dt.datetime(1960, 5, 1, tzinfo=UTC), None]),
    32: (pa.string(), ['{"a": 1}', "[]", None]),
    11: (pa.list_(pa.binary()), [[b"a", b""], [], None]),
    12: (pa.list_(pa.string()), [["a", "bc"], [], None]),
    13: (pa.list_(pa.int32()), [[1, -2], [], None]),
    14: (pa.list_(pa.int64()), [[2**40], [-1, 0, None], None]),
    15: (pa.list_(pa.float64()), [[1.5], [], None]),
    16: (pa.list_(pa.float32()), [[0.25, 2.0], [], None]),
    17: (pa.list_(pa.bool_()), [[True, False], [], None]),
    18: (pa.list_(pa.timestamp("us", "UTC")), [[T0], [], None]),
    33: (pa.list_(pa.string()), [["{}"], [], None]),
}


def times(n: int, unit: str = "us") -> pa.Array:
    return pa.array([T0 + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp(unit, "UTC"))


def round_trip(
    columns: list[pa.Array], value_types: list[int], select: list[int] | None = None
) -> tuple[pa.Array, list[pa.Array]]:
    rows = _core.encode_packed_rows(columns, value_types, times(len(columns[0])))
    chosen = list(range(len(value_types))) if select is None else select
    return _core.decode_packed_rows(rows, value_types, chosen)


@pytest.mark.parametrize("value_type", sorted(SAMPLES))
def test_round_trip_of_every_type(value_type: int) -> None:
    arrow_type, values = SAMPLES[value_type]
    column = pa.array(values, arrow_type)
    ts, (out,) = round_trip([column], [value_type])
    assert out.type == arrow_type
    assert out.to_pylist() == values
    assert ts.type == pa.timestamp("us", "UTC")
    assert ts.to_pylist() == times(3).to_pylist()


def test_all_types_in_one_row_and_selection_order() -> None:
    codes = sorted(SAMPLES)
    columns = [pa.array(SAMPLES[c][1], SAMPLES[c][0]) for c in codes]
    select = [5, 0, 5, len(codes) - 1]
    _, out = round_trip(columns, codes, select)
    assert [a.to_pylist() for a in out] == [columns[i].to_pylist() for i in select]


def test_missing_rows_are_null() -> None:
    rows = _core.encode_packed_rows([pa.array([7])], [4], times(1))
    stored = pa.array([None, rows[0].as_py(), None], pa.binary())
    ts, (values,) = _core.decode_packed_rows(stored, [4], [0])
    assert ts.to_pylist() == [None, T0, None]
    assert values.to_pylist() == [None, 7, None]


def test_nan_feature_is_null_and_unix_timestamps_keep_whole_seconds() -> None:
    floats = pa.array([math.nan, 1.0], pa.float64())
    stamps = pa.array([T0 + dt.timedelta(microseconds=999_999), None], pa.timestamp("ns", "UTC"))
    lists = pa.array([[math.nan], None], pa.list_(pa.float32()))
    _, (f, s, lst) = round_trip([floats, stamps, lists], [5, 8, 16])
    assert f.to_pylist() == [None, 1.0]
    assert s.to_pylist() == [T0, None]
    assert math.isnan(lst[0][0].as_py())  # NaN inside a list is kept, as Feast does


def test_lenient_input_types() -> None:
    """Columns are taken in any reasonable Arrow layout and converted to the value type."""
    columns = [
        pa.array([1, None], pa.int8()),  # INT64 from int8
        pa.array([3.0, math.nan]),  # INT32 from pandas-style float64 with NaN
        pa.array([1, 2], pa.int64()),  # DOUBLE from int64
        pa.array([0.1, None], pa.float64()),  # FLOAT from float64 (narrowed)
        pa.array(["x", None], pa.large_string()),
        pa.array(["a", "a"]).dictionary_encode(),
        pa.array([1_700_000_000, None], pa.int64()),  # UNIX_TIMESTAMP from int seconds
        pa.array([[1, 2], None], pa.large_list(pa.int32())),
        pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32(), 2)),
    ]
    codes = [4, 3, 5, 6, 2, 2, 8, 13, 16]
    ts = pa.array([0, 1_000], pa.timestamp("ms"))  # naive, milliseconds
    rows = _core.encode_packed_rows(columns, codes, ts)
    out_ts, out = _core.decode_packed_rows(rows, codes, list(range(len(codes))))
    assert out_ts.to_pylist() == [dt.datetime(1970, 1, 1, tzinfo=UTC)] + [
        dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    ]
    assert [a.to_pylist() for a in out] == [
        [1, None],
        [3, None],
        [1.0, 2.0],
        [pytest.approx(0.1), None],
        ["x", None],
        ["a", "a"],
        [dt.datetime.fromtimestamp(1_700_000_000, UTC), None],
        [[1, 2], None],
        [[1.0, 2.0], [3.0, 4.0]],
    ]


def test_sliced_inputs() -> None:
    column = pa.array([[1], [2, 3], None, [4]], pa.list_(pa.int64())).slice(1, 2)
    strings = pa.array(["a", "b", "c", "d"]).slice(1, 2)
    _, (lists, strs) = round_trip([column, strings], [14, 2])
    assert lists.to_pylist() == [[2, 3], None]
    assert strs.to_pylist() == ["b", "c"]


def test_timestamp_bytes_order_like_the_times() -> None:
    stamps = [
        dt.datetime(1900, 1, 1, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        T0,
        T0 + dt.timedelta(microseconds=1),
    ]
    ts = pa.array(stamps, pa.timestamp("us", "UTC"))
    rows = _core.encode_packed_rows([], [], ts).to_pylist()
    assert all(r[0] == 1 for r in rows)
    keys = [r[1:9] for r in rows]
    assert keys == sorted(keys)
    micros = [struct.unpack(">q", bytes([k[0] ^ 0x80]) + k[1:])[0] for k in keys]
    assert micros == ts.cast(pa.int64()).to_pylist()


def test_short_rows_decode_the_missing_features_as_null() -> None:
    """A view that gained features: rows written before hold fewer elements."""
    old = _core.encode_packed_rows([pa.array([1])], [4], times(1))
    new = _core.encode_packed_rows([pa.array([2]), pa.array(["s"])], [4, 2], times(1))
    stored = pa.concat_arrays([old, new])
    _, (ints, strs) = _core.decode_packed_rows(stored, [4, 2], [0, 1])
    assert ints.to_pylist() == [1, 2]
    assert strs.to_pylist() == [None, "s"]


def _row(payload: bytes) -> bytes:
    return b"\x01" + b"\x80" + b"\x00" * 7 + payload


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"\x01\x80", "shorter than a row header"),
        (b"\x02" + b"\x00" * 8 + b"\x90", "unknown format version 0x02"),
        (_row(b"\x91\xcd\x01"), "feature 0: truncated MessagePack value"),
        (_row(b"\x91\x01\x00"), "1 trailing bytes"),
        (_row(b"\x91\xa1a"), "feature 0: expected an integer, found a str"),
        (_row(b"\x92\x01\xc1"), "feature 1: byte 0xc1 is not a MessagePack marker"),
        (_row(b"\x01"), "expected an array of features"),
        (_row(b"\x91\xce\xff\xff\xff\xff"), None),  # fine for INT64
    ],
)
def test_corrupt_rows_name_the_row(row: bytes, message: str | None) -> None:
    good = _core.encode_packed_rows([pa.array([1])], [4], times(1))[0].as_py()
    stored = pa.array([good, None, row], pa.binary())
    if message is None:
        _, (out,) = _core.decode_packed_rows(stored, [4], [0])
        assert out.to_pylist() == [1, None, 2**32 - 1]
        return
    with pytest.raises(_core.DecodeError, match=f"^row 2: corrupt packed row: .*{message}"):
        _core.decode_packed_rows(stored, [4], [0])


def test_bad_arguments() -> None:
    ts = times(2)
    with pytest.raises(_core.InvalidValueError, match="'price' has 1 values for 2"):
        _core.encode_packed_rows([pa.array([1.0])], [5], ts, names=["price"])
    with pytest.raises(_core.UnsupportedTypeError, match="column 'f': Arrow type Utf8 cannot"):
        _core.encode_packed_rows([pa.array(["a", "b"])], [4], ts, names=["f"])
    with pytest.raises(_core.InvalidValueError, match="column 'n' row 1: .*32-bit"):
        _core.encode_packed_rows([pa.array([1, 2**40])], [3], ts, names=["n"])
    with pytest.raises(_core.InvalidValueError, match="'event_timestamp' row 1: .* null"):
        _core.encode_packed_rows([], [], pa.array([T0, None]))
    with pytest.raises(_core.UnsupportedTypeError, match="value type 20"):
        _core.encode_packed_rows([pa.array([1, 2])], [20], ts)
    with pytest.raises(_core.InvalidValueError, match="1 columns, 2 value types"):
        _core.encode_packed_rows([pa.array([1, 2])], [4, 4], ts)
    with pytest.raises(_core.InvalidValueError, match="selected feature 3 is out of range"):
        _core.decode_packed_rows(pa.array([], pa.binary()), [4], [3])


# --- property: decode(encode(x)) == x, up to the documented normalizations -------------------

SCALARS: dict[int, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    1: (pa.binary(), st.binary(max_size=40)),
    2: (pa.string(), st.text(max_size=40)),
    3: (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    4: (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    5: (pa.float64(), st.floats(allow_nan=True)),
    6: (pa.float32(), st.floats(width=32, allow_nan=True)),
    7: (pa.bool_(), st.booleans()),
    8: (
        pa.timestamp("us", "UTC"),
        st.datetimes(
            min_value=dt.datetime(1800, 1, 1),
            max_value=dt.datetime(2200, 1, 1),
            timezones=st.just(UTC),
        ),
    ),
}


def _expected(value: Any, value_type: int) -> Any:
    """The Python reference of what a stored value reads back as."""
    if value is None:
        return None
    if isinstance(value, list):  # NaN is kept inside a list, as Feast does
        return [_nan_as_str(v) if v != v else _expected(v, value_type - 10) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if value_type == 8:  # whole seconds, truncated toward zero as Feast does
        seconds = int((value - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(seconds=1))
        return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=seconds)
    return value


def _nan_as_str(value: Any) -> Any:
    """NaN != NaN; compare it as a string."""
    if isinstance(value, list):
        return [_nan_as_str(v) for v in value]
    return "nan" if isinstance(value, float) and math.isnan(value) else value


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[int], list[list[Any]], list[int]]:
    codes = draw(st.lists(st.sampled_from([*SCALARS, *(c + 10 for c in SCALARS)]), max_size=6))
    n = draw(st.integers(0, 8))
    columns = []
    for code in codes:
        values = SCALARS[code if code < 10 else code - 10][1]
        cell = st.lists(st.none() | values, max_size=4) if code > 10 else values
        columns.append(draw(st.lists(st.none() | cell, min_size=n, max_size=n)))
    micros = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
    return codes, columns, micros


def _nan_back(value: Any) -> Any:
    if isinstance(value, list):
        return [_nan_back(v) for v in value]
    return math.nan if value == "nan" else value


def _arrow_type(code: int) -> pa.DataType:
    if code > 10:
        return pa.list_(SCALARS[code - 10][0])
    return SCALARS[code][0]


@settings(max_examples=300, deadline=None)
@given(tables())
def test_round_trip_property(table: tuple[list[int], list[list[Any]], list[int]]) -> None:
    codes, columns, micros = table
    arrays = [pa.array(c, _arrow_type(code)) for c, code in zip(columns, codes, strict=True)]
    ts = pa.array(micros, pa.int64()).cast(pa.timestamp("us", "UTC"))
    rows = _core.encode_packed_rows(arrays, codes, ts)
    out_ts, out = _core.decode_packed_rows(rows, codes, list(range(len(codes))))
    assert out_ts.cast(pa.int64()).to_pylist() == micros
    for values, code, array in zip(columns, codes, out, strict=True):
        want = [_expected(v, code) for v in values]
        if code in (6, 16):  # float32: compare after rounding to float32
            want = _nan_as_str(pa.array(_nan_back(want), _arrow_type(code)).to_pylist())
        assert _nan_as_str(array.to_pylist()) == want


# --- latest per key ---------------------------------------------------------------------------


def _latest_reference(keys: list[bytes], events: list[int], created: list[int | None]) -> list[int]:
    best: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        j = best.get(key)
        rank = (events[i], -1 if created[i] is None else created[i])
        if j is None or rank >= (events[j], -1 if created[j] is None else created[j]):
            best[key] = i
    return sorted(best.values())


batches_strategy = st.lists(
    st.tuples(
        st.sampled_from([b"a", b"b", b"c", b"\x00", b""]),
        st.integers(0, 5),
        st.none() | st.integers(0, 3),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(batches_strategy, st.lists(st.integers(1, 20), min_size=1, max_size=10), st.booleans())
def test_latest_per_key_and_streaming_match_a_reference(
    rows: list[tuple[bytes, int, int | None]], splits: list[int], compact: bool
) -> None:
    keys = [r[0] for r in rows]
    events = [r[1] for r in rows]
    created = [r[2] for r in rows]
    want = _latest_reference(keys, events, created)

    def cols(lo: int, hi: int) -> tuple[pa.Array, pa.Array, pa.Array]:
        return (
            pa.array(keys[lo:hi], pa.binary()),
            pa.array(events[lo:hi], pa.timestamp("s")),
            pa.array(created[lo:hi], pa.timestamp("ms")),
        )

    assert _core.latest_per_key(*cols(0, len(rows))).to_pylist() == want

    # Streaming: the winners table holds global row numbers, as a real caller holds rows.
    state = _core.LatestState()
    table: list[int] = []
    lo = 0
    for size in [*splits, len(rows)]:
        hi = min(len(rows), lo + size)
        accepted = state.update(*cols(lo, hi)).to_pylist()
        assert accepted == sorted(accepted)
        table.extend(lo + i for i in accepted)
        assert state.candidates == len(table)
        if compact:
            table = [table[i] for i in state.compact().to_pylist()]
            assert len(table) == len(state)
        lo = hi
    assert sorted(table[i] for i in state.winners().to_pylist()) == want
    assert len(state) == len(set(keys))


def test_latest_per_key_arguments() -> None:
    keys = pa.array([b"a", b"a"])
    assert _core.latest_per_key(keys, pa.array([T0, T0])).to_pylist() == [1]
    assert _core.latest_per_key(pa.array(["x", "y"]), pa.array([T0, T0])).to_pylist() == [0, 1]
    with pytest.raises(_core.InvalidValueError, match="'keys' row 1: a key cannot be null"):
        _core.latest_per_key(pa.array([b"a", None]), pa.array([T0, T0]))
    with pytest.raises(_core.InvalidValueError, match="'event_timestamp' row 0"):
        _core.latest_per_key(keys, pa.array([None, T0], pa.timestamp("us")))
    with pytest.raises(_core.InvalidValueError, match="created_timestamp has 1 values for 2"):
        _core.latest_per_key(keys, pa.array([T0, T0]), pa.array([T0]))
    with pytest.raises(_core.UnsupportedTypeError, match="'event_timestamp'.* not a timestamp"):
        _core.latest_per_key(keys, pa.array([1.0, 2.0]))
