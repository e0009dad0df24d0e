from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from repast import (
    Aggregation,
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from repast.errors import RepoValidationError
from repast.on_demand_feature_view import compile_udf, udf_source
from repast.types import Float32, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
driver_stats_fv = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32)],
    source=FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp"),
)
input_request = RequestSource(
    name="vals_to_add",
    schema=[Field(name="val_to_add", dtype=Int64), Field(name="val_to_add_2", dtype=Int64)],
)
OUT = [
    Field(name="conv_rate_plus_val1", dtype=Float64),
    Field(name="conv_rate_plus_val2", dtype=Float64),
]


@on_demand_feature_view(sources=[driver_stats_fv, input_request], schema=OUT)
def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
    df["conv_rate_plus_val2"] = inputs["conv_rate"] + inputs["val_to_add_2"]
    return df


@on_demand_feature_view(
    name="python_mode",
    sources=[driver_stats_fv[["conv_rate"]], input_request],
    schema=[Field(name="doubled", dtype=Float64)],
    mode="python",
    description="doubles",
    tags={"k": "v"},
    owner="me",
    write_to_online_store=True,
)
def doubled_udf(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": [2 * x for x in inputs["conv_rate"]]}


INPUTS = pd.DataFrame({"conv_rate": [0.5, 1.0], "val_to_add": [1, 2], "val_to_add_2": [10, 20]})


def round_trip(view: OnDemandFeatureView) -> OnDemandFeatureView:
    d = view.to_dict()
    text = json.dumps(d, sort_keys=True)
    back = OnDemandFeatureView.from_dict(json.loads(text))
    assert back == view
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    return back


def test_feast_template_odfv() -> None:
    odfv = transformed_conv_rate
    assert isinstance(odfv, OnDemandFeatureView)
    assert odfv.name == "transformed_conv_rate"
    assert odfv.mode == "pandas"
    assert odfv.features == OUT
    assert list(odfv.source_feature_view_projections) == ["driver_hourly_stats"]
    assert odfv.source_request_sources == {"vals_to_add": input_request}
    projection = odfv.source_feature_view_projections["driver_hourly_stats"]
    assert [f.name for f in projection.features] == ["conv_rate", "acc_rate"]
    assert odfv.udf is not None
    out = odfv.udf(INPUTS)
    assert list(out["conv_rate_plus_val1"]) == [1.5, 3.0]
    assert odfv.udf_string.startswith("@on_demand_feature_view(")
    assert "def transformed_conv_rate(inputs: pd.DataFrame)" in odfv.udf_string
    assert odfv.projection.features == OUT


def test_defaults() -> None:
    odfv = transformed_conv_rate
    assert odfv.entities == []
    assert (odfv.description, odfv.tags, odfv.owner, odfv.org) == ("", {}, "", "")
    assert (odfv.write_to_online_store, odfv.singleton, odfv.track_metrics) == (False,) * 3
    assert odfv.aggregations == []
    assert (odfv.version, odfv.enabled) == ("latest", True)


def test_round_trip_rebuilds_the_udf_from_its_source() -> None:
    back = round_trip(transformed_conv_rate)
    assert back.udf is None
    udf = back.resolve_udf()
    assert back.udf is udf
    pd.testing.assert_frame_equal(udf(INPUTS), transformed_conv_rate.udf(INPUTS))
    d = transformed_conv_rate.to_dict()
    assert d["udf_name"] == "transformed_conv_rate"
    assert [p["name"] for p in d["source_feature_view_projections"]] == ["driver_hourly_stats"]
    assert [s["name"] for s in d["source_request_sources"]] == ["vals_to_add"]


def test_python_mode_and_name_override() -> None:
    odfv = doubled_udf
    assert odfv.name == "python_mode"
    assert odfv.udf_name == "doubled_udf"
    assert odfv.mode == "python"
    assert odfv.write_to_online_store is True
    projection = odfv.source_feature_view_projections["driver_hourly_stats"]
    assert [f.name for f in projection.features] == ["conv_rate"]
    back = round_trip(odfv)
    assert back.resolve_udf()({"conv_rate": [1.0, 2.5]}) == {"doubled": [2.0, 5.0]}


def test_class_constructor_with_entities_and_aggregations() -> None:
    def udf(inputs: pd.DataFrame) -> pd.DataFrame:
        return inputs

    odfv = OnDemandFeatureView(
        name="agg",
        entities=[driver],
        schema=[Field(name="s", dtype=Float64)],
        sources=[driver_stats_fv.with_name("d")],
        udf=udf,
        aggregations=[Aggregation(column="conv_rate", function="sum")],
    )
    assert odfv.entities == ["driver"]
    assert list(odfv.source_feature_view_projections) == ["d"]
    round_trip(odfv)


def test_equality_hash_repr() -> None:
    assert transformed_conv_rate == round_trip(transformed_conv_rate)
    assert transformed_conv_rate != doubled_udf
    assert hash(transformed_conv_rate) == hash(round_trip(transformed_conv_rate))
    assert repr(transformed_conv_rate) == (
        "OnDemandFeatureView(name='transformed_conv_rate', features=['conv_rate_plus_val1', "
        "'conv_rate_plus_val2'], sources=['driver_hourly_stats', 'vals_to_add'], mode='pandas')"
    )
    sub = transformed_conv_rate[["conv_rate_plus_val2"]]
    assert [f.name for f in sub.projection.features] == ["conv_rate_plus_val2"]


def test_udf_without_source_text() -> None:
    namespace: dict[str, Any] = {}
    exec("def f(inputs):\n    return inputs\n", namespace)
    assert udf_source(namespace["f"]) == ""
    assert udf_source(len) == ""
    odfv = OnDemandFeatureView(name="f", schema=OUT, sources=[input_request], udf=namespace["f"])
    back = round_trip(odfv)
    with pytest.raises(RepoValidationError, match="OnDemandFeatureView 'f': the udf's source text"):
        back.resolve_udf()


def test_compile_udf() -> None:
    source = "@decorator(\n    x=1,\n)\ndef f(inputs: pd.DataFrame) -> int:\n    return k + 1\n"
    assert compile_udf(source, "f", {"k": 41})(None) == 42
    with pytest.raises(ValueError, match="udf 'g': no function definition"):
        compile_udf("x = 1\n", "g")
    with pytest.raises(ValueError, match="udf 'g': its stored source does not define 'g'"):
        compile_udf("def f():\n    pass\n", "g")


def _udf(inputs: pd.DataFrame) -> pd.DataFrame:
    return inputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "OnDemandFeatureView: name must be a non-empty string"),
        ({"schema": None}, "OnDemandFeatureView 'o': schema must list the features"),
        ({"sources": []}, "OnDemandFeatureView 'o': sources must list at least one"),
        ({"sources": ["x"]}, "OnDemandFeatureView 'o': sources may hold FeatureViews"),
        (
            {"sources": [input_request, input_request]},
            "OnDemandFeatureView 'o': source 'vals_to_add' is listed twice",
        ),
        ({"mode": "spark"}, "OnDemandFeatureView 'o': mode must be one of pandas, python"),
        ({"udf": None}, "OnDemandFeatureView 'o': udf is required"),
        ({"udf": 3}, "OnDemandFeatureView 'o': udf must be a function"),
        ({"feature_transformation": object()}, "feature_transformation is not supported"),
        ({"entities": [3]}, "OnDemandFeatureView 'o': entities must be a list of Entity"),
        ({"aggregations": ["sum"]}, "OnDemandFeatureView 'o': aggregations must be a list"),
    ],
)
def test_validation(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "o", "schema": OUT, "sources": [input_request], "udf": _udf}
    args.update(kwargs)
    with pytest.raises(RepoValidationError, match=message):
        OnDemandFeatureView(**args)


def test_decorator_explode_is_rejected() -> None:
    with pytest.raises(RepoValidationError, match="OnDemandFeatureView 'g': explode=True"):

        @on_demand_feature_view(sources=[input_request], schema=OUT, explode=True)
        def g(inputs: pd.DataFrame) -> pd.DataFrame:
            return inputs


def test_infer_features_resolves_source_projections() -> None:
    import pyarrow as pa

    bare = FeatureView(name="bare", entities=[driver], source=driver_stats_fv.batch_source)
    odfv = OnDemandFeatureView(
        name="o", schema=OUT, sources=[bare, bare[["x"]].with_name("b")], udf=_udf
    )
    assert odfv.source_feature_view_projections["bare"].features == []
    bare.infer_schema(pa.schema([("driver_id", pa.int64()), ("x", pa.float32())]), {})
    odfv.infer_features({"bare": bare})
    assert odfv.source_feature_view_projections["bare"].features == [Field(name="x", dtype=Float32)]
    assert odfv.source_feature_view_projections["b"].features == [Field(name="x", dtype=Float32)]
    with pytest.raises(RepoValidationError, match="OnDemandFeatureView 'o': feature view 'bare'"):
        odfv.infer_features({})
