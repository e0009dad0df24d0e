from __future__ import annotations

import copy
import json
from datetime import timedelta

import pyarrow as pa
import pytest

from repast import (
    Entity,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    JsonFormat,
    KafkaSource,
    PushSource,
    RequestSource,
    ValueType,
)
from repast.errors import RepoValidationError
from repast.feature_view import DUMMY_ENTITY, DUMMY_ENTITY_ID, DUMMY_ENTITY_NAME
from repast.types import Array, Float32, Float64, Int32, Int64, Invalid, ScalarMap, String

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(
    name="driver_hourly_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
SCHEMA = [
    Field(name="conv_rate", dtype=Float32),
    Field(name="acc_rate", dtype=Float32),
    Field(name="avg_daily_trips", dtype=Int64, description="Average daily trips"),
]


def stats_view(**kwargs: object) -> FeatureView:
    """Feast's local template `driver_hourly_stats`, with overrides."""
    args: dict[str, object] = {
        "name": "driver_hourly_stats",
        "entities": [driver],
        "ttl": timedelta(days=1),
        "schema": list(SCHEMA),
        "online": True,
        "source": source,
        "tags": {"team": "driver_performance"},
    }
    args.update(kwargs)
    return FeatureView(**args)  # type: ignore[arg-type]


def round_trip(view: FeatureView) -> FeatureView:
    d = view.to_dict()
    text = json.dumps(d, sort_keys=True)
    back = FeatureView.from_dict(json.loads(text))
    assert back == view
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    return back


def test_feast_template_view() -> None:
    fv = stats_view()
    assert fv.entities == ["driver"]
    assert fv.join_keys == ["driver_id"]
    assert fv.entity_columns == []
    assert [f.name for f in fv.features] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert fv.ttl == timedelta(days=1)
    assert fv.batch_source is source
    assert fv.stream_source is None
    assert fv.online is True
    assert fv.tags == {"team": "driver_performance"}
    assert fv.projection.name_to_use() == "driver_hourly_stats"
    assert [f.name for f in fv.projection.features] == [f.name for f in fv.features]


def test_defaults() -> None:
    fv = FeatureView(name="v", source=source)
    assert fv.ttl == timedelta(0)
    assert (fv.online, fv.offline) == (True, False)
    assert (fv.description, fv.owner, fv.org, fv.tags) == ("", "", "", {})
    assert (fv.mode, fv.enable_validation, fv.version, fv.enabled) == (None, False, "latest", True)
    assert fv.sink_source is None
    assert FeatureView(name="v", source=source, ttl=None).ttl == timedelta(0)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        FeatureView("v", source)  # type: ignore[call-arg]


def test_schema_split_into_entity_columns_and_features() -> None:
    fv = stats_view(schema=[Field(name="driver_id", dtype=Int64), *SCHEMA])
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int64)]
    assert [f.name for f in fv.features] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert [f.name for f in fv.schema] == ["driver_id", "conv_rate", "acc_rate", "avg_daily_trips"]
    assert round_trip(fv).join_keys == ["driver_id"]


def test_entity_less_view_uses_the_dummy_entity() -> None:
    fv = FeatureView(name="global_stats", source=source, schema=SCHEMA)
    assert fv.entities == [DUMMY_ENTITY_NAME] == ["__dummy"]
    assert fv.join_keys == []
    assert DUMMY_ENTITY.join_key == DUMMY_ENTITY_ID == "__dummy_id"
    assert round_trip(fv).entities == ["__dummy"]


def test_push_source_routing() -> None:
    push = PushSource(name="driver_stats_push_source", batch_source=source)
    fv = stats_view(name="driver_hourly_stats_fresh", source=push)
    assert fv.stream_source is push
    assert fv.batch_source is source
    back = round_trip(fv)
    assert isinstance(back.stream_source, PushSource)
    assert back.batch_source == source


def test_kafka_source_routing() -> None:
    kafka = KafkaSource(
        name="events",
        timestamp_field="event_timestamp",
        message_format=JsonFormat("driver_id integer"),
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="events",
        batch_source=source,
    )
    fv = stats_view(source=kafka)
    assert (fv.stream_source, fv.batch_source) == (kafka, source)
    round_trip(fv)


def test_to_dict_shape() -> None:
    d = stats_view().to_dict()
    assert list(d) == [
        "name",
        "entities",
        "entity_columns",
        "features",
        "ttl",
        "batch_source",
        "stream_source",
        "sink_source",
        "online",
        "offline",
        "description",
        "tags",
        "owner",
        "org",
        "mode",
        "enable_validation",
        "version",
        "enabled",
    ]
    assert d["ttl"] == 86400
    assert d["entities"] == ["driver"]
    assert d["features"][0] == {
        "name": "conv_rate",
        "dtype": "Float32",
        "description": "",
        "tags": {},
        "vector_index": False,
        "vector_length": 0,
        "vector_search_metric": None,
    }
    assert d["batch_source"] == source.to_dict()
    assert stats_view(ttl=timedelta(milliseconds=1500)).to_dict()["ttl"] == 1.5


def test_round_trip_everything() -> None:
    fv = stats_view(
        schema=[Field(name="driver_id", dtype=Int64), Field(name="emb", dtype=Array(Float32))],
        ttl=timedelta(hours=2, milliseconds=5),
        offline=True,
        online=False,
        description="d",
        owner="o",
        org="org",
        mode="python",
        enable_validation=True,
        version="v2",
        enabled=False,
        sink_source=FileSource(path="sink.parquet"),
    )
    back = round_trip(fv)
    assert back.ttl == fv.ttl
    assert back.sink_source == fv.sink_source


def test_equality_hash_and_repr() -> None:
    assert stats_view() == stats_view()
    assert stats_view() != stats_view(ttl=timedelta(hours=1))
    assert hash(stats_view()) == hash(stats_view(ttl=timedelta(hours=1)))
    assert stats_view() != stats_view()[["conv_rate"]]
    assert repr(stats_view()).startswith(
        "FeatureView(name='driver_hourly_stats', entities=['driver'], "
        "features=['conv_rate', 'acc_rate', 'avg_daily_trips'], ttl=datetime.timedelta(days=1)"
    )


def test_feature_selection() -> None:
    fv = stats_view()
    sub = fv[["avg_daily_trips", "conv_rate"]]
    assert [f.name for f in sub.projection.features] == ["avg_daily_trips", "conv_rate"]
    assert [f.name for f in fv.projection.features] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert sub.features == fv.features
    assert sub.name == fv.name
    with pytest.raises(
        RepoValidationError,
        match="FeatureView 'driver_hourly_stats': has no feature 'nope' "
        r"\(known: acc_rate, avg_daily_trips, conv_rate\)",
    ):
        fv[["nope"]]
    with pytest.raises(
        RepoValidationError, match="has no feature 'conv_rat'; did you mean 'conv_rate'"
    ):
        fv[["conv_rat"]]
    with pytest.raises(RepoValidationError, match="names a feature twice"):
        fv[["conv_rate", "conv_rate"]]
    with pytest.raises(RepoValidationError, match="select features with a list of names"):
        fv["conv_rate"]  # type: ignore[index]


def test_feature_selection_before_inference_keeps_names() -> None:
    fv = FeatureView(name="v", entities=[driver], source=source)
    sub = fv[["a"]]
    assert sub.projection.features == [Field(name="a", dtype=Invalid)]


def test_with_name_and_join_key_map() -> None:
    fv = stats_view()
    origin = fv.with_name("origin").with_join_key_map({"driver_id": "origin_id"})
    assert origin.projection.name_to_use() == "origin"
    assert origin.projection.name_alias == "origin"
    assert origin.projection.join_key_map == {"driver_id": "origin_id"}
    assert fv.projection.name_alias is None
    assert fv.projection.join_key_map == {}
    with pytest.raises(
        RepoValidationError,
        match=r"FeatureView 'driver_hourly_stats': join_key_map key 'x' is not a join key",
    ):
        fv.with_join_key_map({"x": "y"})
    with pytest.raises(RepoValidationError, match="with_name needs a non-empty string"):
        fv.with_name("")


def test_with_projection_and_copy() -> None:
    fv = stats_view()
    projection = FeatureViewProjection(
        "driver_hourly_stats", name_alias="d", features=[SCHEMA[0]], join_key_map={}
    )
    used = fv.with_projection(projection)
    assert used.projection == projection
    assert used.projection is not projection
    cp = copy.copy(fv)
    assert cp == fv
    assert cp.projection is not fv.projection
    with pytest.raises(RepoValidationError, match="projection is of view 'other'"):
        fv.with_projection(FeatureViewProjection("other"))
    with pytest.raises(RepoValidationError, match="projection selects unknown feature 'x'"):
        fv.with_projection(
            FeatureViewProjection("driver_hourly_stats", features=[Field(name="x", dtype=Int64)])
        )
    with pytest.raises(RepoValidationError, match="with_projection needs a FeatureViewProjection"):
        fv.with_projection("p")  # type: ignore[arg-type]


def test_projection_round_trip() -> None:
    p = FeatureViewProjection(
        "v", name_alias="a", features=SCHEMA, join_key_map={"k": "c"}, view_type="feature_view"
    )
    d = p.to_dict()
    assert FeatureViewProjection.from_dict(json.loads(json.dumps(d))) == p
    assert repr(p) == (
        "FeatureViewProjection(name='v', name_alias='a', features=['conv_rate', 'acc_rate', "
        "'avg_daily_trips'], join_key_map={'k': 'c'})"
    )
    assert hash(p) == hash(p.copy())


# --- infer_schema ------------------------------------------------------------------------------

SOURCE_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("created", pa.timestamp("us", tz="UTC")),
        ("conv_rate", pa.float32()),
        ("acc_rate", pa.float64()),
        ("label", pa.string()),
        ("hist", pa.list_(pa.int32())),
    ]
)


def test_infer_schema_fills_features_and_entity_columns() -> None:
    fv = FeatureView(name="v", entities=[driver], source=source)
    fv.infer_schema(SOURCE_SCHEMA, {"driver": driver})
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int64)]
    assert fv.features == [
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float64),
        Field(name="label", dtype=String),
        Field(name="hist", dtype=Array(Int32)),
    ]
    assert fv.projection.features == fv.features
    round_trip(fv)


def test_infer_schema_keeps_declared_features() -> None:
    fv = stats_view()
    fv.infer_schema(SOURCE_SCHEMA, {"driver": driver})
    assert [f.name for f in fv.features] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int64)]


def test_infer_schema_uses_declared_entity_value_type() -> None:
    typed = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT32)
    fv = FeatureView(name="v", entities=[typed], source=source)
    fv.infer_schema(SOURCE_SCHEMA, {"driver": typed})
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int32)]


def test_infer_schema_after_field_mapping() -> None:
    mapped = FileSource(
        path="x.parquet", timestamp_field="ts", field_mapping={"id": "driver_id", "c": "conv"}
    )
    schema = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("ns")), ("c", pa.float64())])
    fv = FeatureView(name="v", entities=["driver"], source=mapped)
    fv.infer_schema(schema, {"driver": driver})
    assert fv.join_keys == ["driver_id"]
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int64)]
    assert fv.features == [Field(name="conv", dtype=Float64)]


def test_infer_schema_moves_join_keys_of_entities_given_by_name() -> None:
    fv = FeatureView(
        name="v", entities=["driver"], source=source, schema=[Field(name="driver_id", dtype=Int64)]
    )
    assert fv.features == [Field(name="driver_id", dtype=Int64)]
    fv.infer_schema(SOURCE_SCHEMA, {"driver": driver})
    assert fv.entity_columns == [Field(name="driver_id", dtype=Int64)]
    assert "driver_id" not in [f.name for f in fv.features]
    assert "driver_id" not in [f.name for f in fv.projection.features]
    assert fv.join_keys == ["driver_id"]


def test_infer_schema_entity_less() -> None:
    fv = FeatureView(name="v", source=source)
    fv.infer_schema(SOURCE_SCHEMA, {DUMMY_ENTITY_NAME: DUMMY_ENTITY})
    assert fv.join_keys == []
    assert fv.entity_columns == []
    assert [f.name for f in fv.features][:2] == ["driver_id", "conv_rate"]


def test_infer_schema_errors() -> None:
    fv = FeatureView(name="v", entities=["rider"], source=source)
    with pytest.raises(RepoValidationError, match="FeatureView 'v': entity 'rider' is not defined"):
        fv.infer_schema(SOURCE_SCHEMA, {})
    with pytest.raises(
        RepoValidationError, match="entity 'rider' is not defined; did you mean 'riders'"
    ):
        fv.infer_schema(SOURCE_SCHEMA, {"riders": Entity(name="riders")})
    rider = Entity(name="rider", join_keys=["rider_id"])
    with pytest.raises(
        RepoValidationError,
        match="FeatureView 'v': join key 'rider_id' of entity 'rider' is not a column of source "
        "'driver_hourly_stats_source'",
    ):
        FeatureView(name="v", entities=[rider], source=source).infer_schema(SOURCE_SCHEMA, {})
    # A map with string keys is a Map feature (as Feast's), with int, float, bool, binary or
    # timestamp keys a ScalarMap (Feast says MAP, which then cannot hold them); other keys
    # (uint64, which int64 keys cannot hold) have no type.
    odd = pa.schema([("driver_id", pa.int64()), ("m", pa.map_(pa.uint64(), pa.string()))])
    with pytest.raises(
        RepoValidationError, match="FeatureView 'v': column 'm' has Arrow type map<uint64, string>"
    ):
        FeatureView(name="v", entities=[driver], source=source).infer_schema(odd, {})
    for key in (pa.int64(), pa.binary(), pa.timestamp("us", tz="UTC")):
        keyed = pa.schema([("driver_id", pa.int64()), ("m", pa.map_(key, pa.string()))])
        inferred = FeatureView(name="v", entities=[driver], source=source)
        inferred.infer_schema(keyed, {})
        assert [(f.name, f.dtype) for f in inferred.features] == [("m", ScalarMap)]
    typed = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.STRING)
    declared = FeatureView(
        name="v", entities=[driver], source=source, schema=[Field(name="driver_id", dtype=Int64)]
    )
    with pytest.raises(
        RepoValidationError,
        match="FeatureView 'v': field 'driver_id' has dtype Int64 but entity 'driver' declares "
        "value type STRING",
    ):
        declared.infer_schema(SOURCE_SCHEMA, {"driver": typed})


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "FeatureView: name must be a non-empty string"),
        (
            {"ttl": timedelta(hours=-1)},
            "FeatureView 'driver_hourly_stats': ttl must not be negative",
        ),
        ({"ttl": 3600}, "FeatureView 'driver_hourly_stats': ttl must be a datetime.timedelta"),
        ({"source": None}, "FeatureView 'driver_hourly_stats': source is required"),
        (
            {"source": RequestSource(name="r", schema=SCHEMA)},
            "FeatureView 'driver_hourly_stats': source must be a batch or stream DataSource",
        ),
        (
            {"source": PushSource(name="p")},
            "FeatureView 'driver_hourly_stats': stream source 'p' has no batch_source",
        ),
        (
            {"source": FeatureView(name="base", source=source)},
            "FeatureView 'driver_hourly_stats': a view derived from another view",
        ),
        (
            {"entities": [driver, driver]},
            "FeatureView 'driver_hourly_stats': entity 'driver' is listed twice",
        ),
        ({"entities": [1]}, "FeatureView 'driver_hourly_stats': entities must be a list of Entity"),
        (
            {"schema": [SCHEMA[0], SCHEMA[0]]},
            "FeatureView 'driver_hourly_stats': schema names 'conv_rate' twice",
        ),
        ({"schema": ["conv_rate"]}, "FeatureView 'driver_hourly_stats': schema must be a list"),
        (
            {
                "entities": [
                    Entity(name="d", join_keys=["driver_id"], value_type=ValueType.STRING)
                ],
                "schema": [Field(name="driver_id", dtype=Int64)],
            },
            "FeatureView 'driver_hourly_stats': field 'driver_id' has dtype Int64 but entity 'd' "
            "declares value type STRING",
        ),
        (
            {"source": FileSource(path="p", field_mapping={"conv_rate": "conv"})},
            "FeatureView 'driver_hourly_stats': schema field 'conv_rate' is a source column that "
            "field_mapping renames to 'conv'",
        ),
        ({"online": "yes"}, "FeatureView 'driver_hourly_stats': online must be True or False"),
        ({"tags": {"a": 1}}, "FeatureView 'driver_hourly_stats': tags must map strings"),
        (
            {"sink_source": "s3://x"},
            "FeatureView 'driver_hourly_stats': sink_source must be a DataSource",
        ),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        stats_view(**kwargs)
