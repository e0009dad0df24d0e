"""Feast's local template `example_repo.py` and Feast's import paths, with `feast` → `repast`."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pandas as pd

import repast

EXAMPLE_REPO = """
from datetime import timedelta

import pandas as pd

from repast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    RequestSource,
)
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import Float32, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])

driver_stats_source = FileSource(
    name="driver_hourly_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_stats_fv = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64, description="Average daily trips"),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
)

input_request = RequestSource(
    name="vals_to_add",
    schema=[
        Field(name="val_to_add", dtype=Int64),
        Field(name="val_to_add_2", dtype=Int64),
    ],
)


@on_demand_feature_view(
    sources=[driver_stats_fv, input_request],
    schema=[
        Field(name="conv_rate_plus_val1", dtype=Float64),
        Field(name="conv_rate_plus_val2", dtype=Float64),
    ],
)
def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
    df["conv_rate_plus_val2"] = inputs["conv_rate"] + inputs["val_to_add_2"]
    return df


driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[
        driver_stats_fv[["conv_rate"]],
        transformed_conv_rate,
    ],
)
driver_activity_v2 = FeatureService(
    name="driver_activity_v2", features=[driver_stats_fv, transformed_conv_rate]
)

driver_stats_push_source = PushSource(
    name="driver_stats_push_source",
    batch_source=driver_stats_source,
)

driver_stats_fresh_fv = FeatureView(
    name="driver_hourly_stats_fresh",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_push_source,
    tags={"team": "driver_performance"},
)

transformed_conv_rate_fresh = on_demand_feature_view(
    sources=[driver_stats_fresh_fv, input_request],
    schema=[
        Field(name="conv_rate_plus_val1", dtype=Float64),
        Field(name="conv_rate_plus_val2", dtype=Float64),
    ],
)(transformed_conv_rate.udf)

driver_activity_v3 = FeatureService(
    name="driver_activity_v3",
    features=[driver_stats_fresh_fv, transformed_conv_rate],
)
"""


def load(tmp_path: Path) -> ModuleType:
    path = tmp_path / "example_repo.py"
    path.write_text(textwrap.dedent(EXAMPLE_REPO))
    spec = importlib.util.spec_from_file_location("example_repo", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feast_local_template_builds(tmp_path: Path) -> None:
    repo = load(tmp_path)
    assert repo.driver.join_key == "driver_id"
    assert repo.driver_stats_fv.ttl == timedelta(days=1)
    assert repo.driver_stats_fv.batch_source is repo.driver_stats_source
    assert repo.driver_stats_source.created_timestamp_column == "created"
    assert repo.driver_stats_fresh_fv.stream_source is repo.driver_stats_push_source
    assert repo.driver_stats_fresh_fv.batch_source is repo.driver_stats_source
    odfv = repo.transformed_conv_rate
    assert "def transformed_conv_rate(inputs: pd.DataFrame)" in odfv.udf_string
    out = odfv.udf(pd.DataFrame({"conv_rate": [0.5], "val_to_add": [1], "val_to_add_2": [2]}))
    assert list(out.columns) == ["conv_rate_plus_val1", "conv_rate_plus_val2"]
    assert [p.name for p in repo.driver_activity_v1.feature_view_projections] == [
        "driver_hourly_stats",
        "transformed_conv_rate",
    ]
    assert repo.transformed_conv_rate_fresh.name == "transformed_conv_rate"


def test_every_template_object_round_trips_through_json(tmp_path: Path) -> None:
    repo = load(tmp_path)
    count = 0
    for value in vars(repo).values():
        if type(value).__module__.startswith("repast.") and hasattr(value, "to_dict"):
            d = value.to_dict()
            back = type(value).from_dict(json.loads(json.dumps(d)))
            assert back.to_dict() == d
            assert back == value
            count += 1
    assert count == 11


def test_feast_module_paths() -> None:
    from repast.aggregation import Aggregation
    from repast.data_format import AvroFormat, JsonFormat, ParquetFormat
    from repast.data_source import KafkaSource, PushSource, RequestSource
    from repast.entity import Entity
    from repast.feature_service import FeatureService
    from repast.feature_view import FeatureView
    from repast.field import Field
    from repast.on_demand_feature_view import OnDemandFeatureView, on_demand_feature_view
    from repast.stream_feature_view import StreamFeatureView, stream_feature_view
    from repast.types import Float32
    from repast.value_type import ValueType

    exported = {
        Aggregation,
        AvroFormat,
        JsonFormat,
        ParquetFormat,
        KafkaSource,
        PushSource,
        RequestSource,
        Entity,
        FeatureService,
        FeatureView,
        Field,
        OnDemandFeatureView,
        on_demand_feature_view,
        StreamFeatureView,
        stream_feature_view,
        ValueType,
    }
    assert exported <= {getattr(repast, name) for name in repast.__all__}
    assert str(Float32) == "Float32"
