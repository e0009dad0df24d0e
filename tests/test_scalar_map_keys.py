"""ScalarMap keys beyond int, float and bool, against Feast 0.67 (tests/golden/nested_values.json,
the `scalar_map_cases` with a `key_kind`, recorded by scripts/record_feast_nested_values.py).

Feast takes bytes, uuid.UUID, decimal.Decimal and datetime (pandas.Timestamp too) keys, and so
does Repast: written as Feast's bytes on `layout: feast`, read back as Feast's SDK reads them.
The keys Feast refuses (numpy.datetime64, date, tuple, None) are refused naming column and row.
A dict with typed keys nested inside a value is the one gap (docs/feast-compatibility.md §2.6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repast import _core
from repast.errors import DecodeError, InvalidValueError
from repast.online.stored_types import json_column, python_values, scalar_map_inputs
from scalar_map_cases import KEYED, STORED, case_dict, entries, read_back, recorded_object

SM = 47


def _id(case: dict[str, Any]) -> str:
    return f"{case['key_kind']}:{orjson.dumps(case['python_pairs']).decode()[:30]}"


def _dict(case: dict[str, Any]) -> dict[Any, Any]:
    return {recorded_object(k): recorded_object(v) for k, v in case["python_pairs"]}


def _write(dicts: list[Any]) -> pa.Array:
    return _core.nested_json_text(scalar_map_inputs(dicts, "m"), SM, None, "m")


REFUSED = [c for c in KEYED if "feast_error" in c]


@pytest.mark.parametrize("case", STORED, ids=_id)
def test_repast_writes_feasts_bytes_for_every_key_kind(case: dict[str, Any]) -> None:
    stored = _write([{1: "fine"}, case_dict(case), None])
    encoded = _core.encode_nested(stored, SM, "m")
    assert encoded[1].as_py().hex() == case["hex"]
    assert case["hex_deterministic"] == case["hex"]


@pytest.mark.parametrize("case", STORED, ids=_id)
def test_every_layout_reads_what_feasts_sdk_reads(case: dict[str, Any]) -> None:
    want = read_back(case)
    # SQLite and `layout: packed` hold Repast's stored text; `layout: feast` Feast's bytes.
    stored = _write([case_dict(case)])
    from_text = python_values(json_column(stored), SM)[0]
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), SM, None, "m")
    from_feast = python_values(json_column(decoded), SM)[0]
    for got in (from_text, from_feast):
        # Entries in Feast's order, each key of Feast's type (compared as text: NaN != NaN).
        assert entries(got) == entries(want)
    assert decoded.to_pylist() == stored.to_pylist()


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_keys_feast_refuses_are_refused_naming_column_row_and_type(case: dict[str, Any]) -> None:
    key_type = case["feast_message"].split(": ")[1].split(".")[0]
    with pytest.raises(InvalidValueError, match="column 'm' row 1: not a SCALAR_MAP value") as e:
        _write([{1: "fine"}, _dict(case), {2: "fine"}])
    assert f"is of type {key_type};" in str(e.value)


def test_feasts_bytes_of_a_scalar_map_nested_in_a_value_keep_the_values() -> None:
    case = next(c for c in KEYED if c["key_kind"] == "nested_scalar_map")
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), SM, None, "m")
    got = python_values(json_column(decoded), SM)[0]
    # The outer keys are typed; an inner map's keys read as their text (the known gap).
    assert list(got) == [1, 2]
    assert got[1] == {"2": "x", "3": None}
    assert got[2] == {"aw==": {"1.5": "deep"}}
    # What was read can be written again (as a Map with those text keys, not as Feast wrote it).
    rewritten = _core.encode_nested(decoded, SM, "m")[0].as_py()
    again = _core.decode_nested(pa.array([rewritten]), SM, None, "m")
    assert python_values(json_column(again), SM)[0] == got


INT64 = st.integers(-(2**63), 2**63 - 1)
UNKEPT_KEYS = st.one_of(
    st.dates(),
    st.none(),
    st.tuples(st.integers(), st.integers()),
    st.datetimes().map(lambda d: np.datetime64(d.replace(microsecond=0))),
)
KEPT_KEYS = st.one_of(
    INT64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=8),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.one_of(st.none(), st.timezones()),
    ),
)
VALUES = st.one_of(st.none(), INT64, st.text(max_size=4), st.lists(INT64, min_size=1, max_size=3))


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.dictionaries(INT64, INT64, max_size=3), max_size=5),
    key=UNKEPT_KEYS,
    good=st.dictionaries(INT64, st.text(max_size=3), max_size=3),
)
def test_the_row_of_an_unkept_key_is_named(
    before: list[dict[int, int]], key: Any, good: dict[int, str]
) -> None:
    bad = {**good, key: 1}
    with pytest.raises(InvalidValueError) as raised:
        _write([*before, bad, good])
    message = str(raised.value)
    assert message.startswith(f"column 'm' row {len(before)}: not a SCALAR_MAP value: key ")
    assert f"is of type {type(key).__name__};" in message


def _as_read(key: Any) -> Any:
    """A key as Feast's SDK reads it back: a datetime as a UTC datetime of its whole seconds."""
    if isinstance(key, datetime):
        aware = key if key.tzinfo is not None else key.replace(tzinfo=UTC)
        return datetime.fromtimestamp(int(aware.timestamp()), UTC)
    return key


@settings(max_examples=150, deadline=None)
@given(maps=st.lists(st.one_of(st.none(), st.dictionaries(KEPT_KEYS, VALUES, max_size=4))))
def test_any_mix_of_kept_keys_reads_back_as_feast_reads_it(
    maps: list[dict[Any, Any] | None],
) -> None:
    stored = _write(maps)
    encoded = _core.encode_nested(stored, SM, "m")
    decoded = _core.decode_nested(encoded, SM, None, "m")
    for got in (
        python_values(json_column(stored), SM),
        python_values(json_column(decoded), SM),
    ):
        for row, written in enumerate(maps):
            if written is None:
                assert got[row] is None
                continue
            want: dict[Any, Any] = {}
            for k, v in written.items():
                want[_as_read(k)] = v  # keys equal once read (same second) keep the last value
            assert got[row] == want, row


def test_a_python_dict_nested_in_a_value_is_written_with_text_keys() -> None:
    # The known gap (docs/feast-compatibility.md §2.6): Feast writes the inner dict as a nested
    # `scalar_map_val` (field 47, tag fa02); Repast writes a `map_val` (field 20, tag a201)
    # with the key's text.
    stored = _write([{1: {2: "x"}}])
    assert stored.to_pylist() == ['{"1":{"2":"x"}}']
    encoded = _core.encode_nested(stored, SM, "m")[0].as_py()
    assert encoded.hex() == "fa02150a130a021001120da2010a0a080a01321203120178"


def test_the_key_walk_leaves_the_collector_as_it_found_it() -> None:
    # tag_scalar_map_keys pauses Python's cyclic collector while it allocates the pairs.
    import gc

    assert gc.isenabled()
    assert _core.tag_scalar_map_keys([{b"k": 1}], "m") == [[[{"bytes": "aw=="}, 1]]]
    assert gc.isenabled()
    with pytest.raises(InvalidValueError, match="column 'm' row 0"):
        _core.tag_scalar_map_keys([{(1, 2): 1}], "m")
    assert gc.isenabled()
    gc.disable()
    try:
        plain = {1: "a"}
        assert _core.tag_scalar_map_keys([plain, None, "text"], "m")[0] is plain
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_stored_text_reads_with_typed_keys_and_bad_text_names_the_row() -> None:
    stored = pa.array(['{"1":"a","x":{"2":[1]}}', None, '[[{"bytes":"AP8="},1],[2.5,null]]'])
    got = _core.scalar_map_objects(stored, "m")
    # A key text that is no int, float or bool (not written by Repast) stays a string key.
    assert got == [{1: "a", "x": {"2": [1]}}, None, {b"\x00\xff": 1, 2.5: None}]
    for bad, why in [
        ('[[{"uuid": "nope"}, 1]]', 'key {"uuid": "nope"} is not a UUID'),
        ("{not json", "not valid JSON"),
        ("[[1, 2, 3]]", "expected a [key, value] pair"),
    ]:
        with pytest.raises(DecodeError, match="column 'm' row 1: not a stored SCALAR_MAP") as e:
            _core.scalar_map_objects(pa.array(["{}", bad]), "m")
        assert why in str(e.value)
    with pytest.raises(DecodeError, match="column 'm': a stored SCALAR_MAP is text, not Arrow"):
        _core.scalar_map_objects(pa.array([1]), "m")
