"""Every Feast value type against Feast 0.67 itself (tests/golden/nested_values.json, recorded by
scripts/record_feast_nested_values.py): the bytes `layout: feast` writes for Map, MapList,
Struct, StructList, ValueList/ValueSet, the sets, UUIDs and decimals, what reads give back on
every store, and the values Feast refuses, refused here with an error naming column and row."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
import redis

from online_stores import STORES, store_on
from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, _core
from repast.errors import InvalidValueError
from repast.types import (
    Array,
    Bool,
    Bytes,
    Decimal,
    Float32,
    Float64,
    Int32,
    Int64,
    Json,
    Map,
    Set,
    String,
    Struct,
    TimeUuid,
    Uuid,
)
from server_helpers import client_for, run

T = datetime(2024, 1, 1, 12, tzinfo=UTC)
GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "nested_values.json").read_bytes())
NESTED = {"MAP", "MAP_LIST", "STRUCT", "STRUCT_LIST", "VALUE_LIST", "VALUE_SET"}
ENCODED = [c for c in GOLDEN["cases"] if "hex" in c and not c["value_type"].startswith("JSON")]
REFUSED = [c for c in GOLDEN["cases"] if "feast_error" in c]
_ELEMENTS: dict[str, Any] = {
    "INT64": Int64,
    "INT32": Int32,
    "STRING": String,
    "DOUBLE": Float64,
    "FLOAT": Float32,
    "BOOL": Bool,
    "BYTES": Bytes,
    "UUID": Uuid,
    "TIME_UUID": TimeUuid,
    "DECIMAL": Decimal,
}


def _id(case: dict[str, Any]) -> str:
    return f"{case['value_type']}:{orjson.dumps(case['python_value']).decode()[:40]}"


def _column(case: dict[str, Any]) -> pa.Array:
    """A one-row column holding the case's value as a DataFrame or push body would."""
    vt, value = case["value_type"], case["python_value"]
    if vt in NESTED:
        return pa.array([value if isinstance(value, str) else orjson.dumps(value).decode()])
    base = vt.removesuffix("_SET").removesuffix("_LIST")
    arrow = _ELEMENTS[base].to_arrow_type()
    return pa.array([value], pa.list_(arrow) if base != vt else arrow)


def _order_free(case: dict[str, Any]) -> bool:
    """Feast writes a set of several texts in Python's hash order, which changes per process."""
    text_set = case["value_type"] in {"STRING_SET", "UUID_SET", "TIME_UUID_SET", "DECIMAL_SET"}
    return text_set and len(case["python_value"]) > 1


def _as_feast_reads(case: dict[str, Any], value: Any) -> Any:
    """Repast's read of a value, in the form the golden file records Feast's in (UUIDs and
    decimals as their text, sets sorted)."""
    if case.get("read_as") in ("uuid", "decimal") or case["value_type"] in TEXT_SETS:
        value = None if value is None else _texts_of(value)
    if case.get("read_as") == "set" and value is not None:
        return sorted(value)
    return value


TEXT_SETS = {"UUID_SET", "TIME_UUID_SET", "DECIMAL_SET"}


def _texts_of(value: Any) -> Any:
    return [str(v) for v in value] if isinstance(value, list) else str(value)


def _sdk_types_are_feasts(case: dict[str, Any], value: Any) -> bool:
    """Feast's SDK gives `uuid.UUID` and `decimal.Decimal` objects (in lists for lists/sets)."""
    kind = {"uuid": uuid.UUID, "decimal": decimal.Decimal}.get(case.get("read_as", ""))
    if case["value_type"] in TEXT_SETS:
        kind = decimal.Decimal if case["value_type"] == "DECIMAL_SET" else uuid.UUID
    if kind is None or value is None:
        return True
    return all(isinstance(v, kind) for v in (value if isinstance(value, list) else [value]))


@pytest.mark.parametrize("case", ENCODED, ids=_id)
def test_feast_layout_bytes_are_feasts(case: dict[str, Any]) -> None:
    encoded = _core.encode_nested(_column(case), case["value_type_number"], "f")[0].as_py()
    if _order_free(case):
        feast = pa.array([bytes.fromhex(case["hex"])])
        ours = _core.decode_nested(pa.array([encoded]), case["value_type_number"])
        theirs = _core.decode_nested(feast, case["value_type_number"])
        assert sorted(ours[0].as_py()) == sorted(theirs[0].as_py())
        assert len(encoded) == len(feast[0].as_py())
        return
    # Map entries sorted by key: protobuf's deterministic form of Feast's Value. Where Feast's
    # own order cannot differ (one entry, no map), its bytes exactly.
    assert encoded.hex() == case["hex_deterministic"]
    if "map_order" not in case:
        assert encoded.hex() == case["hex"]


def _arrow_nested(case: dict[str, Any]) -> pa.Array | None:
    """The case's value as a struct/list Arrow column, when Arrow holds it exactly."""
    try:
        column = pa.array([case["python_value"]])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    same = orjson.dumps(column.to_pylist()) == orjson.dumps([case["python_value"]])
    return column if same else None


ARROW_CASES = [c for c in ENCODED if c["value_type"] in NESTED and _arrow_nested(c) is not None]


@pytest.mark.parametrize("case", ARROW_CASES, ids=_id)
def test_struct_and_list_columns_give_the_same_bytes(case: dict[str, Any]) -> None:
    column = _arrow_nested(case)
    assert column is not None
    assert not pa.types.is_string(column.type)
    encoded = _core.encode_nested(column, case["value_type_number"], "f")[0].as_py()
    assert encoded.hex() == case["hex_deterministic"]


def test_arrow_cases_cover_structs_maps_and_lists() -> None:
    assert {"MAP", "STRUCT", "STRUCT_LIST", "VALUE_LIST"} <= {c["value_type"] for c in ARROW_CASES}


@pytest.mark.parametrize("case", ENCODED, ids=_id)
def test_feasts_bytes_read_back_as_feasts_sdk_reads_them(case: dict[str, Any]) -> None:
    stored = pa.array([bytes.fromhex(case["hex"])], pa.binary())
    value = _core.decode_nested(stored, case["value_type_number"], None, "f").to_pylist()[0]
    if case["value_type"] in NESTED:
        value = orjson.loads(value)
    assert _as_feast_reads(case, value) == case["read_back"]


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_values_feast_refuses_are_errors_naming_column_and_row(case: dict[str, Any]) -> None:
    assert case["feast_error"] in ("ValueError", "TypeError")
    value = case["python_value"]
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    column = pa.array(["{}" if case["value_type"] == "MAP" else "[]", text])
    pattern = rf"column 'meta' row 1: not a {case['value_type']} value"
    with pytest.raises(InvalidValueError, match=pattern):
        _core.nested_json_text(column, case["value_type_number"], None, "meta")
    with pytest.raises(InvalidValueError, match=pattern):
        _core.encode_nested(column, case["value_type_number"], "meta")


def test_golden_file_covers_every_native_type() -> None:
    assert GOLDEN["feast_version"] == "0.67.0"
    kinds = {c["value_type"] for c in ENCODED}
    sets = {f"{k}_SET" for k in ("INT64", "INT32", "STRING", "DOUBLE", "FLOAT", "BOOL", "BYTES")}
    texts = {"UUID", "TIME_UUID", "DECIMAL", "UUID_LIST", "DECIMAL_LIST", "UUID_SET"}
    assert NESTED | sets | texts <= kinds


# --- through every online store --------------------------------------------------------------


_SCALARS: dict[type, Any] = {str: String, int: Int64, float: Float64, bool: Bool}


def _leaf(value: Any) -> Any:
    while isinstance(value, list):
        value = next((v for v in value if v not in (None, [])), "")
    return _SCALARS[type(value)]


def _struct_of(value: dict[str, Any]) -> Struct:
    def field_type(v: Any) -> Any:
        if isinstance(v, list):
            return Array(field_type(v[0]))
        return (
            String if v is None else {str: String, int: Int64, float: Float64, bool: Bool}[type(v)]
        )

    return Struct({k: field_type(v) for k, v in value.items()})


def _dtype(case: dict[str, Any]) -> Any:
    vt, value = case["value_type"], case["python_value"]
    if vt == "MAP":
        return Map
    if vt == "MAP_LIST":
        return Array(Map)
    if vt == "STRUCT":
        return _struct_of(value)
    if vt == "STRUCT_LIST":
        return Array(_struct_of(value[0] if value else {"n": 1}))
    if vt in ("VALUE_LIST", "VALUE_SET"):
        depth, probe = 0, value
        while isinstance(probe, list) and probe:
            probe = next((v for v in probe if v), [])
            depth += 1
        inner: Any = _leaf(value)
        for _ in range(max(depth - 2, 0)):
            inner = Array(inner)
        return Array(Array(inner)) if vt == "VALUE_LIST" else Set(Array(inner))
    base = vt.removesuffix("_SET").removesuffix("_LIST")
    if vt.endswith("_SET"):
        return Set(_ELEMENTS[base])
    return Array(_ELEMENTS[base]) if vt.endswith("_LIST") else _ELEMENTS[base]


# A value set mixing kinds has no declared type that fits it; a Value it holds is covered by
# the byte tests above.
STORE_CASES = [c for c in ENCODED if c["python_value"] != [[1.5], [True]]]


def _store_column(f: Field, case: dict[str, Any]) -> pa.Array:
    column = _column(case)
    return column if case["value_type"] in NESTED else column.cast(f.dtype.to_arrow_type())


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    server = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    fs = store_on(request.param, server, tmp_path, "golden_nested")
    yield fs
    fs.online_store.close()


def test_every_type_reads_back_as_feasts_sdk_does(store: FeatureStore) -> None:
    fields = [Field(name=f"f{i}", dtype=_dtype(c)) for i, c in enumerate(STORE_CASES)]
    fields.append(Field(name="cfg", dtype=Json))
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(name="g_src", path="data/g.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="g_push", batch_source=source)
    schema = [Field(name="driver_id", dtype=Int64), *fields]
    view = FeatureView(name="golden", entities=[driver], schema=schema, source=push)
    store.apply([driver, source, push, view], skip_source_validation=True)
    columns = {
        f.name: _column(c)
        if c["value_type"] in NESTED
        else _column(c).cast(f.dtype.to_arrow_type())
        for f, c in zip(fields, STORE_CASES, strict=False)
    }
    table = pa.table(
        {
            "driver_id": pa.array([1], pa.int64()),
            "event_timestamp": pa.array([T], pa.timestamp("us", tz="UTC")),
            **columns,
            "cfg": pa.array(['{"k": [1, 2]}']),
        }
    )
    store.push("g_push", table)
    refs = [f"golden:{f.name}" for f in fields]
    values = store.get_online_features(refs, {"driver_id": [1]}).to_dict()
    for f, case in zip(fields, STORE_CASES, strict=False):
        got = _as_feast_reads(case, values[f.name][0])
        assert got == case["read_back"], (case["value_type"], got)
        assert _sdk_types_are_feasts(case, values[f.name][0]), (case["value_type"], got)
    assert values["cfg"] == [{"k": [1, 2]}]
    if store.layout == "redis-feast":  # type: ignore[attr-defined]
        _assert_redis_holds_feasts_bytes(store, fields)
    # The feature server's JSON holds the same values (Rust writes them from packed rows).
    body = run(
        lambda: _post(
            store, "/get-online-features", {"features": refs, "entities": {"driver_id": [1]}}
        )
    )
    served = {
        name: result["values"][0]
        for name, result in zip(body["metadata"]["feature_names"], body["results"], strict=True)
    }
    for f, case in zip(fields, STORE_CASES, strict=False):
        got = _as_feast_reads(case, served[f.name])
        assert got == case["read_back"], ("served", case["value_type"], got)
    assert served["cfg"] == {"k": [1, 2]}


async def _post(store: FeatureStore, path: str, body: dict[str, Any]) -> Any:
    async with client_for(store) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def test_push_bodies_with_nested_values_are_written_and_served(store: FeatureStore) -> None:
    profile = Struct({"name": String, "age": Int64})
    schema = [
        Field(name="driver_id", dtype=Int64),
        Field(name="meta", dtype=Map),
        Field(name="profile", dtype=profile),
        Field(name="tags", dtype=Set(String)),
        Field(name="id", dtype=Uuid),
    ]
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(name="p_src", path="data/p.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="p_push", batch_source=source)
    view = FeatureView(name="pushed", entities=[driver], schema=schema, source=push)
    store.apply([driver, source, push, view], skip_source_validation=True)
    uid = "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"
    df = {
        "driver_id": [1, 2],
        "event_timestamp": ["2024-01-01T12:00:00Z"] * 2,
        "meta": [{"b": "2", "a": "1"}, None],
        "profile": [{"name": "x", "age": 3}, {"name": "y", "age": None}],
        "tags": [["b", "a", "b"], []],
        "id": [uid, None],
    }
    run(lambda: _post(store, "/push", {"push_source_name": "p_push", "df": df}))
    refs = [f"pushed:{f.name}" for f in schema[1:]]
    body = run(
        lambda: _post(
            store, "/get-online-features", {"features": refs, "entities": {"driver_id": [1, 2]}}
        )
    )
    served = {
        n: r["values"]
        for n, r in zip(body["metadata"]["feature_names"], body["results"], strict=True)
    }
    assert served["meta"] == [{"a": "1", "b": "2"}, None]
    assert served["profile"] == [{"name": "x", "age": 3}, {"name": "y", "age": None}]
    assert served["tags"] == [["a", "b"], []]
    assert served["id"] == [uid, None]
    # A bad value anywhere in the body: 422 naming the feature and row; nothing written.
    bad = {**df, "driver_id": [3, 4], "profile": [{"name": "z", "age": 1}, {"name": "w"}]}

    async def refused() -> httpx.Response:
        async with client_for(store) as client:
            return await client.post("/push", json={"push_source_name": "p_push", "df": bad})

    response = run(refused)
    assert response.status_code in (400, 422), response.text
    assert (
        "column 'profile' row 1: not a STRUCT value: missing declared field 'age'" in response.text
    )
    again = store.get_online_features(["pushed:meta"], {"driver_id": [3, 4]}).to_dict()
    assert again["meta"] == [None, None]


def _assert_redis_holds_feasts_bytes(store: FeatureStore, fields: list[Field]) -> None:
    key = _core.serialize_entity_keys(["driver_id"], [pa.array([1])], [4])[0].as_py()
    names = [f.name for f in fields[: len(STORE_CASES)]]
    client = redis.Redis.from_url(store.redis_url)  # type: ignore[attr-defined]
    try:
        stored = client.hmget(key + b"golden_nested", _core.feature_field_names("golden", names))
    finally:
        client.close()
    for raw, case in zip(stored, STORE_CASES, strict=True):
        assert raw is not None, case["value_type"]
        assert isinstance(raw, bytes), raw  # no decode_responses: redis-py returns bytes
        if not _order_free(case):
            assert raw.hex() == case["hex_deterministic"], case["value_type"]


BAD_ROWS = [
    ("meta", Map, '{"a": [1, "x"]}', "not a MAP value: key 'a': a list mixes"),
    (
        "meta",
        Map,
        pa.array([[(1, "x")]], pa.map_(pa.int64(), pa.string())),
        "map keys are not strings",
    ),
    ("profile", Struct({"name": String, "age": Int64}), '{"name": "x"}', "missing declared"),
    ("profile", Struct({"name": String, "age": Int64}), '{"name": 1, "age": 1}', "an integer"),
    ("id", Uuid, "not-a-uuid", '"not-a-uuid" is not a UUID'),
    ("price", Decimal, "1.2.3", '"1.2.3" is not a decimal'),
    ("cfg", Json, "{bad", '"{bad" is not JSON'),
    ("ids", Set(Int64), pa.array([[1, None]], pa.list_(pa.int64())), "a null element"),
]


@pytest.mark.parametrize(("name", "dtype", "bad", "why"), BAD_ROWS, ids=lambda v: str(v)[:24])
def test_a_bad_value_is_refused_naming_feature_and_row_and_nothing_is_written(
    store: FeatureStore, name: str, dtype: Any, bad: Any, why: str
) -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(name="b_src", path="data/b.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="b_push", batch_source=source)
    schema = [Field(name="driver_id", dtype=Int64), Field(name=name, dtype=dtype)]
    view = FeatureView(name="bad", entities=[driver], schema=schema, source=push)
    store.apply([driver, source, push, view], skip_source_validation=True)
    good = {
        "meta": '{"a": "1"}',
        "profile": '{"name": "x", "age": 1}',
        "id": "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c",
        "price": "1.5",
        "cfg": "[1]",
    }
    arrow = dtype.to_arrow_type()
    if name == "ids":
        first = pa.array([[1, 2]], arrow)
    elif name in ("meta", "profile"):
        first = pa.array([good[name]])
    else:
        first = pa.array([good[name]], arrow)
    stamps = pa.array([T, T], pa.timestamp("us", tz="UTC"))
    store.push("b_push", pa.table({"driver_id": [1], "event_timestamp": stamps[:1], name: first}))
    before = store.get_online_features([f"bad:{name}"], {"driver_id": [1, 2]}).to_dict()
    column = bad if isinstance(bad, pa.Array) else pa.array([bad])
    # Row 0 is good, row 1 bad; an Arrow map with integer keys can only be good when empty.
    head = first if column.type == first.type else pa.array([[]], column.type)
    later = pa.array([T + timedelta(hours=1)] * 2, pa.timestamp("us", tz="UTC"))
    rows = pa.table(
        {"driver_id": [2, 1], "event_timestamp": later, name: pa.concat_arrays([head, column])}
    )
    with pytest.raises(InvalidValueError, match=rf"column '{name}' row 1: .*{why}"):
        store.push("b_push", rows)
    after = store.get_online_features([f"bad:{name}"], {"driver_id": [1, 2]}).to_dict()
    assert after == before
