"""The point-in-time join against tests/golden/pit_small.json (Feast 0.67, DuckDB store)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from golden_repo import GOLDEN
from repast.offline import RetrievalJob, ViewJoin, point_in_time_join

CASES: list[dict[str, Any]] = json.loads((GOLDEN / "pit_small.json").read_text())["cases"]

# pandas dtypes of the entity frame as Arrow types.
ENTITY_TYPES = {
    "int64": pa.int64(),
    "object": pa.string(),
    "datetime64[ns, UTC]": pa.timestamp("ns", tz="UTC"),
}


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def arrow_type(name: str) -> pa.DataType:
    match = re.fullmatch(r"timestamp\[(\w+)(?:, tz=(.+))?\]", name)
    if match:
        return pa.timestamp(match[1], tz=match[2])
    return pa.type_for_alias(name)


def build_table(schema: list[dict[str, str]], rows: list[dict[str, Any]]) -> pa.Table:
    arrow_schema = pa.schema([(f["name"], arrow_type(f["type"])) for f in schema])
    columns = {}
    for f in arrow_schema:
        values = [r[f.name] for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [parse_ts(v) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=arrow_schema)


def build_entity(case: dict[str, Any]) -> pa.Table:
    dtypes = case["entity_df"]["pandas_dtypes"]
    rows = case["entity_df"]["rows"]
    schema = pa.schema([(n, ENTITY_TYPES[t]) for n, t in dtypes.items()])
    return build_table([{"name": f.name, "type": str(f.type)} for f in schema], rows)


def build_views(
    case: dict[str, Any], tmp_path: Path, *, full_feature_names: bool, from_files: bool
) -> list[ViewJoin]:
    repo = case["repo"]
    join_keys = {e["name"]: e["join_key"] for e in repo["entities"]}
    views = {v["name"]: v for v in repo["feature_views"]}
    requested: dict[str, list[str]] = {}
    for ref in case["features"]:
        view_name, feature = ref.split(":")
        requested.setdefault(view_name, []).append(feature)
    specs = []
    for view_name, features in requested.items():
        fv = views[view_name]
        src = fv["source"]
        data = case["sources"][src["file"]]
        table = build_table(data["arrow_schema"], data["rows"])
        source: Any = table
        if from_files:
            source = tmp_path / src["file"]
            pq.write_table(table, source)
        keys = [join_keys[e] for e in fv["entities"]]
        specs.append(
            ViewJoin(
                name=view_name,
                source=source,
                entity_join_keys=[(k, k) for k in keys],
                timestamp_field=src["timestamp_field"],
                created_timestamp_column=src.get("created_timestamp_column"),
                field_mapping=src.get("field_mapping", {}),
                ttl=timedelta(seconds=fv["ttl_seconds"]) if fv["ttl_seconds"] else None,
                features=[(f, f"{view_name}__{f}" if full_feature_names else f) for f in features],
            )
        )
    return specs


def same(actual: Any, expected: Any) -> bool:
    if expected is None:
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    if isinstance(actual, datetime):
        return actual == parse_ts(expected)
    if isinstance(expected, float):
        return actual is not None and math.isclose(actual, expected, rel_tol=0, abs_tol=0)
    return bool(actual == expected)


# Feast's pandas dtypes (pandas 2) as this pandas names them: pandas 3 gives strings the
# `str` dtype where pandas 2 gave `object`.
def dtype_matches(actual: str, expected: str) -> bool:
    if expected == "object":
        return actual in ("object", "str", "string")
    if expected.startswith("datetime64["):
        # DuckDB returned the entity timestamps as µs; Repast keeps the entity column unchanged.
        return actual.startswith("datetime64[") and actual.endswith(", UTC]")
    return actual == expected


@pytest.mark.parametrize("from_files", [False, True], ids=["table", "parquet"])
@pytest.mark.parametrize("full_feature_names", [False, True], ids=["short", "full"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(
    case: dict[str, Any], full_feature_names: bool, from_files: bool, tmp_path: Path
) -> None:
    entity = build_entity(case)
    views = build_views(
        case, tmp_path, full_feature_names=full_feature_names, from_files=from_files
    )
    expected = case["expected"][f"full_feature_names_{str(full_feature_names).lower()}"]

    job = RetrievalJob(
        lambda: point_in_time_join(entity, "event_timestamp", views),
        full_feature_names=full_feature_names,
    )
    table = job.to_arrow()
    assert table.column_names == expected["columns"]
    # Entity columns come back unchanged.
    assert table.select(entity.column_names).equals(entity)
    rows = table.to_pylist()
    assert len(rows) == len(expected["rows"])
    for i, (got, want) in enumerate(zip(rows, expected["rows"], strict=True)):
        for column in expected["columns"]:
            assert same(got[column], want[column]), (i, column, got[column], want[column])

    frame = job.to_df()
    assert list(frame.columns) == expected["columns"]
    for column, dtype in expected["pandas_dtypes"].items():
        assert dtype_matches(str(frame[column].dtype), dtype), (column, frame[column].dtype)


def test_int_features_with_nulls_stay_int_in_arrow() -> None:
    case = next(c for c in CASES if c["name"] == "multi_view")
    table = point_in_time_join(
        build_entity(case),
        "event_timestamp",
        build_views(case, Path("."), full_feature_names=False, from_files=False),
    )
    assert table.schema.field("trips").type == pa.int64()
    assert table.schema.field("orders").type == pa.int64()
    assert table.schema.field("conv_rate").type == pa.float32()
    assert table.column("trips").null_count > 0
