"""Feature repos written as a Feast user writes them (only the import changed), laid out on disk."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from repast.scaffold import init_repo

__all__ = ["EVERY_KIND", "write_full_repo", "write_repo", "write_template_repo"]

END = datetime(2024, 1, 2, tzinfo=UTC)

YAML = """\
project: {project}
registry: {registry}
provider: local
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

# Every definition kind the foundation issue names, in one repo.
EVERY_KIND = """\
from datetime import timedelta

import pandas as pd

from repast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    PushSource,
    RequestSource,
    StreamFeatureView,
    ValueType,
)
from repast.data_format import JsonFormat
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import (
    Array, Bool, Bytes, Float32, Float64, Int32, Int64, Json, String, UnixTimestamp,
)

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)

driver_source = FileSource(
    name="driver_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
customer_source = FileSource(
    name="customer_source",
    path="data/customer.parquet",
    timestamp_field="ts",
    field_mapping={"cust": "customer_id"},
)

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="trips", dtype=Int64),
        Field(name="label", dtype=String),
    ],
    source=driver_source,
    tags={"team": "drivers"},
)

# No schema: Repast reads it from the Parquet file at apply time.
customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=1),
    source=customer_source,
)

all_types = FeatureView(
    name="all_types",
    entities=[driver],
    schema=[
        Field(name="f_int32", dtype=Int32),
        Field(name="f_double", dtype=Float64),
        Field(name="f_bool", dtype=Bool),
        Field(name="f_bytes", dtype=Bytes),
        Field(name="f_ts", dtype=UnixTimestamp),
        Field(name="f_json", dtype=Json),
        Field(name="f_list", dtype=Array(Int64)),
    ],
    source=driver_source,
    online=False,
)

request = RequestSource(name="request", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(
    sources=[driver_stats, request],
    schema=[Field(name="conv_plus_bonus", dtype=Float64)],
)
def conv_plus_bonus(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["conv_plus_bonus"] = inputs["conv_rate"] + inputs["bonus"]
    return out


driver_push = PushSource(name="driver_push", batch_source=driver_source)
driver_fresh = FeatureView(
    name="driver_fresh",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
    source=driver_push,
)

driver_events = KafkaSource(
    name="driver_events",
    kafka_bootstrap_servers="127.0.0.1:9092",
    topic="driver_events",
    timestamp_field="event_timestamp",
    batch_source=driver_source,
    message_format=JsonFormat(
        schema_json="driver_id integer, event_timestamp timestamp, conv_rate double"
    ),
    watermark_delay_threshold=timedelta(minutes=5),
)
driver_stream = StreamFeatureView(
    name="driver_stream",
    entities=[driver],
    ttl=timedelta(hours=1),
    schema=[Field(name="conv_rate", dtype=Float32)],
    source=driver_events,
    timestamp_field="event_timestamp",
)

driver_service = FeatureService(
    name="driver_service",
    features=[
        driver_stats[["conv_rate", "trips"]],
        customer_profile,
        conv_plus_bonus,
    ],
    tags={"stage": "prod"},
)
aliased_service = FeatureService(
    name="aliased_service",
    features=[
        driver_stats.with_name("origin").with_join_key_map({"driver_id": "origin_id"}),
    ],
)
"""


def _write_sources(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    utc = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1001, 1002], pa.int64()),
                "event_timestamp": pa.array([END, END], utc),
                "created": pa.array([END, END], utc),
                "conv_rate": pa.array([0.5, 0.25], pa.float32()),
                "trips": pa.array([3, 4], pa.int64()),
                "label": ["a", "b"],
                "f_int32": pa.array([1, 2], pa.int32()),
                "f_double": [1.5, 2.5],
                "f_bool": [True, False],
                "f_bytes": [b"x", b"y"],
                "f_ts": pa.array([END, END], utc),
                "f_json": ['{"a": 1}', "[]"],
                "f_list": [[1, 2], []],
            }
        ),
        data / "driver_stats.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "cust": ["c1", "c2"],
                "ts": pa.array([END, END], utc),
                "age": pa.array([30, 40], pa.int64()),
                "score": [0.1, 0.2],
            }
        ),
        data / "customer.parquet",
    )


def write_repo(
    repo: Path,
    definitions: str,
    *,
    project: str = "test_project",
    registry: str = "data/registry.json",
) -> Path:
    """A repo folder with a yaml, one definitions file and the Parquet sources it reads."""
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(YAML.format(project=project, registry=registry))
    (repo / "definitions.py").write_text(textwrap.dedent(definitions))
    _write_sources(repo / "data")
    return repo


def write_full_repo(repo: Path, **kwargs: str) -> Path:
    return write_repo(repo, EVERY_KIND, **kwargs)


def write_template_repo(directory: Path) -> Path:
    """The `repast init` demo repo (Feast's local template, import changed)."""
    return init_repo(directory)
