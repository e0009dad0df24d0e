"""MessageDecoder: JSON messages → typed Arrow columns of a view; bad rows named, not raised."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repast import Entity, Field, FileSource, KafkaSource, StreamFeatureView, ValueType
from repast.data_format import JsonFormat
from repast.stream import MessageDecoder, parse_timestamps
from repast.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
UTC0 = datetime(2024, 1, 1, tzinfo=UTC)


def decoder(
    schema: list[Field] | None = None,
    field_mapping: dict[str, str] | None = None,
    timestamp_field: str = "ts",
    join_type: ValueType = ValueType.INT64,
) -> MessageDecoder:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=join_type)
    source = KafkaSource(
        name="events",
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="events",
        timestamp_field=timestamp_field,
        batch_source=FileSource(name="log", path="log.parquet", timestamp_field="ts"),
        message_format=JsonFormat("driver_id bigint, ts timestamp"),
        field_mapping=field_mapping,
    )
    join = Field(name="driver_id", dtype=Int64 if join_type == ValueType.INT64 else String)
    view = StreamFeatureView(
        name="v",
        entities=[driver],
        schema=[join, *(schema or [Field(name="x", dtype=Float64)])],
        source=source,
    )
    return MessageDecoder(view, source)


def msgs(*objects: Any) -> list[bytes]:
    return [o if isinstance(o, bytes) else orjson.dumps(o) for o in objects]


def test_columns_are_typed_by_the_view_schema() -> None:
    d = decoder(
        [
            Field(name="i32", dtype=Int32),
            Field(name="f32", dtype=Float32),
            Field(name="b", dtype=Bool),
            Field(name="s", dtype=String),
            Field(name="raw", dtype=Bytes),
            Field(name="xs", dtype=Array(Int64)),
        ]
    )
    out = d.decode(
        msgs(
            {"driver_id": 1, "ts": T0, "i32": 7, "f32": 2, "b": True, "s": "a", "raw": "hi",
             "xs": [1, 2]},
            {"driver_id": 2, "ts": T0, "extra": "ignored"},
        )
    )  # fmt: skip
    assert out.errors == {}
    assert out.table.schema.field("i32").type == pa.int32()
    assert out.table.schema.field("f32").type == pa.float32()
    assert out.table.schema.field("raw").type == pa.binary()
    assert out.table.schema.field("xs").type == pa.list_(pa.int64())
    assert out.table.column("raw").to_pylist() == [b"hi", None]
    assert out.table.column("xs").to_pylist() == [[1, 2], None]
    assert out.table.column_names == ["driver_id", "ts", "i32", "f32", "b", "s", "raw", "xs"]
    assert out.rows.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, UTC0),
        (T0 + 0.25, datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
        (T0 * 1000 + 5, datetime(2024, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)),
        (T0 * 1_000_000 + 7, datetime(2024, 1, 1, 0, 0, 0, 7, tzinfo=UTC)),
        (T0 * 1_000_000_000, UTC0),
        ("2024-01-01T00:00:00Z", UTC0),
        ("2024-01-01T02:00:00+02:00", UTC0),
        ("2024-01-01 00:00:00", UTC0),  # naive means UTC
        ("2024-01-01T00:00:00.123456789Z", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_event_times_as_iso_strings_or_epoch_numbers(value: Any, expected: datetime) -> None:
    array, errors = parse_timestamps([value])
    assert errors == {}
    assert array.to_pylist() == [expected]


def test_mixed_timestamp_kinds_in_one_batch() -> None:
    array, errors = parse_timestamps([T0, "2024-01-01", "2024-01-01T00:00:00Z", None, "x", []])
    assert array.to_pylist()[:4] == [UTC0, UTC0, UTC0, None]
    assert sorted(errors) == [4, 5]


def test_field_mapping_is_applied() -> None:
    d = decoder(
        field_mapping={"id": "driver_id", "when": "ts", "value": "x"}, timestamp_field="when"
    )
    out = d.decode(msgs({"id": 3, "when": T0, "value": 1.5}))
    assert out.errors == {}
    assert d.event_timestamp_column == "ts"
    assert out.table.to_pylist() == [{"driver_id": 3, "ts": UTC0, "x": 1.5}]


def test_bad_rows_are_reported_and_left_out() -> None:
    d = decoder()
    out = d.decode(
        [
            *msgs({"driver_id": 1, "ts": T0, "x": 1}),
            b"\xff",
            None,
            *msgs(
                {"ts": T0},
                {"driver_id": True, "ts": T0},
                {"driver_id": 2**63, "ts": T0},
                {"driver_id": 4, "ts": T0, "x": "1.5"},
                {"driver_id": 5},
                {"driver_id": 6, "ts": {"at": 1}},
                {"driver_id": 7, "ts": T0, "x": 2.5},
            ),
        ]
    )
    reasons = {i: r.reason for i, r in out.errors.items()}
    assert reasons == {
        1: "not_json",
        2: "not_json",
        3: "missing_join_key",
        4: "wrong_type",
        5: "wrong_type",
        6: "wrong_type",
        7: "bad_timestamp",
        8: "bad_timestamp",
    }
    assert out.rows.tolist() == [0, 9]
    assert out.table.column("driver_id").to_pylist() == [1, 7]
    assert out.table.column("x").to_pylist() == [1.0, 2.5]


def test_integers_must_be_whole() -> None:
    d = decoder([Field(name="n", dtype=Int64)])
    out = d.decode(msgs({"driver_id": 1, "ts": T0, "n": 2.0}, {"driver_id": 2, "ts": T0, "n": 2.5}))
    assert out.table.column("n").to_pylist() == [2]
    assert out.errors[1].reason == "wrong_type"
    assert "2.5" in out.errors[1].error


def test_string_join_keys_reject_numbers() -> None:
    d = decoder(join_type=ValueType.STRING)
    out = d.decode(msgs({"driver_id": "a", "ts": T0}, {"driver_id": 1, "ts": T0}))
    assert out.table.column("driver_id").to_pylist() == ["a"]
    assert out.errors[1].reason == "wrong_type"


def test_an_empty_batch() -> None:
    out = decoder().decode([])
    assert len(out.table) == 0
    assert out.errors == {}


def test_a_zoned_timestamp_stays_text_for_the_writer_to_read_its_zone() -> None:
    from repast.online.stored_types import python_values, to_zoned_text
    from repast.types import ZonedTimestamp

    d = decoder([Field(name="z", dtype=ZonedTimestamp)])
    out = d.decode(
        msgs(
            {"driver_id": 1, "ts": T0, "z": "2024-03-10T01:30:00-05:00[America/New_York]"},
            {"driver_id": 2, "ts": T0, "z": "2024-03-10T06:30:00+05:30"},
            {"driver_id": 3, "ts": T0, "z": 1710052200},  # a number: refused, as Feast does
        )
    )
    assert list(out.errors) == [2]
    assert out.table.schema.field("z").type == pa.string()
    zoned = python_values(to_zoned_text(out.table.column("z"), "z"), ValueType.ZONED_TIMESTAMP)
    assert [v.isoformat() for v in zoned] == [
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T06:30:00+05:30",
    ]
    assert str(zoned[0].tzinfo) == "America/New_York"


def test_nested_features_become_json_text_and_bad_ones_are_named() -> None:
    from repast.online.stored_types import json_column, python_values, to_json_text
    from repast.types import Map, ScalarMap, Struct

    d = decoder(
        [
            Field(name="m", dtype=Map),
            Field(name="s", dtype=Struct({"name": String, "age": Int64})),
            Field(name="k", dtype=ScalarMap),
        ]
    )
    good = {"m": {"b": 1, "a": [1.5]}, "s": {"name": "x", "age": 3}, "k": {"1": "a"}}
    tagged = [[{"bytes": "AP8="}, 1], [{"uuid": "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"}, 2]]
    out = d.decode(
        msgs(
            {"driver_id": 1, "ts": T0, **good},
            {"driver_id": 2, "ts": T0, "m": "not a map"},
            {"driver_id": 3, "ts": T0, "s": {"name": "y", "age": 4, "extra": 1}},
            {"driver_id": 4, "ts": T0, "k": {"a": 1}},
            {"driver_id": 5, "ts": T0, "k": tagged},  # typed keys as /push takes them
            {"driver_id": 6, "ts": T0},  # absent nested fields are null
            {"driver_id": 7, "ts": T0, "k": [[{"uuid": "nope"}, 1]]},
            {"driver_id": 8, "ts": T0, "m": {"a": 2**63}},  # JSON takes it; Feast's int64 not
        )
    )
    assert {i: r.reason for i, r in out.errors.items()} == {
        1: "wrong_type",
        2: "wrong_type",
        3: "wrong_type",
        6: "wrong_type",
        7: "wrong_type",
    }
    assert out.errors[1].error.startswith("feature 'm': not a MAP value: ")
    assert "extra" in out.errors[2].error
    assert out.errors[3].error.startswith("feature 'k': not a SCALAR_MAP value: key \"a\"")
    assert out.errors[6].error == (
        'feature \'k\': not a SCALAR_MAP value: element 0: key {"uuid": "nope"} is not a UUID'
    )
    assert "integer 9223372036854775808 does not fit in int64" in out.errors[7].error
    assert out.table.column("driver_id").to_pylist() == [1, 5, 6]
    assert out.table.schema.field("m").type == pa.string()
    # The writer's converter reads the cells back as the values sent.
    stored = to_json_text(out.table.column("k"), ValueType.SCALAR_MAP, "k")
    assert python_values(json_column(stored), ValueType.SCALAR_MAP) == [
        {1: "a"},
        {b"\x00\xff": 1, uuid.UUID("6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"): 2},
        None,
    ]
    struct = to_json_text(out.table.column("s"), ValueType.STRUCT, "s")
    assert struct.to_pylist() == ['{"name":"x","age":3}', None, None]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=6))
def test_any_json_in_a_nested_field_is_stored_or_dead_lettered(values: list[Any]) -> None:
    from repast.online.stored_types import to_json_text
    from repast.types import Map, ScalarMap, Struct

    struct = Struct({"a": Int64})
    d = decoder(
        [
            Field(name="m", dtype=Map),
            Field(name="s", dtype=struct),
            Field(name="k", dtype=ScalarMap),
        ]
    )
    messages = [{"driver_id": i, "ts": T0, "m": v, "s": v, "k": v} for i, v in enumerate(values)]
    out = d.decode(msgs(*messages))  # never raises: every message is kept or rejected
    assert sorted([*out.rows.tolist(), *out.errors]) == list(range(len(values)))
    assert {r.reason for r in out.errors.values()} <= {"wrong_type"}
    for rejection in out.errors.values():
        assert rejection.error.startswith(("feature 'm': ", "feature 's': ", "feature 'k': "))
    # What was kept, the writer takes.
    to_json_text(out.table.column("m"), ValueType.MAP, "m")
    to_json_text(out.table.column("s"), ValueType.STRUCT, "s", struct.to_arrow_type())
    to_json_text(out.table.column("k"), ValueType.SCALAR_MAP, "k")
