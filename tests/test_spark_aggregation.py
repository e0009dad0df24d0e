"""Windowed aggregations on the `spark` offline store and batch engine, on a real local Spark
(`local[2]`) and a real redis-server, against the local kernel and the local engine (which
tests/test_aggregation_oracle.py checks against the documented definition)."""

from __future__ import annotations

import tempfile
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_repos import YAML
from repast import FeatureStore
from repast.config import RegistryConfig, RepoConfig, SparkOfflineStoreConfig
from repast.errors import (
    ColumnNotFoundError,
    MaterializationError,
    OfflineStoreError,
    RepoValidationError,
)
from repast.offline import point_in_time_join
from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.view import ViewJoin
from repast.spark.backfill import entity_cut
from repast.spark.retrieval import SparkRetrievalJob
from services import RedisServer
from spark_helpers import SPARK_CONF, spark_store
from test_aggregation_batch_view import BATCH, BATCH_FEATURES, STREAM_FEATURES
from test_aggregation_store import DEFINITIONS, START, entity_rows, events

S = 1_000_000_000
NS = pa.timestamp("ns", tz="UTC")
US = pa.timestamp("us", tz="UTC")
NUMERIC = ["sum", "mean", "min", "max", "var", "stddev", "last", "count"]
# Per input column: the functions that take it.
FUNCTIONS = {
    "n": [*NUMERIC, "count_distinct"],
    "x": NUMERIC,
    "label": ["count", "last", "count_distinct"],
}

# --- retrieval: random cases against the local kernel ---------------------------------------


@dataclass
class Case:
    events: list[tuple[int | None, int | None, int | None, float | None, str | None]]
    split: int  # the events are two Parquet files: [0, split) and [split, n)
    rows: list[tuple[int | None, int | None]]
    aggregates: list[tuple[str, str, int]]  # (function, column, window seconds)
    tile: int
    keyed: bool


@st.composite
def cases(draw: Any) -> Case:
    key = st.one_of(st.none(), st.integers(0, 3))
    time = st.one_of(st.none(), st.integers(-40, 120))
    # Any finite doubles: the fold order decides the last bits, so equality checks it.
    value = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))
    label = st.one_of(st.none(), st.sampled_from(["a", "b", "cc", ""]))
    events = draw(
        st.lists(
            st.tuples(key, time, st.one_of(st.none(), st.integers(-50, 50)), value, label),
            max_size=40,
        )
    )
    column = draw(st.sampled_from(sorted(FUNCTIONS)))
    aggregates = draw(
        st.lists(
            st.sampled_from(sorted(FUNCTIONS)).flatmap(
                lambda c: st.tuples(st.sampled_from(FUNCTIONS[c]), st.just(c), st.integers(8, 60))
            ),
            min_size=1,
            max_size=4,
        )
    )
    del column
    return Case(
        events=events,
        split=draw(st.integers(0, len(events))),
        rows=draw(st.lists(st.tuples(key, time), min_size=1, max_size=12)),
        aggregates=aggregates,
        tile=draw(st.sampled_from([1, 5, 7])),
        keyed=draw(st.booleans()),
    )


def _seconds(values: list[int | None]) -> pa.Array:
    return pa.array([None if v is None else v * S for v in values], pa.int64()).cast(NS)


def _source(case: Case, directory: Path) -> str:
    table = pa.table(
        {
            "k": pa.array([e[0] for e in case.events], pa.int64()),
            "ts": _seconds([e[1] for e in case.events]).cast(US),
            "n": pa.array([e[2] for e in case.events], pa.int64()),
            "x": pa.array([e[3] for e in case.events], pa.float64()),
            "label": pa.array([e[4] for e in case.events], pa.string()),
        }
    )
    directory.mkdir(parents=True)
    pq.write_table(table.slice(0, case.split), directory / "part-0.parquet")
    pq.write_table(table.slice(case.split), directory / "part-1.parquet")
    return str(directory)


def _joins(case: Case, path: str) -> list[ViewJoin | AggregateJoin]:
    """An aggregated view (keyed or not), a plain view, and a second aggregated view on the
    same events (1-second tiles), in that request order."""

    def aggregated(name: str, tile: int, keyed: bool, specs: list[tuple[str, str, int]]) -> Any:
        return AggregateJoin(
            view=ViewJoin(
                name=name,
                source=path,
                entity_join_keys=[("k", "k")] if keyed else [],
                timestamp_field="ts",
                features=[(c, c) for c in dict.fromkeys(c for _, c, _ in specs)],
            ),
            tile=timedelta(seconds=tile),
            aggregates=[
                WindowedFeature(f, c, timedelta(seconds=w), f"{name}__{f}_{c}_{w}_{i}")
                for i, (f, c, w) in enumerate(specs)
            ],
        )

    plain = ViewJoin(
        name="plain",
        source=path,
        entity_join_keys=[("k", "k")],
        timestamp_field="ts",
        ttl=timedelta(seconds=30),
        features=[("x", "plain__x")],
    )
    return [
        aggregated("a", case.tile, case.keyed, case.aggregates),
        plain,
        aggregated("b", 1, True, [("sum", "n", 20), ("last", "label", 9)]),
    ]


def _local(entity: pa.Table, joins: list[ViewJoin | AggregateJoin]) -> pa.Table:
    """What the local store returns for these joins (repast.offline.historical's order)."""
    plain = [j for j in joins if isinstance(j, ViewJoin)]
    frame = point_in_time_join(entity, "event_timestamp", plain)
    ts = entity.column("event_timestamp").cast(pa.int64()).combine_chunks()
    for join in joins:
        if isinstance(join, AggregateJoin):
            for aggregate, column in zip(
                join.aggregates, aggregate_as_of(entity, ts, join), strict=True
            ):
                frame = frame.append_column(aggregate.output, column)
    return frame.select([*entity.column_names, *(o for j in joins for _, o in j.features)])


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=cases())
def test_random_aggregations_equal_the_local_kernel(case: Case, tmp_path: Path) -> None:
    """Every function, windows, tiles, null keys/times/values, ties of `last` across two files,
    entity-less views, mixed with a plain view: the same table, bit for bit."""
    path = _source(case, Path(tempfile.mkdtemp(dir=tmp_path)) / "events")
    entity = pa.table(
        {
            "k": pa.array([k for k, _ in case.rows], pa.int32()),
            "event_timestamp": _seconds([t for _, t in case.rows]),
        }
    )
    joins = _joins(case, path)
    want = _local(entity, joins)
    config = RepoConfig(
        project="p",
        registry=RegistryConfig(path="r.json"),
        offline_store=SparkOfflineStoreConfig(spark_conf=SPARK_CONF),
    )
    got = SparkRetrievalJob(config, entity, "event_timestamp", joins, False, lambda t: t).to_arrow()
    assert got.equals(want), (got.to_pydict(), want.to_pydict())


# --- retrieval through a feature repo ----------------------------------------------------------

PLAIN_AND_ODFV = """
import pandas as pd
from repast import FeatureView, RequestSource
from repast.on_demand_feature_view import on_demand_feature_view

trip_rows = FeatureView(
    name="trip_rows", entities=[driver], ttl=timedelta(hours=2), source=trips_source,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="fare", dtype=Float64)],
)
request = RequestSource(name="request", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(
    sources=[driver_trips, request], schema=[Field(name="fare_plus_bonus", dtype=Float64)]
)
def fare_plus_bonus(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["fare_plus_bonus"] = inputs["fare_1d"] + inputs["bonus"]
    return out


from repast import BatchFeatureView, SparkSource

# The same events as a SparkSource (the spark store only) and as the FileSource.
trips_lake = SparkSource(
    name="trips_lake", path="data/trips.parquet", file_format="parquet", timestamp_field="ts"
)
batch_schema = [
    Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64),
    Field(name="fare", dtype=Float64),
]
batch_aggregations = [
    Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)),
    Aggregation(column="fare", function="mean", time_window=timedelta(days=1)),
]
lake_trips = BatchFeatureView(
    name="lake_trips", entities=[driver], source=trips_lake, schema=batch_schema,
    aggregations=batch_aggregations,
)
file_trips = BatchFeatureView(
    name="file_trips", entities=[driver], source=trips_source, schema=batch_schema,
    aggregations=batch_aggregations,
)
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, FeatureStore]:
    """The aggregation repo (tests/test_aggregation_store.py) plus a plain view and an on-demand
    view over an aggregate; the local store and the spark one."""
    root = tmp_path_factory.mktemp("spark-agg") / "repo"
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(YAML.format(project="agg", registry="data/reg.json"))
    definitions = textwrap.dedent(DEFINITIONS).replace("ONLINE", "False") + PLAIN_AND_ODFV
    (root / "definitions.py").write_text(definitions)
    trips = events(2000, seed=7)
    pq.write_table(trips.slice(0, 1200), root / "data" / "trips.parquet")
    local = FeatureStore(repo_path=root)
    local.apply_repo()
    return local, spark_store(local)


REQUEST = [
    "driver_trips:sum_trips_3600s",
    "trip_rows:fare",
    "driver_trips:last_fare_3600s",
    "driver_trips:count_distinct_rider_86400s",
    "fare_plus_bonus:fare_plus_bonus",
    "all_trips:sum_trips_7200s",
    "driver_trips:stddev_fare_86400s",
]


def test_a_mixed_request_equals_the_local_store(
    stores: tuple[FeatureStore, FeatureStore], tmp_path: Path
) -> None:
    """Aggregated (keyed and entity-less), plain and on-demand views in one request, full
    names: to_arrow, to_spark_df and to_parquet give the local store's frame."""
    local, spark = stores
    entity = entity_rows(200, seed=5)
    entity["bonus"] = [float(i % 7) for i in range(len(entity))]
    want = local.get_historical_features(entity, REQUEST, full_feature_names=True).to_arrow()
    job = spark.get_historical_features(entity, REQUEST, full_feature_names=True)
    assert isinstance(job, SparkRetrievalJob)
    got = job.to_arrow()
    assert got.equals(want)
    # Grouped by view in request order; the on-demand view's inputs (every feature of its
    # source view) before its output, as the local store returns them.
    assert got.column_names[3:] == [
        "driver_trips__sum_trips_3600s",
        "driver_trips__last_fare_3600s",
        "driver_trips__count_distinct_rider_86400s",
        "driver_trips__stddev_fare_86400s",
        "trip_rows__fare",
        "driver_trips__sum_trips_86400s",
        "driver_trips__count_trips_3600s",
        "driver_trips__fare_1d",
        "driver_trips__max_fare_3600s",
        "driver_trips__last_rider_86400s",
        "all_trips__sum_trips_7200s",
        "fare_plus_bonus__fare_plus_bonus",
    ]
    assert pc_count_valid(got, "driver_trips__sum_trips_3600s") > 50
    # Kept in Spark: the same rows in entity order, written by the executors.
    frame = job.to_spark_df().toArrow()
    assert frame.column_names == want.column_names
    for name in want.column_names[3:]:
        assert frame.column(name).to_pylist() == want.column(name).to_pylist(), name
    job.to_parquet(tmp_path / "out")
    written = ds.dataset(tmp_path / "out", format="parquet").to_table()
    assert written.column("all_trips__sum_trips_7200s").to_pylist() == (
        want.column("all_trips__sum_trips_7200s").to_pylist()
    )


def test_a_batch_view_over_a_spark_source(stores: tuple[FeatureStore, FeatureStore]) -> None:
    """A BatchFeatureView over a SparkSource aggregates on the spark store as the same view
    over the FileSource does on the local store."""
    local, spark = stores
    entity = entity_rows(100, seed=9)
    names = ["sum_trips_3600s", "mean_fare_86400s"]
    got = spark.get_historical_features(entity, [f"lake_trips:{n}" for n in names]).to_arrow()
    want = local.get_historical_features(entity, [f"file_trips:{n}" for n in names]).to_arrow()
    assert got.equals(want)
    assert pc_count_valid(got, "mean_fare_86400s") > 50


def test_a_spark_entity_frame_stays_in_spark(stores: tuple[FeatureStore, FeatureStore]) -> None:
    """An entity frame that is a Spark DataFrame gets the local store's aggregates, in its
    own row order."""
    from repast.spark.session import spark_session

    local, spark = stores
    entity = entity_rows(120, seed=13)
    request = [
        "driver_trips:count_trips_3600s",
        "driver_trips:fare_1d",
        "all_trips:sum_trips_7200s",
    ]
    want = local.get_historical_features(entity, request).to_arrow()
    frame = spark_session(SPARK_CONF).createDataFrame(pa.Table.from_pandas(entity))
    got = spark.get_historical_features(frame, request).to_arrow()
    assert got.num_rows == want.num_rows
    for name in ["driver_id", "count_trips_3600s", "fare_1d", "sum_trips_7200s"]:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def pc_count_valid(table: pa.Table, name: str) -> int:
    nulls: int = table.column(name).null_count
    return len(table) - nulls


def test_a_missing_input_column_is_named(
    stores: tuple[FeatureStore, FeatureStore], tmp_path: Path
) -> None:
    """A source without an aggregation's input column fails on the driver, naming it."""
    _, spark = stores
    path = tmp_path / "no-fare.parquet"
    pq.write_table(events(10, seed=1).drop_columns(["fare"]), path)
    join = AggregateJoin(
        view=ViewJoin(
            name="driver_trips",
            source=str(path),
            entity_join_keys=[("driver_id", "driver_id")],
            timestamp_field="ts",
            features=[("fare", "fare")],
        ),
        tile=timedelta(minutes=5),
        aggregates=[WindowedFeature("sum", "fare", timedelta(hours=1), "sum_fare")],
    )
    entity = pa.table({"driver_id": [1], "event_timestamp": pa.array([START], US)})
    job = SparkRetrievalJob(spark.config, entity, "event_timestamp", [join], False, lambda t: t)
    with pytest.raises(ColumnNotFoundError, match="has no column 'fare'"):
        job.to_arrow()


# --- the batch engine: online tiles from the executors ----------------------------------------


@given(
    runs=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(1, 4)), max_size=8
    ),
    keyed=st.booleans(),
)
def test_entity_cut_finds_the_last_entitys_run(
    runs: list[tuple[int | None, int]], keyed: bool
) -> None:
    # Adjacent runs of the same key are one run.
    merged: list[tuple[int | None, int]] = []
    for key, length in runs:
        if merged and merged[-1][0] == key:
            merged[-1] = (key, merged[-1][1] + length)
        else:
            merged.append((key, length))
    keys = [key for key, length in merged for _ in range(length)]
    table = pa.table({"k": pa.array(keys, pa.int64()), "region": ["eu"] * len(keys)})
    cut = entity_cut(table, ["k", "region"] if keyed else [])
    want = len(keys) - merged[-1][1] if keyed and len(merged) > 1 else 0
    assert cut == want


def _backfill_repo(
    root: Path, project: str, online: str, now: datetime, extra_yaml: str = ""
) -> FeatureStore:
    """The stream view (5-minute tiles) and the batch view (1-second tiles) over 3 000 events
    of the last three days."""
    (root / "data" / "trips").mkdir(parents=True)
    yaml = YAML.format(project=project, registry="data/reg.json")
    (root / "feature_store.yaml").write_text(
        yaml.replace("online_store:\n  type: sqlite\n  path: data/online.db\n", online) + extra_yaml
    )
    definitions = (textwrap.dedent(DEFINITIONS) + BATCH).replace("ONLINE", "True")
    definitions = definitions.replace("data/trips.parquet", "data/trips")
    (root / "definitions.py").write_text(definitions)
    trips = events(3000, seed=11)
    # events() spans START .. START + 3 days: moved to end a minute before `now`.
    shift = now - timedelta(days=3, minutes=1) - START
    stamps = [t + shift for t in trips.column("ts").to_pylist()]
    trips = trips.set_column(1, "ts", pa.array(stamps, US))
    # One file, read by the local engine in one batch: each entity's events are folded in one
    # call, in (event time, row) order, by both engines (repast.spark.backfill), so floats agree
    # to the bit. (Events of a tile split across local batches may differ in the last bits.)
    pq.write_table(trips, root / "data" / "trips" / "a.parquet")
    store = FeatureStore(repo_path=root)
    store.apply_repo()
    return store


def _online(store: FeatureStore, at: datetime) -> dict[str, list[Any]]:
    features = [
        *(f"driver_trips:{f}" for f in STREAM_FEATURES),
        *(f"batch_trips:{f}" for f in BATCH_FEATURES),
    ]
    with mock.patch("repast.online.tiles.now_ns", return_value=int(at.timestamp()) * S):
        rows = [{"driver_id": d} for d in range(7)]
        return store.get_online_features(features, rows, full_feature_names=True).to_dict()


@pytest.mark.parametrize("online", ["redis-packed", "sqlite"])
def test_spark_backfill_reads_as_the_local_backfill(
    tmp_path: Path, online: str, request: pytest.FixtureRequest
) -> None:
    """Online reads after a Spark materialize equal those after a local one, at several
    instants; the batch view's equal the training frame too (exact 1-second windows)."""
    server: RedisServer | None = None
    online_yaml = "online_store:\n  type: sqlite\n  path: data/online.db\n"
    if online != "sqlite":
        server = request.getfixturevalue("redis_clean")
        online_yaml = (
            f"online_store:\n  type: redis\n  connection_string: {server.connection_string}\n"
            "  layout: packed\n"
        )
    now = datetime.now(UTC).replace(microsecond=0)
    local = _backfill_repo(tmp_path / "local", "agg_local", online_yaml, now)
    # Small write chunks: each partition folds its entities in many calls, cut between them.
    chunks = "materialization:\n  online_write_batch_size: 40\n"
    base = _backfill_repo(tmp_path / "spark", "agg_spark", online_yaml, now, chunks)
    spark = spark_store(base, engine=True)
    start, end = now - timedelta(days=3), now
    local.materialize(start, end)
    spark.materialize(start, end)
    read = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    for offset in (timedelta(0), timedelta(minutes=47), timedelta(hours=20)):
        got, want = _online(spark, read + offset), _online(local, read + offset)
        assert got == want, offset
    distinct = want["driver_trips__count_distinct_rider_86400s"]
    assert sum(v is not None and v > 0 for v in distinct) >= 5
    # The batch view's online values are its training frame's at the same instant (for the
    # drivers with events: one never written reads as null online, count 0 offline).
    entity = pd.DataFrame({"driver_id": list(range(1, 6)), "event_timestamp": [read] * 5})
    offline = spark.get_historical_features(
        entity, [f"batch_trips:{f}" for f in BATCH_FEATURES]
    ).to_df()
    online_now = _online(spark, read)
    for name in BATCH_FEATURES:
        online_values = online_now[f"batch_trips__{name}"][1:6]
        for g, w in zip(online_values, offline[name].tolist(), strict=True):
            assert (g is None and pd.isna(w)) or g == pytest.approx(w, rel=1e-12), name
    record = spark.registry.snapshot(allow_cache=False).record(
        "agg_spark", "stream_feature_views", "driver_trips"
    )
    assert record is not None
    assert len(record.meta["materialization_intervals"]) == 1


def test_a_store_without_tiles_is_refused_before_the_job(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    """Redis in the feast layout cannot keep tile sets: apply refuses it, and a repo switched
    to that layout after apply is refused by the Spark backfill on the driver, naming the view,
    with nothing recorded."""
    online_yaml = (
        f"online_store:\n  type: redis\n  connection_string: {redis_clean.connection_string}\n"
        "  layout: packed\n"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    base = _backfill_repo(tmp_path, "agg_feast", online_yaml, now)
    yaml = tmp_path / "feature_store.yaml"
    yaml.write_text(yaml.read_text().replace("layout: packed", "layout: feast"))
    with pytest.raises(RepoValidationError, match="(batch|driver)_trips.*layout: packed"):
        FeatureStore(repo_path=tmp_path).apply_repo()
    spark = spark_store(FeatureStore(repo_path=base.repo_path), engine=True)
    with pytest.raises(MaterializationError, match="driver_trips.*layout: packed"):
        spark.materialize(now - timedelta(days=1), now, ["driver_trips"])
    record = spark.registry.snapshot(allow_cache=False).record(
        "agg_feast", "stream_feature_views", "driver_trips"
    )
    assert record is not None
    assert not record.meta.get("materialization_intervals")


def test_a_retried_partition_is_refused(
    stores: tuple[FeatureStore, FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition's second attempt folds nothing: it fails, naming the partition and why.
    (Spark's TaskContext is replaced here: a real retry needs a task that fails once, which a
    local session shared by the tests cannot be set up to do.)"""
    import pyspark

    from repast.spark.backfill import _PartitionFold

    class Retry:
        def partitionId(self) -> int:
            return 3

        def attemptNumber(self) -> int:
            return 1

    monkeypatch.setattr(pyspark.TaskContext, "get", staticmethod(lambda: Retry()))
    local, _ = stores
    view = local.get_stream_feature_view("driver_trips")
    fold = _PartitionFold(local.config, view, ("driver_id",), ("driver_id",), 100)
    folded: list[pa.RecordBatch] = []
    batches = iter([pa.record_batch({"driver_id": [1]})])
    with pytest.raises(MaterializationError, match="partition 3 .* would count them twice"):
        folded.extend(fold(batches))
    assert folded == []
    assert next(batches).num_rows == 1  # not a single event was read


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    others=st.lists(st.integers(2, 9), max_size=6),
    position=st.integers(0, 6),
    big=st.integers(2**62, 2**63 - 1),
)
def test_an_overflowing_sum_names_the_view_and_the_entity_row(
    others: list[int], position: int, big: int, tmp_path: Path
) -> None:
    """An int64 sum that overflows in a Spark worker is the file store's OfflineStoreError, its
    message naming the view and the entity frame's row (not the row within its bucket)."""
    position = min(position, len(others))
    keys = [*others[:position], 1, *others[position:]]
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "events.parquet"
    stamp = START - timedelta(minutes=1)
    events_table = pa.table(
        {
            "k": pa.array([1, 1, *others], pa.int64()),
            "ts": pa.array([stamp] * (2 + len(others)), US),
            "n": pa.array([big, big, *[1] * len(others)], pa.int64()),
        }
    )
    pq.write_table(events_table, path)
    join = AggregateJoin(
        view=ViewJoin(
            name="huge",
            source=str(path),
            entity_join_keys=[("k", "k")],
            timestamp_field="ts",
            features=[("n", "n")],
        ),
        tile=timedelta(seconds=1),
        aggregates=[WindowedFeature("sum", "n", timedelta(hours=1), "sum_n")],
    )
    entity = pa.table(
        {"k": pa.array(keys, pa.int64()), "event_timestamp": pa.array([START] * len(keys), US)}
    )
    config = RepoConfig(
        project="p",
        registry=RegistryConfig(path="r.json"),
        offline_store=SparkOfflineStoreConfig(spark_conf=SPARK_CONF),
    )
    job = SparkRetrievalJob(config, entity, "event_timestamp", [join], False, lambda t: t)
    with pytest.raises(
        OfflineStoreError, match=rf"'huge'.* entity row {position}'s window overflows"
    ):
        job.to_arrow()


def test_a_bad_event_fails_the_backfill_with_the_workers_message(tmp_path: Path) -> None:
    """An input that does not convert to its declared type fails in a partition; the job's
    error is the local engine's message (the column named), and nothing is recorded."""
    now = datetime.now(UTC).replace(microsecond=0)
    online_yaml = "online_store:\n  type: sqlite\n  path: data/online.db\n"
    messages = []
    for engine in ("local", "spark"):
        store = _backfill_repo(tmp_path / engine, f"agg_{engine}", online_yaml, now)
        path = tmp_path / engine / "data" / "trips" / "a.parquet"
        table = pq.read_table(path)
        fractional = pa.array([1.5] * table.num_rows, pa.float64())
        pq.write_table(table.set_column(2, "trips", fractional), path)
        if engine == "spark":
            store = spark_store(store, engine=True)
        with pytest.raises(MaterializationError) as caught:
            store.materialize(now - timedelta(days=1), now, ["driver_trips"])
        messages.append(str(caught.value))
        record = store.registry.snapshot(allow_cache=False).record(
            f"agg_{engine}", "stream_feature_views", "driver_trips"
        )
        assert record is not None
        assert not record.meta.get("materialization_intervals")
    for message in messages:
        assert "column 'trips' (double)" in message, message
