"""Entity keys and Redis field names through `repast._core`, against Feast's golden vectors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden_repo import GOLDEN
from repast import _core
from repast._core import InvalidValueError, RepastError, UnsupportedTypeError

TYPE_CODES = {"BYTES": 1, "STRING": 2, "INT32": 3, "INT64": 4, "UNIX_TIMESTAMP": 8}


def _golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def _column(spec: dict[str, Any], rows: int) -> pa.Array:
    kind, value = spec["type"], spec["value"]
    if kind == "BYTES":
        return pa.array([base64.b64decode(value)] * rows, pa.binary())
    if kind == "STRING":
        return pa.array([value] * rows, pa.string())
    if kind == "INT32":
        return pa.array([value] * rows, pa.int32())
    if kind == "UNIX_TIMESTAMP":
        return pa.array([value * 1_000_000] * rows, pa.timestamp("us", tz="UTC"))
    return pa.array([value] * rows, pa.int64())


ENTITY_CASES = _golden("entity_keys.json")["cases"]


@pytest.mark.parametrize(
    "case", ENTITY_CASES, ids=[f"{c['description']} v{c['version']}" for c in ENTITY_CASES]
)
def test_golden_entity_keys(case: dict[str, Any]) -> None:
    names = case["input_order"]
    specs = [case["join_keys"][n] for n in names]
    columns = [_column(s, 3) for s in specs]
    codes = [TYPE_CODES[s["type"]] for s in specs]
    keys = _core.serialize_entity_keys(names, columns, codes, case["version"], num_rows=3)
    assert keys.type == pa.binary()
    assert [k.hex() for k in keys.to_pylist()] == [case["hex"]] * 3
    with_project = _core.serialize_entity_keys(
        names, columns, codes, case["version"], b"proj", num_rows=3
    )
    assert with_project[2].as_py() == bytes.fromhex(case["hex"]) + b"proj"
    if case["version"] == 3:
        assert _core.entity_key_prefix(names).hex() == case["prefix_hex"]


def test_rows_are_independent() -> None:
    ids = pa.array([1001, 1002, 1003], pa.int64())
    users = pa.array(["a", "bb", ""], pa.large_string())
    keys = _core.serialize_entity_keys(["user", "driver_id"], [users, ids], [2, 4]).to_pylist()
    prefix = _core.entity_key_prefix(["user", "driver_id"])
    for key, driver, user in zip(keys, [1001, 1002, 1003], ["a", "bb", ""], strict=True):
        values = (
            (4).to_bytes(4, "little")
            + (8).to_bytes(4, "little")
            + driver.to_bytes(8, "little", signed=True)
            + (2).to_bytes(4, "little")
            + len(user).to_bytes(4, "little")
            + user.encode()
        )
        assert key == prefix + values


def test_accepted_arrow_types() -> None:
    expect = _core.serialize_entity_keys(["id"], [pa.array([1, 2], pa.int64())], [4])
    for array in [
        pa.array([1, 2], pa.int8()),
        pa.array([1, 2], pa.uint32()),
        pa.array([1, 2], pa.uint64()),
    ]:
        assert _core.serialize_entity_keys(["id"], [array], [4]) == expect
    strings = _core.serialize_entity_keys(["s"], [pa.array(["x", "y", "x"])], [2])
    for array in [
        pa.array(["x", "y", "x"], pa.large_string()),
        pa.array(["x", "y", "x"], pa.string_view()),
        pa.array(["x", "y", "x"]).dictionary_encode(),
    ]:
        assert _core.serialize_entity_keys(["s"], [array], [2]) == strings
    seconds = _core.serialize_entity_keys(["t"], [pa.array([1_704_106_800, -1], pa.int64())], [8])
    for unit, scale in [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)]:
        ts = pa.array([1_704_106_800 * scale, -1 * scale], pa.timestamp(unit, tz="Europe/Paris"))
        assert _core.serialize_entity_keys(["t"], [ts], [8]) == seconds


def test_sliced_input() -> None:
    ids = pa.array(["skip", "a", "b"]).slice(1)
    keys = _core.serialize_entity_keys(["s"], [ids], [2]).to_pylist()
    assert keys[1].endswith(b"\x01\x00\x00\x00b")
    assert len(keys) == 2


def test_zero_columns_and_the_dummy_key() -> None:
    keys = _core.serialize_entity_keys([], [], [], suffix=b"p", num_rows=2)
    assert keys.to_pylist() == [b"\x00\x00\x00\x00p"] * 2
    dummy = _core.serialize_entity_keys(["__dummy_id"], [pa.array([""])], [2])
    assert dummy[0].as_py().hex() == "01000000020000000a0000005f5f64756d6d795f69640200000000000000"
    with pytest.raises(InvalidValueError, match="num_rows is required"):
        _core.serialize_entity_keys([], [], [])


def test_null_key_names_column_and_row() -> None:
    ids = pa.array([1, 2, None, 4], pa.int64())
    with pytest.raises(InvalidValueError) as info:
        _core.serialize_entity_keys(["driver_id"], [ids], [4])
    assert (
        str(info.value) == "column 'driver_id' row 2: entity key values cannot be null (type INT64)"
    )
    assert isinstance(info.value, RepastError)


def test_out_of_range_names_column_and_row() -> None:
    ids = pa.array([1, 2**40], pa.int64())
    with pytest.raises(
        InvalidValueError, match=r"^column 'driver_id' row 1: 1099511627776 does not fit"
    ):
        _core.serialize_entity_keys(["driver_id"], [ids], [3])


def test_wrong_type_names_the_column() -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        _core.serialize_entity_keys(["driver_id"], [pa.array(["1001"])], [4])
    assert str(info.value) == (
        "column 'driver_id': an Arrow Utf8 column cannot hold entity key type INT64"
    )
    with pytest.raises(UnsupportedTypeError, match="column 'x': value type 5 cannot be an entity"):
        _core.serialize_entity_keys(["x"], [pa.array([1.5])], [5])


def test_bad_arguments() -> None:
    one = pa.array([1], pa.int64())
    with pytest.raises(InvalidValueError, match="differ in length"):
        _core.serialize_entity_keys(["a", "b"], [one], [4])
    with pytest.raises(InvalidValueError, match="version 1 is not supported"):
        _core.serialize_entity_keys(["a"], [one], [4], 1)
    with pytest.raises(InvalidValueError, match="column 'b' has 2 rows, expected 1"):
        _core.serialize_entity_keys(["a", "b"], [one, pa.array([1, 2])], [4, 4])
    with pytest.raises(InvalidValueError, match="join key 'a' is given twice"):
        _core.serialize_entity_keys(["a", "a"], [one, one], [4, 4])


MMH3_CASES = _golden("mmh3_fields.json")["cases"]


@pytest.mark.parametrize("case", MMH3_CASES, ids=[f"{c['fv']}:{c['feature']}" for c in MMH3_CASES])
def test_golden_field_names(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["input_utf8_hex"])
    assert _core.mmh3_32(data) == case["hash_u32"]
    (field,) = _core.feature_field_names(case["fv"], [case["feature"]])
    assert field.hex() == case["field_hex"]


def test_field_names_keep_request_order() -> None:
    fields = _core.feature_field_names("driver_stats", ["trips", "conv_rate", "label"])
    assert [f.hex() for f in fields] == ["426aa434", "fa731014", "25b03fc6"]


# -- small_entity_keys: plain Python values, the same bytes ---------------------------------------

_PLAIN = {
    2: st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    3: st.integers(-(2**31), 2**31 - 1),
    4: st.integers(-(2**63), 2**63 - 1),
}


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    types=st.lists(st.sampled_from(sorted(_PLAIN)), min_size=1, max_size=3),
    rows=st.integers(1, 16),
    version=st.sampled_from([2, 3]),
)
def test_small_entity_keys_equal_the_arrow_kernel(
    data: st.DataObject, types: list[int], rows: int, version: int
) -> None:
    names = [f"k{i}" for i in range(len(types))][::-1]  # not in sorted order
    columns = [data.draw(st.lists(_PLAIN[t], min_size=rows, max_size=rows)) for t in types]
    arrow = {2: pa.string(), 3: pa.int32(), 4: pa.int64()}
    arrays = [pa.array(c, arrow[t]) for c, t in zip(columns, types, strict=True)]
    expected = _core.serialize_entity_keys(names, arrays, types, version).to_pylist()
    assert _core.small_entity_keys(names, types, columns, rows, version) == expected


@pytest.mark.parametrize(
    ("key_type", "values"),
    [
        (4, [True]),
        (4, [1.0]),
        (4, [1001.7]),  # declined here, refused by the Arrow path (issue 13)
        (3, [1001.7]),
        (4, [None]),
        (4, ["1"]),
        (4, [2**63]),
        (3, [2**31]),
        (2, [1]),
        (2, [b"x"]),
        (4, (1,)),
        (4, [1, 2]),  # not `rows` values
    ],
)
def test_small_entity_keys_decline_what_is_not_plain(key_type: int, values: Any) -> None:
    assert _core.small_entity_keys(["k"], [key_type], [values], 1) is None


def test_small_entity_keys_check_their_arguments() -> None:
    with pytest.raises(RepastError, match="one of each per key"):
        _core.small_entity_keys(["a", "b"], [4], [[1]], 1)
    with pytest.raises(UnsupportedTypeError):
        _core.small_entity_keys(["a"], [5], [[1.0]], 1)
