"""`date_partition_column` of a `SparkSource` (Feast's key): the spark store and engine read only
the date partitions that can hold rows of the requested times. The source is a directory of
`dt=YYYY-MM-DD` partitions plus a decoy partition dated months later whose rows carry times
inside the requested range: read, its rows would win every join and every materialization; so
equal results prove the decoy was never read, and Spark's plan shows the partition filter."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import (
    Aggregation,
    BatchFeatureView,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    SparkSource,
)
from repast.config import RepoConfig
from repast.errors import SourceReadError
from repast.spark.session import spark_session
from repast.spark.sources import prune_dates, read_source
from repast.types import Float64, Int64
from spark_helpers import SPARK_CONF, spark_store

DAY0 = datetime(2024, 5, 1, tzinfo=UTC)
US = pa.timestamp("us", tz="UTC")
DECOY = "dt=2024-07-01"


def _day_rows(rng: np.random.Generator, day: datetime, n: int, offset: float) -> pa.Table:
    seconds = np.sort(rng.integers(0, 86400, n))
    ts = np.datetime64(day.replace(tzinfo=None), "us") + seconds.astype("timedelta64[s]")
    return pa.table(
        {
            "driver": pa.array(rng.integers(0, 50, n), pa.int64()),
            "ts": pa.array(ts.astype("datetime64[us]"), US),
            "rate": pa.array(offset + rng.random(n)),
        }
    )


def _write(root: Path) -> None:
    """Six days of partitions under `root/events`, a copy without the decoy under `root/clean`."""
    rng = np.random.default_rng(16)
    for i in range(6):
        day = DAY0 + timedelta(days=i)
        folder = root / "events" / f"dt={day:%Y-%m-%d}"
        folder.mkdir(parents=True)
        pq.write_table(_day_rows(rng, day, 300, 0.0), folder / "part-0.parquet")
    shutil.copytree(root / "events", root / "clean")
    # Misfiled rows: times on May 3 and 4, every one later than the real rows of its hour.
    decoy = pa.concat_tables(
        [_day_rows(rng, DAY0 + timedelta(days=d), 400, 1000.0) for d in (2, 3)]
    )
    (root / "events" / DECOY).mkdir()
    pq.write_table(decoy, root / "events" / DECOY / "part-0.parquet")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, FeatureStore]:
    root = tmp_path_factory.mktemp("date_partitions")
    _write(root / "data")
    config = RepoConfig.model_validate(
        {
            "project": "dated",
            "registry": str(root / "registry.json"),
            "online_store": {"type": "sqlite", "path": str(root / "online.db")},
            "repo_path": root,
        }
    )
    local = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver"])
    sources = {
        "pruned": SparkSource(
            name="pruned_src", path="data/events", file_format="parquet",
            timestamp_field="ts", date_partition_column="dt",
        ),
        "unpruned": SparkSource(
            name="unpruned_src", path="data/events", file_format="parquet", timestamp_field="ts"
        ),
        "oracle": FileSource(name="oracle_src", path="data/clean", timestamp_field="ts"),
    }  # fmt: skip
    views = [
        FeatureView(
            name=name,
            entities=[driver],
            ttl=timedelta(days=1),
            source=source,
            schema=[Field(name="driver", dtype=Int64), Field(name="rate", dtype=Float64)],
        )
        for name, source in sources.items()
    ]
    aggregated = [
        BatchFeatureView(
            name=f"{name}_agg",
            entities=[driver],
            source=source,
            schema=[Field(name="driver", dtype=Int64), Field(name="rate", dtype=Float64)],
            aggregations=[
                Aggregation(column="rate", function="sum", time_window=timedelta(hours=6)),
                Aggregation(column="rate", function="max", time_window=timedelta(days=1)),
            ],
        )
        for name, source in sources.items()
    ]
    local.apply([driver, *sources.values(), *views, *aggregated])
    return local, spark_store(local, engine=True)


def _entity() -> pa.Table:
    rng = np.random.default_rng(5)
    seconds = rng.integers(0, 2 * 86400, 500)
    start = np.datetime64((DAY0 + timedelta(days=2)).replace(tzinfo=None), "us")
    return pa.table(
        {
            "driver": pa.array(rng.integers(0, 55, 500), pa.int64()),
            "event_timestamp": pa.array(start + seconds.astype("timedelta64[s]"), US),
        }
    )


def _rates(store: FeatureStore, view: str, entity: Any) -> list[Any]:
    rates: list[Any] = (
        store.get_historical_features(entity, [f"{view}:rate"]).to_arrow()["rate"].to_pylist()
    )
    return rates


def test_retrieval_reads_only_the_partitions_of_the_entity_times(
    stores: tuple[FeatureStore, FeatureStore],
) -> None:
    local, spark = stores
    entity = _entity()
    want = _rates(local, "oracle", entity)
    assert sum(v is not None for v in want) > 400
    assert _rates(spark, "pruned", entity) == want
    # The decoy matters when read: without the partition column, its rows win.
    assert any(v is not None and v > 1000 for v in _rates(spark, "unpruned", entity))
    # The same with the entity frame in Spark.
    frame = spark_session(SPARK_CONF).createDataFrame(entity)
    got = spark.get_historical_features(frame, ["pruned:rate"]).to_arrow()
    assert got["rate"].to_pylist() == want


def test_aggregated_retrieval_reads_only_the_partitions_its_windows_reach(
    stores: tuple[FeatureStore, FeatureStore],
) -> None:
    local, spark = stores
    entity = _entity()
    names = ["sum_rate_21600s", "max_rate_86400s"]

    def aggregates(store: FeatureStore, view: str) -> dict[str, list[Any]]:
        table = store.get_historical_features(entity, [f"{view}:{n}" for n in names]).to_arrow()
        return {n: table[n].to_pylist() for n in names}

    want = aggregates(local, "oracle_agg")
    assert sum(v is not None for v in want["max_rate_86400s"]) > 400
    assert aggregates(spark, "pruned_agg") == want
    assert any(
        v is not None and v > 1000 for v in aggregates(spark, "unpruned_agg")["max_rate_86400s"]
    )


def test_spark_skips_the_pruned_directories_in_its_scan(
    stores: tuple[FeatureStore, FeatureStore],
) -> None:
    local, _ = stores
    source = local.get_data_source("pruned_src")
    spark = spark_session(SPARK_CONF)
    frame = prune_dates(
        read_source(spark, local.config, source),
        source,
        DAY0 + timedelta(days=2),
        DAY0 + timedelta(days=3, hours=5),
    )
    plan = frame._jdf.queryExecution().executedPlan().toString()
    filters = re.search(r"PartitionFilters: \[([^\]]*)\]", plan)
    assert filters is not None, plan
    assert "dt" in filters.group(1), plan
    dates = frame.select("dt").distinct().orderBy("dt").toArrow()["dt"].cast(pa.string())
    assert dates.to_pylist() == ["2024-05-03", "2024-05-04"]


def test_materialization_reads_only_the_partitions_of_its_window(
    stores: tuple[FeatureStore, FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "repast.online.read.now_micros",
        lambda: int((DAY0 + timedelta(days=3, hours=12)).timestamp() * 1e6),
    )
    local, spark = stores
    start, end = DAY0 + timedelta(days=2, hours=3), DAY0 + timedelta(days=3, hours=12)
    local.materialize(start, end, ["oracle"])
    spark.materialize(start, end, ["pruned", "unpruned"])
    rows = {"driver": list(range(55))}

    def online(view: str) -> list[Any]:
        return local.get_online_features([f"{view}:rate"], rows).to_dict()["rate"]

    want = online("oracle")
    assert sum(v is not None for v in want) == 50
    assert online("pruned") == want
    assert any(v is not None and v > 1000 for v in online("unpruned"))


def test_a_partition_column_the_source_lacks_is_named(tmp_path: Path) -> None:
    pq.write_table(_day_rows(np.random.default_rng(1), DAY0, 10, 0.0), tmp_path / "x.parquet")
    source = SparkSource(
        name="flat", path=str(tmp_path / "x.parquet"), file_format="parquet",
        timestamp_field="ts",
        date_partition_column="day",
    )  # fmt: skip
    config = RepoConfig.model_validate(
        {"project": "p", "registry": str(tmp_path / "r.json"), "repo_path": tmp_path}
    )
    frame = read_source(spark_session(SPARK_CONF), config, source)
    with pytest.raises(SourceReadError, match="date_partition_column 'day' is not a column"):
        prune_dates(frame, source, DAY0, None)
