"""Map, Struct, Json, sets, UUIDs online on every store: written from what a DataFrame or a
Parquet file holds (encoded in Rust from the whole column), read back as Feast's SDK returns
them (parsed). Feast's own bytes and reads of each type: tests/test_online_nested_feast.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_stores import STORES, online_config
from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, _core
from repast.config import RepoConfig
from repast.errors import InvalidValueError
from repast.online.stored_types import stored_type, to_json_text
from repast.types import (
    Array,
    Int64,
    Json,
    Map,
    Set,
    String,
    Struct,
    Uuid,
)
from repast.value_type import ValueType

T = datetime(2024, 1, 1, 12, tzinfo=UTC)
PROFILE = Struct({"name": String, "age": Int64})
SCHEMA = [
    Field(name="meta", dtype=Map),
    Field(name="config", dtype=Json),
    Field(name="profile", dtype=PROFILE),
    Field(name="profiles", dtype=Array(PROFILE)),
    Field(name="tags", dtype=Set(String)),
    Field(name="ids", dtype=Set(Int64)),
    Field(name="uuid", dtype=Uuid),
]


def source_table() -> pa.Table:
    # As in Feast's template: the Map column is a Parquet struct, the Json one a string.
    return pa.table(
        {
            "driver_id": pa.array([1, 2], pa.int64()),
            "event_timestamp": pa.array([T, T], pa.timestamp("us", tz="UTC")),
            "meta": pa.array(
                [{"vehicle": "suv", "rating": "4.5"}, None],
                pa.struct([("vehicle", pa.string()), ("rating", pa.string())]),
            ),
            "config": ['{"zones": ["north"], "max": 5}', None],
            "profile": pa.array([{"name": "a", "age": 30}, None], PROFILE.to_arrow_type()),
            "profiles": pa.array(
                [[{"name": "a", "age": 1}, {"name": "b", "age": 2}], []],
                Array(PROFILE).to_arrow_type(),
            ),
            "tags": [["x", "y"], None],
            "ids": [[3, 1, 3], [2]],
            "uuid": ["6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c", None],
        }
    )


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    redis = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    (tmp_path / "data").mkdir()
    pq.write_table(source_table(), tmp_path / "data" / "nested.parquet")
    config = RepoConfig.model_validate(
        {
            "project": "nested",
            "registry": str(tmp_path / "registry.json"),
            "online_store": online_config(request.param, redis),
            "repo_path": tmp_path,
        }
    )
    fs = FeatureStore(config=config)
    fs.layout = request.param  # type: ignore[attr-defined]
    yield fs
    fs.online_store.close()


def definitions() -> list[Any]:
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(
        name="nested_src", path="data/nested.parquet", timestamp_field="event_timestamp"
    )
    push = PushSource(name="nested_push", batch_source=source)
    view = FeatureView(name="nested", entities=[driver], schema=SCHEMA, source=push)
    return [driver, source, push, view]


def test_nested_values_round_trip_online(store: FeatureStore) -> None:
    store.apply(definitions())
    store.materialize(datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    refs = [f"nested:{f.name}" for f in SCHEMA]
    got = store.get_online_features(refs, {"driver_id": [1, 2, 3]}).to_dict()
    assert got["meta"] == [{"rating": "4.5", "vehicle": "suv"}, None, None]
    assert list(got["meta"][0]) == ["rating", "vehicle"]  # a Map's keys come back sorted
    assert got["config"] == [{"zones": ["north"], "max": 5}, None, None]
    assert got["profile"] == [{"name": "a", "age": 30}, None, None]
    assert list(got["profile"][0]) == ["name", "age"]  # a Struct keeps its field order
    assert got["profiles"] == [[{"name": "a", "age": 1}, {"name": "b", "age": 2}], [], None]
    assert got["tags"] == [["x", "y"], None, None]
    assert got["ids"] == [[1, 3], [2], None]  # a set: unique and sorted, as Feast holds it
    # As Feast's SDK: a uuid.UUID (the server's JSON has the text).
    assert got["uuid"] == [uuid.UUID("6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"), None, None]
    frame = store.get_online_features(["nested:meta"], {"driver_id": [1]}).to_df()
    assert frame["meta"].tolist() == [{"rating": "4.5", "vehicle": "suv"}]

    # A push of Python dicts (a DataFrame, as Feast's template pushes) replaces them.
    later = pd.Timestamp("2024-01-02", tz="UTC")
    store.push(
        "nested_push",
        pd.DataFrame(
            {
                "driver_id": [2],
                "event_timestamp": [later],
                "meta": [{"b": "2", "a": "1"}],
                "config": [orjson.dumps({"k": [1, 2]}).decode()],
                "profile": [{"name": "z", "age": 9}],
            }
        ),
    )
    got = store.get_online_features(refs[:3], {"driver_id": [2]}).to_dict()
    assert got == {
        "driver_id": [2],
        "meta": [{"a": "1", "b": "2"}],
        "config": [{"k": [1, 2]}],
        "profile": [{"name": "z", "age": 9}],
    }


def test_stored_types() -> None:
    assert stored_type(ValueType.MAP) == ValueType.JSON
    assert stored_type(ValueType.STRUCT_LIST) == ValueType.JSON
    assert stored_type(ValueType.INT64_SET) == ValueType.INT64_LIST
    assert stored_type(ValueType.UNIX_TIMESTAMP_SET) == ValueType.UNIX_TIMESTAMP_LIST
    assert stored_type(ValueType.UUID) == ValueType.STRING
    assert stored_type(ValueType.DECIMAL_SET) == ValueType.STRING_LIST
    for plain in (ValueType.INT64, ValueType.JSON, ValueType.STRING_LIST, ValueType.JSON_LIST):
        assert stored_type(plain) == plain


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=6), min_size=1, max_size=5), st.integers(0, 4))
def test_bad_json_text_names_the_column_and_row(good: list[str], where: int) -> None:
    cells: list[str] = ['{"a": 1}'] * len(good)
    row = min(where, len(cells) - 1)
    cells[row] = "{not json" + good[row]
    with pytest.raises(InvalidValueError, match=rf"column 'meta' row {row}: not a MAP value: not"):
        to_json_text(pa.array(cells), ValueType.MAP, "meta")


def test_json_text_from_arrow_maps_and_structs() -> None:
    maps = pa.array([[("b", "2"), ("a", "1")], [], None], pa.map_(pa.string(), pa.string()))
    assert to_json_text(maps, ValueType.MAP, "m").to_pylist() == ['{"a":"1","b":"2"}', "{}", None]
    structs = pa.array([{"z": 1, "a": None}], pa.struct([("z", pa.int64()), ("a", pa.string())]))
    assert to_json_text(structs, ValueType.STRUCT, "s").to_pylist() == ['{"z":1,"a":null}']
    with pytest.raises(InvalidValueError, match="column 'b' row 0: not a STRUCT value: bytes"):
        to_json_text(pa.array([{"x": b"\x00"}]), ValueType.STRUCT, "b")


# --- against Feast's own values (tests/golden/nested_values.json) ------------------------------

GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "nested_values.json").read_bytes())


def test_golden_file_was_recorded_by_feast_0_67() -> None:
    assert GOLDEN["feast_version"] == "0.67.0"
    kinds = {c["value_type"] for c in GOLDEN["cases"]}
    assert {"JSON", "JSON_LIST", "MAP", "MAP_LIST", "STRUCT", "STRUCT_LIST", "INT64_SET"} <= kinds


@pytest.mark.parametrize(
    "case",
    [c for c in GOLDEN["cases"] if c["value_type"] in ("JSON", "JSON_LIST")],
    ids=lambda c: f"{c['value_type']}:{c['hex'][:16]}",
)
def test_feast_layout_bytes_of_json_are_feasts(case: dict[str, Any]) -> None:
    # What `layout: feast` writes for a JSON or JSON_LIST feature: Feast's bytes exactly.
    vt = case["value_type_number"]
    column = pa.array([case["python_value"]], None if vt == 32 else pa.list_(pa.string()))
    encoded = _core.encode_values(column, vt, "f")
    assert encoded[0].as_py().hex() == case["hex"]
    decoded = _core.decode_values(encoded, vt, "f")
    assert decoded.to_pylist() == column.to_pylist()


def test_historical_retrieval_keeps_the_written_arrow_types(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    written = source_table()
    pq.write_table(written, tmp_path / "data" / "nested.parquet")
    config = RepoConfig.model_validate(
        {
            "project": "nested",
            "registry": str(tmp_path / "registry.json"),
            "online_store": {"type": "sqlite", "path": "data/online.db"},
            "repo_path": tmp_path,
        }
    )
    store = FeatureStore(config=config)
    store.apply(definitions())
    entity_df = pa.table(
        {
            "driver_id": pa.array([2, 1], pa.int64()),
            "event_timestamp": pa.array([T, T], pa.timestamp("us", tz="UTC")),
        }
    )
    refs = [f"nested:{f.name}" for f in SCHEMA]
    got = store.get_historical_features(entity_df, refs).to_arrow()
    for f in SCHEMA:
        assert got.schema.field(f.name).type == written.schema.field(f.name).type, f.name
        assert got.column(f.name).to_pylist() == written.column(f.name).to_pylist()[::-1], f.name
    store.online_store.close()


def test_scalar_map_keys_are_held_as_their_json_text_in_order() -> None:
    column = pa.array([[(2, "b"), (1, "a")], None], pa.map_(pa.int64(), pa.string()))
    texts = to_json_text(column, ValueType.SCALAR_MAP, "sm").to_pylist()
    assert texts == ['{"2":"b","1":"a"}', None]
