from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from repast import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from repast.errors import RepoValidationError
from repast.feature_logging import FileLoggingDestination, LoggingConfig
from repast.types import Float32, Float64, Int64, Invalid

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp")
stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=source,
)
no_schema = FeatureView(name="inferred", entities=[driver], source=source)
request = RequestSource(name="vals", schema=[Field(name="val", dtype=Int64)])


@on_demand_feature_view(sources=[stats, request], schema=[Field(name="plus", dtype=Float64)])
def plus(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"plus": inputs["conv_rate"] + inputs["val"]})


def round_trip(service: FeatureService) -> FeatureService:
    d = service.to_dict()
    text = json.dumps(d, sort_keys=True)
    back = FeatureService.from_dict(json.loads(text))
    assert back == service
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    return back


def test_feast_template_services() -> None:
    v1 = FeatureService(name="driver_activity_v1", features=[stats[["conv_rate"]], plus])
    v2 = FeatureService(name="driver_activity_v2", features=[stats, plus])
    p1, p2 = v1.feature_view_projections
    assert (p1.name, [f.name for f in p1.features]) == ("driver_hourly_stats", ["conv_rate"])
    assert (p2.name, p2.view_type) == ("plus", "on_demand_feature_view")
    assert [f.name for f in v2.feature_view_projections[0].features] == [
        "conv_rate",
        "acc_rate",
        "avg_daily_trips",
    ]
    round_trip(v1)
    round_trip(v2)


def test_defaults_and_repr() -> None:
    s = FeatureService(name="s", features=[stats])
    assert (s.tags, s.description, s.owner) == ({}, "", "")
    assert (s.logging_config, s.precompute_online) == (None, False)
    assert repr(FeatureService(name="s", features=[stats[["conv_rate"]], no_schema])) == (
        "FeatureService(name='s', features=['driver_hourly_stats:conv_rate', 'inferred:*'])"
    )


def test_to_dict_shape() -> None:
    s = FeatureService(
        name="s",
        features=[stats[["conv_rate"]].with_name("d").with_join_key_map({"driver_id": "id"})],
        tags={"stage": "prod"},
        description="desc",
        owner="me",
        logging_config=LoggingConfig(FileLoggingDestination(path="logs"), sample_rate=0.5),
        precompute_online=True,
    )
    assert s.to_dict() == {
        "name": "s",
        "features": [
            {
                "name": "driver_hourly_stats",
                "name_alias": "d",
                "features": [Field(name="conv_rate", dtype=Float32).to_dict()],
                "join_key_map": {"driver_id": "id"},
                "view_type": "feature_view",
            }
        ],
        "tags": {"stage": "prod"},
        "description": "desc",
        "owner": "me",
        "logging_config": {
            "destination": {
                "type": "file",
                "path": "logs",
                "s3_endpoint_override": "",
                "partition_by": [],
            },
            "sample_rate": 0.5,
        },
        "precompute_online": True,
    }
    round_trip(s)


def test_aliases_allow_one_view_twice() -> None:
    s = FeatureService(
        name="s",
        features=[
            stats.with_name("origin").with_join_key_map({"driver_id": "origin_id"}),
            stats.with_name("destination").with_join_key_map({"driver_id": "dest_id"}),
        ],
    )
    assert [p.name_to_use() for p in s.feature_view_projections] == ["origin", "destination"]
    round_trip(s)


def test_string_references() -> None:
    s = FeatureService(
        name="s", features=["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "x"]
    )
    p, x = s.feature_view_projections
    assert [f.name for f in p.features] == ["conv_rate", "acc_rate"]
    assert p.features[0].dtype is Invalid
    assert x.features == []
    s.infer_features({"driver_hourly_stats": stats, "x": no_schema})
    assert p.features == stats.features[:2]
    assert p.view_type == "feature_view"
    round_trip(s)


def test_infer_features() -> None:
    s = FeatureService(name="s", features=[no_schema, no_schema[["b"]].with_name("alias")])
    import pyarrow as pa

    view = FeatureView(name="inferred", entities=[driver], source=source)
    view.infer_schema(
        pa.schema([("driver_id", pa.int64()), ("a", pa.float64()), ("b", pa.int64())]), {}
    )
    s.infer_features({"inferred": view})
    whole, alias = s.feature_view_projections
    assert [f.name for f in whole.features] == ["a", "b"]
    assert alias.features == [Field(name="b", dtype=Int64)]
    bad = FeatureService(name="bad", features=[no_schema[["zzz"]]])
    with pytest.raises(
        RepoValidationError,
        match=r"FeatureService 'bad': view 'inferred' has no feature 'zzz' \(known: a, b\)",
    ):
        bad.infer_features({"inferred": view})
    with pytest.raises(
        RepoValidationError, match="FeatureService 'bad': feature view 'inferred' is not defined"
    ):
        bad.infer_features({})
    with pytest.raises(RepoValidationError, match="view 'inferred' has no feature 'bb'; did you"):
        FeatureService(name="s", features=[no_schema[["bb"]]]).infer_features({"inferred": view})


def test_equality_and_hash() -> None:
    a = FeatureService(name="s", features=[stats])
    assert a == FeatureService(name="s", features=[stats])
    assert a != FeatureService(name="s", features=[stats[["conv_rate"]]])
    assert hash(a) == hash(FeatureService(name="s", features=[plus]))


def test_projection_objects_are_accepted() -> None:
    p = FeatureViewProjection("driver_hourly_stats", features=stats.features[:1])
    s = FeatureService(name="s", features=[p])
    assert s.feature_view_projections == [p]
    assert s.feature_view_projections[0] is not p


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "FeatureService: name must be a non-empty string"),
        ({"features": stats}, "FeatureService 's': features must be a list"),
        ({"features": [3]}, "FeatureService 's': features: 3 is not a view"),
        (
            {"features": [stats, stats[["conv_rate"]]]},
            "FeatureService 's': feature view 'driver_hourly_stats' is listed twice; use with_name",
        ),
        ({"features": ["v:"]}, "FeatureService 's': feature reference 'v:' must look like"),
        ({"features": ["v:a", "v:a"]}, "FeatureService 's': feature 'v:a' is listed twice"),
        ({"features": ["v", "v:a"]}, "FeatureService 's': feature view 'v' is listed twice"),
        ({"features": [stats], "logging_config": "x"}, "logging_config must be a LoggingConfig"),
        ({"features": [stats], "precompute_online": 1}, "precompute_online must be True or False"),
        ({"features": [stats], "tags": ["a"]}, "FeatureService 's': tags must map strings"),
    ],
)
def test_validation(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "s", "features": [stats]}
    args.update(kwargs)
    with pytest.raises(RepoValidationError, match=message):
        FeatureService(**args)


def test_logging_config_from_a_dict_and_bad_ones() -> None:
    # A stored dict (the registry's form) reads back as the LoggingConfig it came from.
    s = FeatureService(name="s", features=[stats], logging_config={"destination": {"path": "logs"}})
    assert s.logging_config == LoggingConfig(FileLoggingDestination(path="logs"))
    with pytest.raises(RepoValidationError, match="unknown logging destination type 'bigquery'"):
        FeatureService(
            name="s", features=[stats], logging_config={"destination": {"type": "bigquery"}}
        )
    with pytest.raises(RepoValidationError, match=r"sample_rate must be a number in \[0, 1\]"):
        LoggingConfig(FileLoggingDestination(path="logs"), sample_rate=2)
    with pytest.raises(RepoValidationError, match="must be a LoggingConfig, got 'logs'"):
        FeatureService(name="s", features=[stats], logging_config="logs")  # type: ignore[arg-type]
