"""The repo of `tests/golden/redis_dump.json`, rebuilt from that file: definitions, Parquet
inputs and the steps Feast ran, so a test can run them against Repast."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from repast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
)
from repast.config import RepoConfig
from repast.types import Float32, Int32, Int64, from_string
from repast.value_type import ValueType

__all__ = ["GOLDEN", "add_push_view", "build_store", "load_dump", "run_steps"]

# Feast 0.67 test vectors, kept in the repository (tests/golden/README.md says how they were made).
GOLDEN = Path(__file__).resolve().parent / "golden"


def load_dump() -> dict[str, Any]:
    return json.loads((GOLDEN / "redis_dump.json").read_text())  # type: ignore[no-any-return]


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _arrow_type(name: str) -> pa.DataType:
    if name.startswith("timestamp"):
        return pa.timestamp("us", tz="UTC")
    if name.startswith("list<"):
        return pa.list_(_arrow_type(name.split(": ", 1)[1].rstrip(">")))
    return {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float": pa.float32(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "binary": pa.binary(),
    }[name]


def _cell(value: Any, arrow: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_timestamp(arrow):
        return _ts(value)
    if pa.types.is_binary(arrow):
        return base64.b64decode(value)
    return value


def _write_sources(dump: dict[str, Any], data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    for file, source in dump["sources"].items():
        schema = pa.schema([(f["name"], _arrow_type(f["type"])) for f in source["arrow_schema"]])
        columns = {
            f.name: pa.array([_cell(r[f.name], f.type) for r in source["rows"]], f.type)
            for f in schema
        }
        pq.write_table(pa.table(columns, schema=schema), data / file)


def _objects(dump: dict[str, Any], data: Path) -> list[Any]:
    repo = dump["repo"]
    entities = {
        e["name"]: Entity(
            name=e["name"], join_keys=[e["join_key"]], value_type=ValueType[e["value_type"]]
        )
        for e in repo["entities"]
    }
    key_dtype = {e["join_key"]: from_string(e["join_key_dtype"]) for e in repo["entities"]}
    views = {}
    for v in repo["feature_views"]:
        src = v["source"]
        source = FileSource(
            name=src["name"],
            path=str(data / src["file"]),
            timestamp_field=src["timestamp_field"],
            created_timestamp_column=src.get("created_timestamp_column", ""),
            field_mapping=src.get("field_mapping"),
        )
        ents = [entities[e] for e in v["entities"]]
        schema = [Field(name=e.join_key, dtype=key_dtype[e.join_key]) for e in ents]
        schema += [Field(name=f["name"], dtype=from_string(f["dtype"])) for f in v["features"]]
        views[v["name"]] = FeatureView(
            name=v["name"],
            entities=ents,
            ttl=timedelta(seconds=v["ttl_seconds"]),
            schema=schema,
            source=source,
        )
    services = [
        FeatureService(name=s["name"], features=[views[v][fs] for v, fs in s["features"]])
        for s in repo["feature_services"]
    ]
    return [*entities.values(), *views.values(), *services]


def build_store(
    tmp: Path, online_store: dict[str, Any], project: str | None = None
) -> FeatureStore:
    """A FeatureStore holding the golden repo, applied, with its Parquet inputs in `tmp/data`."""
    dump = load_dump()
    _write_sources(dump, tmp / "data")
    config = RepoConfig.model_validate(
        {
            "project": project or dump["repo"]["project"],
            "registry": str(tmp / "registry.json"),
            "online_store": online_store,
            "repo_path": tmp,
        }
    )
    store = FeatureStore(config=config)
    store.apply(_objects(dump, tmp / "data"))
    return store


def run_steps(store: FeatureStore) -> None:
    """Feast's steps from the dump: materializations, then one write_to_online_store."""
    for step in load_dump()["steps"]:
        if step["op"] == "materialize":
            start, end = _ts(step["start"]), _ts(step["end"])
            assert start is not None
            assert end is not None
            store.materialize(start, end, step["feature_views"])
        else:
            df = pd.DataFrame(step["rows"])
            for column, dtype in step["pandas_dtypes"].items():
                df[column] = (
                    pd.to_datetime(df[column], format="ISO8601")
                    if "datetime" in dtype
                    else df[column].astype(dtype)
                )
            store.write_to_online_store(step["feature_view"], df)


def add_push_view(store: FeatureStore) -> None:
    """Apply `hourly_push` (on driver_hourly_stats' batch source) feeding `hourly_fresh`
    (ttl 0, so pushed rows never expire): the target of the push and write tests."""
    hourly = store.get_feature_view("driver_hourly_stats")
    push = PushSource(name="hourly_push", batch_source=hourly.batch_source)
    fresh = FeatureView(
        name="hourly_fresh",
        entities=[store.get_entity("driver")],
        ttl=timedelta(0),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="conv_rate", dtype=Float32),
            Field(name="rating", dtype=Int32),
        ],
        source=push,
    )
    store.apply([push, fresh])
