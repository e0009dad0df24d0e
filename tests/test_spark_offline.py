"""The `spark` offline store against the local one: the same rows, in the same order, on a real
local Spark (`local[2]`). The local store is the oracle (tests/test_pit_property.py checks it
against the rule itself)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from repast import FeatureStore
from repast.config import RegistryConfig, RepoConfig, SparkOfflineStoreConfig
from repast.errors import KeyTypeMismatchError, MissingExtraError, SourceReadError
from repast.offline import ColumnNotFoundError, point_in_time_join
from repast.offline.view import ViewJoin
from repast.spark.retrieval import SparkRetrievalJob
from repast.spark.session import require_pyspark, spark_session
from spark_helpers import SPARK_CONF, spark_store
from test_pit_property import Case, cases, key_columns

T0 = datetime(2024, 3, 1, tzinfo=UTC)
US = pa.timestamp("us", tz="UTC")

DEFINITIONS = """\
from datetime import timedelta

import pandas as pd

from repast import (
    Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, SparkSource,
)
from repast.on_demand_feature_view import on_demand_feature_view
from repast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
city = Entity(name="city", join_keys=["city"])

trips_source = FileSource(
    name="trips_source", path="data/trips", timestamp_field="ts",
    created_timestamp_column="created", field_mapping={"drv": "driver_id", "n": "trips"},
)
city_source = FileSource(name="city_source", path="data/city.parquet", timestamp_field="ts")
# The same rows through each kind of SparkSource (the spark store only).
city_csv = SparkSource(
    name="city_csv", path="data/city.csv", file_format="csv", timestamp_field="ts",
)
city_table = SparkSource(name="city_table", table="city_rows", timestamp_field="ts")
city_query = SparkSource(
    name="city_query", query="SELECT * FROM city_rows WHERE busy >= 0", timestamp_field="ts"
)
trips = FeatureView(
    name="trips", entities=[driver], ttl=timedelta(hours=2), source=trips_source,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64),
            Field(name="rate", dtype=Float64),
            Field(name="note", dtype=String)],
)
trips_forever = FeatureView(
    name="trips_forever", entities=[driver], ttl=timedelta(0), source=trips_source,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64)],
)
by_city = FeatureView(
    name="by_city", entities=[driver, city], ttl=timedelta(hours=3), source=city_source,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="city", dtype=String),
            Field(name="busy", dtype=Float64)],
)
by_city_csv = FeatureView(
    name="by_city_csv", entities=[driver, city], ttl=timedelta(hours=3), source=city_csv,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="city", dtype=String),
            Field(name="busy", dtype=Float64)],
)
by_city_table = FeatureView(
    name="by_city_table", entities=[driver, city], ttl=timedelta(hours=3), source=city_table,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="city", dtype=String),
            Field(name="busy", dtype=Float64)],
)
by_city_query = FeatureView(
    name="by_city_query", entities=[driver, city], ttl=timedelta(hours=3), source=city_query,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="city", dtype=String),
            Field(name="busy", dtype=Float64)],
)
request = RequestSource(name="request", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(
    sources=[trips, request], schema=[Field(name="rate_plus_bonus", dtype=Float64)]
)
def rate_plus_bonus(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["rate_plus_bonus"] = inputs["rate"] + inputs["bonus"]
    return out


service = FeatureService(
    name="service",
    features=[
        trips[["rate"]].with_name("origin").with_join_key_map({"driver_id": "origin_id"}),
        by_city,
        rate_plus_bonus,
    ],
)
"""


def _write_data(data: Path) -> pa.Table:
    """Trips with created-timestamp ties and rows on the hour, in a directory of two files;
    a CSV of (driver, city) rows for the composite key view."""
    rng = np.random.default_rng(16)
    n = 400
    hours = rng.integers(0, 48, n)
    minutes = rng.choice([0, 0, 30], n)  # many rows share an event time
    ts = [T0 + timedelta(hours=int(h), minutes=int(m)) for h, m in zip(hours, minutes, strict=True)]
    created = [
        t + timedelta(minutes=int(c)) for t, c in zip(ts, rng.integers(0, 3, n), strict=True)
    ]
    trips = pa.table(
        {
            "drv": pa.array(rng.integers(1, 12, n), pa.int32()),
            "ts": pa.array(ts, US),
            "created": pa.array(created, US),
            "n": pa.array(rng.integers(0, 100, n), pa.int64()),
            "rate": pa.array(rng.random(n)),
            "note": pa.array([f"r{i}" for i in range(n)]),
        }
    )
    (data / "trips").mkdir(parents=True)
    pq.write_table(trips.slice(0, 200), data / "trips" / "a.parquet")
    pq.write_table(trips.slice(200), data / "trips" / "b.parquet")
    city = pa.table(
        {
            "driver_id": pa.array(rng.integers(1, 12, 120), pa.int32()),
            "city": pa.array(rng.choice(["sf", "ny"], 120)),
            "ts": pa.array([T0 + timedelta(hours=int(h)) for h in rng.integers(0, 48, 120)], US),
            "busy": pa.array([round(i / 7, 4) for i in range(120)]),
        }
    )
    pq.write_table(city, data / "city.parquet")
    lines = ["driver_id,city,ts,busy"]
    for row in city.to_pylist():
        lines.append(
            f"{row['driver_id']},{row['city']},{row['ts']:%Y-%m-%dT%H:%M:%SZ},{row['busy']}"
        )
    (data / "city.csv").write_text("\n".join(lines) + "\n")
    return trips


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, FeatureStore, pa.Table]:
    repo = tmp_path_factory.mktemp("spark_repo")
    (repo / "feature_store.yaml").write_text(
        "project: sparky\nregistry: data/registry.json\nprovider: local\n"
        "online_store: {type: sqlite, path: data/online.db}\noffline_store: {type: file}\n"
    )
    (repo / "definitions.py").write_text(DEFINITIONS)
    trips = _write_data(repo / "data")
    local = FeatureStore(repo_path=repo)
    local.apply_repo()
    return local, spark_store(local), trips


def _entity(trips: pa.Table) -> pa.Table:
    """Entity rows on source rows' times, on the ttl edge, 1 µs past it, duplicated, unknown."""
    rng = np.random.default_rng(7)
    picks = rng.integers(0, trips.num_rows, 60)
    drivers = trips.column("drv").to_numpy()[picks].astype(np.int64)
    base = trips.column("ts").cast(pa.int64()).to_numpy()[picks]
    shift = rng.choice([0, 2 * 3600 * 10**6, 2 * 3600 * 10**6 + 1, -1, 1800 * 10**6], 60)
    drivers = np.concatenate([drivers, [99, 3, 3]])
    times = np.concatenate([base + shift, [base[0], base[1], base[1]]])
    return pa.table(
        {
            "driver_id": pa.array(drivers, pa.int64()),
            "origin_id": pa.array(drivers[::-1].copy(), pa.int64()),
            "city": pa.array(rng.choice(["sf", "ny", "la"], len(drivers))),
            "event_timestamp": pa.array(times, pa.int64()).cast(US),
            "bonus": pa.array(rng.random(len(drivers))),
        }
    )


REQUESTS: list[tuple[str, Any, bool]] = [
    ("ttl, created ties, field_mapping", ["trips:trips", "trips:rate", "trips:note"], False),
    ("two views, full names", ["trips:trips", "trips_forever:trips"], True),
    ("composite key from csv", ["by_city:busy", "trips:rate"], False),
    ("on-demand view", ["rate_plus_bonus:rate_plus_bonus", "trips:note"], False),
    ("service: projection, join_key_map, odfv", "service", True),
]


@pytest.mark.parametrize(("what", "features", "full_names"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_same_rows_in_the_same_order_as_the_local_store(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], what: str, features: Any, full_names: bool
) -> None:
    local, spark, trips = stores
    entity = _entity(trips)
    if features == "service":
        features = local.get_feature_service("service")
    want = local.get_historical_features(entity, features, full_feature_names=full_names).to_arrow()
    got = spark.get_historical_features(entity, features, full_feature_names=full_names).to_arrow()
    assert got.schema == want.schema
    assert got.equals(want), what
    # Not a vacuous comparison: every feature found values, and not every row did.
    for name in want.column_names[entity.num_columns :]:
        found = want.num_rows - want.column(name).null_count
        assert 5 <= found < want.num_rows, name


@pytest.mark.parametrize("view", ["by_city_csv", "by_city_table", "by_city_query"])
def test_spark_sources_path_table_and_query(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], view: str
) -> None:
    local, spark, trips = stores
    session = spark_session(SPARK_CONF)
    session.read.parquet(str(local.repo_path / "data" / "city.parquet")).createOrReplaceTempView(
        "city_rows"
    )
    entity = _entity(trips)
    want = local.get_historical_features(entity, ["by_city:busy"]).to_arrow()
    got = spark.get_historical_features(entity, [f"{view}:busy"]).to_arrow()
    assert got.equals(want)
    assert want.column("busy").null_count < want.num_rows


def test_to_spark_df_and_to_parquet_keep_the_entity_order(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], tmp_path: Path
) -> None:
    local, spark, trips = stores
    entity = _entity(trips)
    features = ["trips:trips", "rate_plus_bonus:rate_plus_bonus", "by_city:busy"]
    want = local.get_historical_features(entity, features).to_arrow()
    job = spark.get_historical_features(entity, features)
    assert isinstance(job, SparkRetrievalJob)
    frame = job.to_spark_df()
    got = frame.toArrow()
    assert got.column_names == want.column_names
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    job.to_parquet(tmp_path / "out")
    files = sorted((tmp_path / "out").glob("part-*.parquet"))
    assert files  # written by the executors as part files
    written = ds.dataset(tmp_path / "out", format="parquet").to_table()
    assert written.column("trips").to_pylist() == want.column("trips").to_pylist()


def test_errors_name_the_column(stores: tuple[FeatureStore, FeatureStore, pa.Table]) -> None:
    _, spark, trips = stores
    entity = _entity(trips)
    with pytest.raises(
        ColumnNotFoundError, match="no column 'driver_id', a join key of feature view 'trips'"
    ):
        spark.get_historical_features(
            entity.drop_columns(["driver_id"]), ["trips:trips"]
        ).to_arrow()
    strings = entity.set_column(0, "driver_id", entity.column("driver_id").cast(pa.string()))
    with pytest.raises(KeyTypeMismatchError, match="entity frame column 'driver_id' is string"):
        spark.get_historical_features(strings, ["trips:trips"]).to_arrow()


def test_unreadable_source_is_named(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], tmp_path: Path
) -> None:
    _, spark, trips = stores
    config = spark.config
    view = ViewJoin(
        name="gone",
        source=str(tmp_path / "missing"),
        entity_join_keys=[("driver_id", "drv")],
        timestamp_field="ts",
        features=[("n", "n")],
    )
    job = SparkRetrievalJob(config, _entity(trips), "event_timestamp", [view], False, lambda t: t)
    with pytest.raises(SourceReadError, match="cannot read FileSource 'gone'"):
        job.to_arrow()


def test_missing_pyspark_names_the_extra(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, spark, trips = stores
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if `repast[spark]` were not installed
    with pytest.raises(MissingExtraError, match=r"install `repast\[spark\]`"):
        require_pyspark()
    # The plan is still checked without Spark; running it names the extra.
    job = spark.get_historical_features(_entity(trips), ["trips:trips"])
    with pytest.raises(MissingExtraError, match="need pyspark"):
        job.to_arrow()


# --- the join itself, on random cases (tests/test_pit_property.py's generator) ----------------


def _views(case: Case, path: str) -> list[ViewJoin]:
    n_keys = {"int": 1, "str": 1, "composite": 2, "none": 0}[case.key_kind]
    keys = [(f"k{i}", f"k{i}") for i in range(n_keys)]
    return [
        ViewJoin(
            name="v",
            source=path,
            entity_join_keys=keys,
            timestamp_field="ts",
            created_timestamp_column="created" if case.created is not None else None,
            ttl=timedelta(microseconds=case.ttl // 1000) if case.ttl else None,
            features=[("row", "v__row"), ("value", "v__value"), ("label", "v__label")],
        ),
        ViewJoin(
            name="w",
            source=path,
            entity_join_keys=keys,
            timestamp_field="ts",
            features=[("row", "w__row")],
        ),
    ]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=cases())
def test_random_cases_match_the_local_kernel(case: Case, tmp_path: Path) -> None:
    ns = pa.timestamp("ns", tz="UTC")
    entity = pa.table(
        {
            **key_columns(case.key_kind, case.entity_keys, pa.int64()),
            "request": pa.array(range(len(case.entity_ts)), type=pa.int64()),
            "event_timestamp": pa.array(case.entity_ts, type=pa.int64()).cast(ns),
        }
    )
    columns: dict[str, pa.Array] = {
        **key_columns(case.key_kind, case.source_keys, pa.int32()),
        "ts": pa.array(case.source_ts, type=pa.int64()).cast(ns).cast(US),
        "row": pa.array(range(len(case.source_ts)), type=pa.int64()),
        "value": pa.array(case.values, type=pa.int64()),
        "label": pa.array([None if v is None else str(v) for v in case.values], type=pa.string()),
    }
    if case.created is not None:
        columns["created"] = pa.array(case.created, type=pa.int64()).cast(ns).cast(US)
    path = tmp_path / f"source-{abs(hash(str(case)))}.parquet"
    pq.write_table(pa.table(columns), path)
    views = _views(case, str(path))
    want = point_in_time_join(entity, "event_timestamp", views, case.filter_by_created)
    config = RepoConfig(
        project="p",
        registry=RegistryConfig(path="r.json"),
        offline_store=SparkOfflineStoreConfig(spark_conf=SPARK_CONF),
    )
    job = SparkRetrievalJob(
        config, entity, "event_timestamp", views, case.filter_by_created, lambda t: t
    )
    assert job.to_arrow().equals(want)


# --- offline writes to SparkSources ---------------------------------------------------------


def _write_view(spark: FeatureStore, source: Any) -> Any:
    from repast import Entity, FeatureView, Field
    from repast.types import Float64, Int64

    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name=f"written_{source.name}",
        entities=[driver],
        ttl=timedelta(days=1),
        source=source,
        schema=[Field(name="driver_id", dtype=Int64), Field(name="speed", dtype=Float64)],
    )
    spark.apply([source, view])
    return view


def _rows(n: int, offset: int) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array(range(offset, offset + n), pa.int64()),
            "ts": pa.array([T0 + timedelta(minutes=i) for i in range(n)], US),
            "speed": pa.array([float(i) for i in range(n)]),
        }
    )


def test_write_to_offline_store_appends_to_a_path_and_a_table(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], tmp_path: Path
) -> None:
    from repast import SparkSource

    _, spark, _ = stores
    session = spark_session(SPARK_CONF)
    pq.write_table(_rows(3, 0), tmp_path / "first.parquet")
    by_path = SparkSource(
        name="speeds_path", path=str(tmp_path), file_format="parquet", timestamp_field="ts"
    )
    session.sql("DROP TABLE IF EXISTS speeds")
    session.sql("CREATE TABLE speeds (driver_id BIGINT, ts TIMESTAMP, speed DOUBLE) USING parquet")
    by_table = SparkSource(name="speeds_table", table="speeds", timestamp_field="ts")
    for source in (by_path, by_table):
        view = _write_view(spark, source)
        # Columns in another order, an int feature column: reordered and cast to the source's.
        rows = _rows(4, 10).select(["speed", "ts", "driver_id"])
        rows = rows.set_column(0, "speed", pa.array([1, 2, 3, 4], pa.int64()))
        spark.write_to_offline_store(view.name, rows)
        entity = pa.table(
            {
                "driver_id": [10, 13, 0],
                "event_timestamp": pa.array([T0 + timedelta(hours=1)] * 3, US),
            }
        )
        got = spark.get_historical_features(entity, [f"{view.name}:speed"]).to_arrow()
        first = 0.0 if source is by_path else None  # the path held one file already
        assert got.column("speed").to_pylist() == [1.0, 4.0, first], source.name


def test_offline_write_errors_name_the_source(
    stores: tuple[FeatureStore, FeatureStore, pa.Table], tmp_path: Path
) -> None:
    from repast import SparkSource
    from repast.errors import OfflineWriteError

    _, spark, _ = stores
    pq.write_table(_rows(2, 0), tmp_path / "first.parquet")
    by_path = SparkSource(
        name="speeds_checked", path=str(tmp_path), file_format="parquet", timestamp_field="ts"
    )
    view = _write_view(spark, by_path)
    with pytest.raises(OfflineWriteError, match=r"missing \['speed'\], extra \['sped'\]"):
        spark.write_to_offline_store(
            view.name, _rows(2, 5).rename_columns(["driver_id", "ts", "sped"])
        )
    bad = _rows(2, 5).set_column(2, "speed", pa.array(["fast", "slow"]))
    with pytest.raises(OfflineWriteError, match="column 'speed'"):
        spark.write_to_offline_store(view.name, bad)
    query = SparkSource(name="speeds_query", query="SELECT 1 AS driver_id", timestamp_field="ts")
    view = _write_view(spark, query)
    with pytest.raises(OfflineWriteError, match="is a query"):
        spark.write_to_offline_store(view.name, _rows(1, 0))
    # Nothing was appended by the refused writes.
    assert len(list(tmp_path.glob("*.parquet"))) == 1


def test_spark_connect_in_a_process_with_a_local_session_is_refused(
    stores: tuple[FeatureStore, FeatureStore, pa.Table],
) -> None:
    from repast.errors import ConfigError

    spark_session(SPARK_CONF)  # this process runs a local Spark
    with pytest.raises(ConfigError, match="Spark Connect needs a process without one"):
        spark_session({"spark.remote": "sc://127.0.0.1:1"})


def test_entity_frame_as_a_spark_dataframe_or_a_query(
    stores: tuple[FeatureStore, FeatureStore, pa.Table],
) -> None:
    from repast.errors import OfflineStoreError

    local, spark, trips = stores
    entity = _entity(trips)
    session = spark_session(SPARK_CONF)
    frame = session.createDataFrame(entity)
    frame.createOrReplaceTempView("entity_rows")
    features = ["trips:trips", "trips:note", "by_city:busy", "rate_plus_bonus:rate_plus_bonus"]
    want = local.get_historical_features(entity, features).to_arrow()
    for entity_df in (frame, "SELECT * FROM entity_rows"):
        got = spark.get_historical_features(entity_df, features).to_arrow()
        assert got.column_names == want.column_names
        for name in want.column_names:
            assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    with pytest.raises(OfflineStoreError, match="neither an existing file nor a Spark SQL query"):
        spark.get_historical_features("SELECT * FROM no_such_table", features)
