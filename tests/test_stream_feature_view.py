from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from repast import (
    Aggregation,
    Entity,
    FeatureView,
    Field,
    FileSource,
    JsonFormat,
    KafkaSource,
    PushSource,
    StreamFeatureView,
    stream_feature_view,
)
from repast.errors import RepoValidationError
from repast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
batch = FileSource(
    name="driver_stats", path="data/driver_stats.parquet", timestamp_field="event_timestamp"
)
kafka = KafkaSource(
    name="driver_events",
    kafka_bootstrap_servers="127.0.0.1:9092",
    topic="driver_events",
    timestamp_field="event_timestamp",
    batch_source=batch,
    message_format=JsonFormat(
        schema_json="driver_id integer, event_timestamp timestamp, conv_rate double"
    ),
    watermark_delay_threshold=timedelta(minutes=5),
)
AGGS = [
    Aggregation(column="conv_rate", function="max", time_window=timedelta(hours=1)),
    Aggregation(
        column="conv_rate",
        function="mean",
        time_window=timedelta(hours=1),
        slide_interval=timedelta(minutes=10),
        name="avg_conv",
    ),
]


def stream_view(**kwargs: Any) -> StreamFeatureView:
    args: dict[str, Any] = {
        "name": "driver_stream",
        "entities": [driver],
        "ttl": timedelta(hours=1),
        "schema": [Field(name="conv_rate", dtype=Float32)],
        "source": kafka,
        "timestamp_field": "event_timestamp",
        "aggregations": AGGS,
    }
    args.update(kwargs)
    return StreamFeatureView(**args)


def round_trip(view: StreamFeatureView) -> StreamFeatureView:
    d = view.to_dict()
    text = json.dumps(d, sort_keys=True)
    back = StreamFeatureView.from_dict(json.loads(text))
    assert type(back) is StreamFeatureView
    assert back == view
    assert json.dumps(back.to_dict(), sort_keys=True) == text
    return back


def test_feast_style_stream_view() -> None:
    sfv = stream_view()
    assert isinstance(sfv, FeatureView)
    assert sfv.stream_source is kafka
    assert sfv.batch_source is batch
    assert sfv.join_keys == ["driver_id"]
    assert sfv.aggregations == AGGS
    assert sfv.timestamp_field == "event_timestamp"
    assert sfv.mode == "python"
    assert (sfv.udf, sfv.udf_string, sfv.enable_tiling, sfv.tiling_hop_size) == (
        None,
        "",
        False,
        None,
    )
    d = sfv.to_dict()
    assert d["aggregations"][1] == {
        "column": "conv_rate",
        "function": "mean",
        "time_window": 3600,
        "slide_interval": 600,
        "name": "avg_conv",
    }
    assert d["stream_source"]["type"] == "kafka"
    round_trip(sfv)


def test_push_source_and_tiling_round_trip() -> None:
    push = PushSource(name="push", batch_source=batch)
    sfv = stream_view(source=push, enable_tiling=True, tiling_hop_size=timedelta(minutes=5))
    back = round_trip(sfv)
    assert isinstance(back.stream_source, PushSource)
    assert back.tiling_hop_size == timedelta(minutes=5)


@stream_feature_view(
    entities=[driver],
    ttl=timedelta(days=1),
    mode="spark",
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
    timestamp_field="event_timestamp",
    online=True,
    source=kafka,
    aggregations=AGGS,
    tags={"team": "drivers"},
)
def driver_hourly_stats_stream(df: Any) -> Any:
    return df.withColumn("conv_rate", df["conv_rate"] * 2)


def test_decorator() -> None:
    sfv = driver_hourly_stats_stream
    assert isinstance(sfv, StreamFeatureView)
    assert sfv.name == "driver_hourly_stats_stream"
    assert sfv.mode == "spark"
    assert sfv.udf is not None
    assert sfv.udf_name == "driver_hourly_stats_stream"
    assert "def driver_hourly_stats_stream(df: Any)" in sfv.udf_string
    back = round_trip(sfv)
    assert back.udf is None
    udf = back.resolve_udf({"Any": Any})
    assert udf is not None
    assert udf.__name__ == "driver_hourly_stats_stream"
    assert stream_view(aggregations=None, timestamp_field="").resolve_udf() is None


def test_aggregation() -> None:
    agg = Aggregation("trips", "sum", timedelta(hours=1))
    assert agg.slide_interval == timedelta(hours=1)
    assert agg.resolved_name() == "sum_trips"
    assert agg.resolved_name(timedelta(hours=1)) == "sum_trips_3600s"
    assert AGGS[1].resolved_name(timedelta(hours=1)) == "avg_conv"
    assert Aggregation.from_dict(agg.to_dict()) == agg
    assert hash(agg) == hash(Aggregation("trips", "sum", timedelta(hours=1)))
    assert repr(agg).startswith("Aggregation(column='trips', function='sum'")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"function": "median"},
            "Aggregation 'median_x': function must be one of sum, count, mean, avg, min, max, last",
        ),
        ({"time_window": timedelta(-1)}, "Aggregation 'sum_x': time_window must not be negative"),
        ({"column": 3}, "column must be a string"),
    ],
)
def test_aggregation_validation(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"column": "x", "function": "sum"}
    args.update(kwargs)
    with pytest.raises(RepoValidationError, match=message):
        Aggregation(**args)


def test_aggregation_default_function_is_rejected() -> None:
    with pytest.raises(RepoValidationError, match="^Aggregation: function must be one of"):
        Aggregation()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"timestamp_field": ""},
            "StreamFeatureView 'driver_stream': timestamp_field is required when aggregations",
        ),
        (
            {"source": batch},
            "StreamFeatureView 'driver_stream': source must be a KafkaSource, PushSource or",
        ),
        ({"ttl": timedelta(-1)}, "StreamFeatureView 'driver_stream': ttl must not be negative"),
        ({"udf": "f"}, "StreamFeatureView 'driver_stream': udf must be a function"),
        ({"stream_engine": object()}, "stream_engine are not supported"),
        ({"aggregations": "max"}, "aggregations must be a list of Aggregation"),
        (
            {"source": PushSource(name="p")},
            "StreamFeatureView 'driver_stream': stream source 'p' has no batch_source",
        ),
    ],
)
def test_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        stream_view(**kwargs)


def test_decorator_needs_a_source() -> None:
    with pytest.raises(RepoValidationError, match="StreamFeatureView 'f': source is required"):

        @stream_feature_view(entities=[driver])
        def f(df: Any) -> Any:
            return df
