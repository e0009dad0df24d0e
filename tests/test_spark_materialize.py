"""The `spark` batch engine on a real local Spark (`local[2]`) and a real redis-server: the same
online data as the local engine (Feast's golden Redis bytes in the `feast` layout), rewrites
without second effects, and nothing recorded when a partition fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from golden_repo import build_store, load_dump, run_steps
from online_stores import online_config
from repast import Entity, FeatureStore, FeatureView, Field, FileSource
from repast.errors import MaterializationError
from repast.spark.materialize import materialize_view
from repast.types import Float64, Int64, String
from services import RedisServer
from spark_helpers import spark_store
from test_online_redis import _NULL_TIMESTAMP, _dump, _golden_keys

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Online reads judge the ttl as of the data's days, not today.
    monkeypatch.setattr(
        "repast.online.read.now_micros", lambda: int((T0 + timedelta(days=3)).timestamp() * 1e6)
    )


def intervals(store: FeatureStore, view: str) -> list[list[str]]:
    record = store.registry.snapshot(allow_cache=False).record(store.project, "feature_views", view)
    assert record is not None
    return list(record.meta.get("materialization_intervals", []))


def test_feast_layout_reproduces_the_golden_dump_byte_for_byte(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    local = build_store(tmp_path, online_config("redis-feast", redis_clean))
    store = spark_store(local, engine=True)
    run_steps(store)
    got, want = _dump(redis_clean), _golden_keys()
    assert set(got) == set(want)
    names = load_dump()["field_names"]
    for key, fields in want.items():
        for field, value in fields.items():
            expected = b"" if value == _NULL_TIMESTAMP else value
            assert got[key][field] == expected, (key.hex(), names[field.hex()])
    assert intervals(store, "driver_hourly_stats")  # recorded after the job succeeded


def _view_repo(tmp: Path, online: dict[str, Any], project: str) -> tuple[FeatureStore, pa.Table]:
    """A view over 3 000 rows of 400 drivers x 2 regions (composite key), with event-time and
    created-time ties; the same data for every project built here."""
    rng = np.random.default_rng(3)
    n = 3000
    ts = np.datetime64(T0.replace(tzinfo=None), "us") + pd_hours(rng.integers(0, 72, n))
    table = pa.table(
        {
            "driver": pa.array(rng.integers(0, 400, n), pa.int64()),
            "region": pa.array(rng.choice(["eu", "us"], n)),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "created": pa.array(ts + pd_hours(rng.integers(0, 2, n)), pa.timestamp("us", tz="UTC")),
            "score": pa.array(rng.random(n)),
            "visits": pa.array(rng.integers(0, 1000, n), pa.int64()),
            "name": pa.array([f"n{i}" for i in range(n)]),
        }
    )
    (tmp / "source").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(0, 1500), tmp / "source" / "part-a.parquet")
    pq.write_table(table.slice(1500), tmp / "source" / "part-b.parquet")
    from repast.config import RepoConfig

    config = RepoConfig.model_validate(
        {
            "project": project,
            "registry": str(tmp / "registry.json"),
            "online_store": online,
            "repo_path": tmp,
        }
    )
    store = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver"])
    region = Entity(name="region", join_keys=["region"])
    source = FileSource(
        name="stats_source",
        path=str(tmp / "source"),
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"visits": "n_visits"},
    )
    view = FeatureView(
        name="stats",
        entities=[driver, region],
        ttl=timedelta(days=10),
        source=source,
        schema=[
            Field(name="driver", dtype=Int64),
            Field(name="region", dtype=String),
            Field(name="score", dtype=Float64),
            Field(name="n_visits", dtype=Int64),
            Field(name="name", dtype=String),
        ],
    )
    store.apply([driver, region, source, view])
    return store, table


def pd_hours(values: Any) -> Any:
    return np.array(values, dtype="timedelta64[h]").astype("timedelta64[us]")


def _read_all(store: FeatureStore) -> dict[str, list[Any]]:
    entities: dict[str, list[Any]] = {
        "driver": [d for d in range(400) for _ in (0, 1)],
        "region": ["eu", "us"] * 400,
    }
    return store.get_online_features(
        ["stats:score", "stats:n_visits", "stats:name"], entities
    ).to_dict()


@pytest.mark.parametrize("online", ["redis-packed", "sqlite"])
def test_same_online_rows_as_the_local_engine(
    tmp_path: Path, online: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("redis_clean") if online != "sqlite" else None
    local, table = _view_repo(tmp_path / "local", online_config(online, server), "local_engine")
    spark_base, _ = _view_repo(tmp_path / "spark", online_config(online, server), "spark_engine")
    spark = spark_store(spark_base, engine=True)
    start, end = T0 + timedelta(hours=6), T0 + timedelta(hours=60)
    local.materialize(start, end)
    spark.materialize(start, end)
    want = _read_all(local)
    got = _read_all(spark)
    assert got == want
    assert sum(v is not None for v in got["name"]) > 600
    assert intervals(spark, "stats") == [["2024-05-01T06:00:00Z", "2024-05-03T12:00:00Z"]]
    # The job's own account: rows in the window read, one row per entity written.
    ts = table.column("ts").to_pylist()
    in_window = sum(start <= t <= end for t in ts)
    keys = {
        (d, r)
        for d, r, t in zip(
            table.column("driver").to_pylist(), table.column("region").to_pylist(), ts, strict=True
        )
        if start <= t <= end
    }
    view = spark.get_feature_view("stats")
    again = materialize_view(spark.context, view, start, end)
    assert again.rows_read == in_window
    # Rewriting the same rows is a no-op for newer-wins stores: equal event times are skipped,
    # which is why a retried partition has no second effect.
    assert again.rows_written == 0
    assert _read_all(spark) == want
    assert len(keys) > 600
    for store in (local, spark):
        store.online_store.close()


def test_a_failed_job_records_nothing_and_a_rerun_completes(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    base, table = _view_repo(tmp_path, online_config("redis-packed", redis_clean), "failing")
    store = spark_store(base, engine=True)
    redis_clean.stop()
    try:
        with pytest.raises(MaterializationError, match="materializing stats"):
            store.materialize(T0, T0 + timedelta(days=3))
    finally:
        redis_clean.start()
    assert intervals(store, "stats") == []
    store.materialize(T0, T0 + timedelta(days=3))
    assert len(intervals(store, "stats")) == 1
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    drivers, regions = table.column("driver").to_pylist(), table.column("region").to_pylist()
    keys = set(zip(drivers, regions, strict=True))
    assert client.dbsize() == len(keys)
    client.close()


def test_the_local_engine_names_the_spark_engine_for_a_spark_source(tmp_path: Path) -> None:
    from repast import SparkSource
    from repast.config import RepoConfig

    config = RepoConfig.model_validate(
        {"project": "p", "registry": str(tmp_path / "r.json"), "repo_path": tmp_path}
    )
    store = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver"])
    source = SparkSource(name="lake", table="db.stats", timestamp_field="ts")
    view = FeatureView(
        name="lake_stats",
        entities=[driver],
        source=source,
        schema=[Field(name="driver", dtype=Int64), Field(name="score", dtype=Float64)],
    )
    store.apply([driver, source, view])
    with pytest.raises(MaterializationError, match=r"use batch_engine: \{type: spark\}"):
        store.materialize(T0, T0 + timedelta(days=1))
    assert intervals(store, "lake_stats") == []
