"""Aggregated StreamFeatureViews through a feature repo: apply, the registry, and
`get_historical_features` checked against DuckDB SQL over the same Parquet file."""

from __future__ import annotations

import random
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_repos import YAML
from repast import FeatureStore, PushMode
from repast.errors import RepastError, RepoValidationError
from repast.types import Float64, Int64

START = datetime(2024, 3, 1, tzinfo=UTC)
HOP = timedelta(minutes=5)

DEFINITIONS = """\
from datetime import timedelta

from repast import (
    Aggregation, Entity, FeatureService, Field, FileSource, PushSource, StreamFeatureView,
)
from repast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
trips_source = FileSource(name="trips_source", path="data/trips.parquet", timestamp_field="ts")
trips_push = PushSource(name="trips_push", batch_source=trips_source)

driver_trips = StreamFeatureView(
    name="driver_trips",
    entities=[driver],
    source=trips_push,
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="trips", dtype=Int64),
        Field(name="fare", dtype=Float64),
        Field(name="rider", dtype=String),
    ],
    aggregations=[
        Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)),
        Aggregation(column="trips", function="sum", time_window=timedelta(days=1)),
        Aggregation(column="trips", function="count", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="avg", time_window=timedelta(days=1), name="fare_1d"),
        Aggregation(column="fare", function="max", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="stddev", time_window=timedelta(days=1)),
        Aggregation(column="rider", function="count_distinct", time_window=timedelta(days=1)),
        Aggregation(column="fare", function="last", time_window=timedelta(hours=1)),
        Aggregation(column="rider", function="last", time_window=timedelta(days=1)),
    ],
    timestamp_field="ts",
    enable_tiling=True,
    tiling_hop_size=timedelta(minutes=5),
    online=ONLINE,
)

all_trips = StreamFeatureView(
    name="all_trips",
    source=trips_push,
    schema=[Field(name="trips", dtype=Int64)],
    aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=2))],
    timestamp_field="ts",
    online=False,
)

trips_service = FeatureService(name="trips_service", features=[driver_trips[["fare_1d"]]])
"""

FEATURES = [
    "sum_trips_3600s",
    "sum_trips_86400s",
    "count_trips_3600s",
    "fare_1d",
    "max_fare_3600s",
    "stddev_fare_86400s",
    "count_distinct_rider_86400s",
    "last_fare_3600s",
    "last_rider_86400s",
]


def events(n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    stamps = [START + timedelta(seconds=rng.randrange(3 * 86400)) for _ in range(n)]
    return pa.table(
        {
            "driver_id": pa.array([rng.randrange(1, 6) for _ in range(n)], pa.int64()),
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "trips": pa.array([rng.choice([None, *range(5)]) for _ in range(n)], pa.int64()),
            "fare": pa.array([rng.randrange(100, 5000) / 100 for _ in range(n)], pa.float64()),
            "rider": pa.array([f"r{rng.randrange(40)}" for _ in range(n)]),
        }
    )


def write_repo(root: Path, online: bool = False, definitions: str = DEFINITIONS) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(YAML.format(project="agg", registry="data/reg.json"))
    (root / "definitions.py").write_text(
        textwrap.dedent(definitions).replace("ONLINE", str(online))
    )
    pq.write_table(events(2000, seed=7), root / "data" / "trips.parquet")
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    store = FeatureStore(repo_path=write_repo(tmp_path_factory.mktemp("agg") / "repo"))
    store.apply_repo()
    return store


def entity_rows(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "driver_id": [rng.randrange(0, 7) for _ in range(n)],
            "event_timestamp": [
                START + timedelta(seconds=rng.randrange(-3600, 4 * 86400)) for _ in range(n)
            ],
        }
    )


SQL = """
SELECT e.row_id,
  sum(t.trips) FILTER (WHERE t.ts > e.start_1h) AS sum_trips_3600s,
  sum(t.trips) AS sum_trips_86400s,
  count(t.trips) FILTER (WHERE t.ts > e.start_1h) AS count_trips_3600s,
  avg(t.fare) AS fare_1d,
  max(t.fare) FILTER (WHERE t.ts > e.start_1h) AS max_fare_3600s,
  stddev_samp(t.fare) AS stddev_fare_86400s,
  count(DISTINCT t.rider) AS count_distinct_rider_86400s,
  arg_max(t.fare, t.ts) FILTER (WHERE t.ts > e.start_1h) AS last_fare_3600s,
  arg_max(t.rider, t.ts) AS last_rider_86400s
FROM entity e LEFT JOIN trips t
  ON t.driver_id = e.driver_id AND t.ts > e.start_1d AND t.ts <= e.event_timestamp
GROUP BY e.row_id ORDER BY e.row_id
"""


def duckdb_expected(trips: pa.Table, entity: pd.DataFrame) -> pd.DataFrame:
    """The documented window, `s(t) < ts <= t` with `s(t)` the tile boundary at or before
    `t - window`, in SQL."""
    frame = entity.copy()
    frame["row_id"] = range(len(frame))
    for name, window in (("start_1h", timedelta(hours=1)), ("start_1d", timedelta(days=1))):
        frame[name] = (frame.event_timestamp - window).dt.floor("5min")
    con = duckdb.connect()
    con.register("trips", trips)
    con.register("entity", frame)
    return con.execute(SQL).df()


def test_training_frame_matches_duckdb(store: FeatureStore) -> None:
    entity = entity_rows(300, seed=3)
    frame = store.get_historical_features(
        entity, [f"driver_trips:{name}" for name in FEATURES]
    ).to_df()
    assert list(frame.columns) == ["driver_id", "event_timestamp", *FEATURES]
    trips = pq.read_table(store.repo_path / "data" / "trips.parquet")
    want = duckdb_expected(trips, entity)
    for name in FEATURES:
        got, expected = frame[name].tolist(), want[name].tolist()
        for g, w in zip(got, expected, strict=True):
            if pd.isna(w):
                assert pd.isna(g), name
            elif isinstance(w, str):
                assert g == w, name
            else:
                assert g == pytest.approx(w, rel=1e-9), name
    # The window was not empty for most rows: the comparison saw real numbers.
    assert frame.count_trips_3600s.gt(0).sum() > 50


def test_types_names_service_and_entity_less_view(store: FeatureStore) -> None:
    view = store.get_stream_feature_view("driver_trips")
    assert [f.name for f in view.features] == FEATURES
    assert view.features[0].dtype == Int64
    assert view.features[3].dtype == Float64
    assert view.tile == HOP
    entity = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [START + timedelta(days=1)] * 2})
    frame = store.get_historical_features(
        entity, store.get_feature_service("trips_service"), full_feature_names=True
    ).to_df()
    assert list(frame.columns) == ["driver_id", "event_timestamp", "driver_trips__fare_1d"]
    # The entity-less view sums every driver's trips in (t - 2h, t] (t on a tile boundary).
    both = store.get_historical_features(entity, ["all_trips:sum_trips_7200s"]).to_df()
    trips = pq.read_table(store.repo_path / "data" / "trips.parquet").to_pandas()
    t = START + timedelta(days=1)
    window = trips[(trips.ts > t - timedelta(hours=2)) & (trips.ts <= t)]
    assert both.sum_trips_7200s.tolist() == [window.trips.sum()] * 2


def test_offline_push_of_raw_events_counts_at_once(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo"))
    store.apply_repo()
    when = START + timedelta(days=5)
    entity = pd.DataFrame({"driver_id": [9], "event_timestamp": [when]})
    before = store.get_historical_features(entity, ["driver_trips:sum_trips_3600s"]).to_df()
    assert pd.isna(before.sum_trips_3600s[0])
    rows = pd.DataFrame(
        {
            "driver_id": [9, 9, 9],
            # One late and out of order; one outside the hour.
            "ts": [
                when - timedelta(minutes=1),
                when - timedelta(minutes=50),
                when - timedelta(hours=2),
            ],
            "trips": [3, 4, 100],
            "fare": [1.0, 2.0, 3.0],
            "rider": ["a", "b", "c"],
        }
    )
    store.push("trips_push", rows, to=PushMode.OFFLINE)
    after = store.get_historical_features(
        entity, ["driver_trips:sum_trips_3600s", "driver_trips:last_fare_3600s"]
    ).to_df()
    assert after.sum_trips_3600s.tolist() == [7]
    assert after.last_fare_3600s.tolist() == [1.0]
    # An offline-only view still takes online pushes into its tiles (as Feast pushes to every
    # view of a push source); a frame without its input columns is refused before any write.
    with pytest.raises(RepastError, match=r"lacks the columns \['trips'\]"):
        store.push("trips_push", rows.drop(columns=["trips"]), to=PushMode.ONLINE)


BAD = [
    (
        'function="median"',
        "Aggregation 'median_trips': function must be one of sum, count, mean, avg",
    ),
    ("time_window=None", "aggregation 'sum_trips': time_window is required"),
    (
        "time_window=timedelta(minutes=5)",
        r"aggregation 'sum_trips_300s': time_window \(0:05:00\) must be longer than "
        r"tiling_hop_size \(0:05:00\)",
    ),
    (
        'column="nope"',
        "aggregation 'sum_nope_3600s': column 'nope' must be declared in the view's schema",
    ),
    (
        'column="rider"',
        "aggregation 'sum_rider_3600s': sum needs an integer or float column; 'rider' is String",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_aggregations_are_refused_at_apply(tmp_path: Path, change: str, message: str) -> None:
    original = 'Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))'
    field, _, value = change.partition("=")
    args = {"column": '"trips"', "function": '"sum"', "time_window": "timedelta(hours=1)"}
    args[field] = value
    changed = "Aggregation(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
    definitions = DEFINITIONS.replace(original, changed)
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", definitions=definitions))
    with pytest.raises(RepoValidationError, match=message):
        store.apply_repo()


@settings(max_examples=25, deadline=None)
@given(name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_function_names_are_refused(name: str) -> None:
    from repast import Aggregation

    known = {"sum", "count", "mean", "avg", "min", "max", "last", "var", "variance"}
    known |= {"stddev", "std", "count_distinct"}
    if name in known:
        Aggregation(column="x", function=name, time_window=timedelta(hours=1))
        return
    with pytest.raises(RepoValidationError, match=f"function must be one of .*, got '{name}'"):
        Aggregation(column="x", function=name, time_window=timedelta(hours=1))
