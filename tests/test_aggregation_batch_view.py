"""Aggregations on a BatchFeatureView (a FeatureView over a batch source, Feast 0.67's
signature): apply, the registry round trip, refusals, and online == offline at random
instants, beside a StreamFeatureView over the same events (docs/aggregations.md)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Aggregation, BatchFeatureView, FeatureStore, FeatureView, Field, FileSource
from repast.batch_feature_view import BatchFeatureView as FromFeastPath
from repast.diff import Transition
from repast.errors import RepoValidationError
from repast.types import Float64, Int64
from server_helpers import client_for, run
from test_aggregation_store import DEFINITIONS, write_repo

S = 1_000_000_000
START = datetime(2024, 3, 1, tzinfo=UTC)

# Both kinds of view over the same file: the batch view (1-second tiles, windows exact) and
# the repo's StreamFeatureView (5-minute tiles, sawtooth windows).
BATCH = """
from repast import BatchFeatureView

batch_trips = BatchFeatureView(
    name="batch_trips",
    entities=[driver],
    source=trips_source,
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="trips", dtype=Int64),
        Field(name="fare", dtype=Float64),
        Field(name="rider", dtype=String),
    ],
    aggregations=[
        Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)),
        Aggregation(column="trips", function="count", time_window=timedelta(minutes=10)),
        Aggregation(column="fare", function="mean", time_window=timedelta(days=1)),
        Aggregation(column="fare", function="min", time_window=timedelta(hours=1)),
        Aggregation(column="fare", function="var", time_window=timedelta(hours=6)),
        Aggregation(column="rider", function="count_distinct", time_window=timedelta(days=1)),
        Aggregation(column="fare", function="last", time_window=timedelta(hours=1), name="last_1h"),
    ],
    online=True,
)
"""

BATCH_FEATURES = [
    "sum_trips_3600s",
    "count_trips_600s",
    "mean_fare_86400s",
    "min_fare_3600s",
    "var_fare_21600s",
    "count_distinct_rider_86400s",
    "last_1h",
]
STREAM_FEATURES = [
    "sum_trips_3600s",
    "sum_trips_86400s",
    "count_trips_3600s",
    "fare_1d",
    "max_fare_3600s",
    "stddev_fare_86400s",
    "count_distinct_rider_86400s",
    "last_fare_3600s",
]
VIEWS = {"batch_trips": BATCH_FEATURES, "driver_trips": STREAM_FEATURES}

# The repo's events span START .. START + 3 days, at whole seconds.
FIRST_READ = START + timedelta(hours=30)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """Both views applied and materialized (a backfill into tiles) as of FIRST_READ."""
    repo = write_repo(tmp_path_factory.mktemp("bfv") / "repo", True, DEFINITIONS + BATCH)
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    with mock.patch("repast.online.tiles.now_ns", return_value=int(FIRST_READ.timestamp()) * S):
        store.materialize(START - timedelta(days=1), START + timedelta(days=4))
    return store


def assert_same(online: pd.DataFrame, offline: pd.DataFrame, names: list[str]) -> None:
    for name in names:
        for got, want in zip(online[name].tolist(), offline[name].tolist(), strict=True):
            if pd.isna(want):
                assert pd.isna(got), name
            elif isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-12), name
            else:
                assert got == want, name
    # The comparison saw real numbers, not only empty windows.
    assert online[names[0]].notna().any()


def online_and_offline(
    store: FeatureStore, view: str, at: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = [f"{view}:{f}" for f in VIEWS[view]]
    drivers = [1, 2, 3, 4, 5]
    with mock.patch("repast.online.tiles.now_ns", return_value=int(at.timestamp()) * S):
        online = store.get_online_features(features, [{"driver_id": d} for d in drivers]).to_df()
    entity = pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
    offline = store.get_historical_features(entity, features).to_df()
    return online, offline


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    view=st.sampled_from(sorted(VIEWS)),
    offsets=st.lists(st.integers(0, 40 * 3600), min_size=1, max_size=3),
)
def test_online_equals_offline_at_random_instants(
    materialized: FeatureStore, view: str, offsets: list[int]
) -> None:
    """Reads after the backfill's clock equal the training frame at the same instant, for the
    batch view and the stream view alike."""
    # The materialized events run past every read instant; online, the newest tile holds all
    # that arrived, so the stream view's 5-minute tiles are read at their boundaries (where no
    # later event shares the tile), the batch view's 1-second tiles at any whole second.
    step = 300 if view == "driver_trips" else 1
    for offset in sorted(offsets):
        at = FIRST_READ + timedelta(seconds=offset // step * step)
        online, offline = online_and_offline(materialized, view, at)
        assert_same(online, offline, VIEWS[view])


def test_batch_view_reads_exact_windows(materialized: FeatureStore) -> None:
    """1-second tiles: the batch view's sum is exactly over (t - 1h, t] (brute force over the
    file), where the stream view's 5-minute tiles reach back to the tile boundary."""
    at = START + timedelta(days=2, seconds=7)
    online, _ = online_and_offline(materialized, "batch_trips", at)
    trips = pq.read_table(materialized.repo_path / "data" / "trips.parquet").to_pandas()
    window = trips[(trips.ts > at - timedelta(hours=1)) & (trips.ts <= at)]
    for driver, got in zip([1, 2, 3, 4, 5], online.sum_trips_3600s.tolist(), strict=True):
        rows = window[window.driver_id == driver].trips.dropna()
        assert (None if rows.empty else int(rows.sum())) == (None if pd.isna(got) else got)
    assert online.count_trips_600s.notna().all()


def test_write_to_online_store_fills_the_batch_views_tiles(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", True, DEFINITIONS + BATCH))
    store.apply_repo()
    now = START + timedelta(days=9)
    rng = random.Random(5)
    events = pd.DataFrame(
        {
            "driver_id": [rng.randrange(1, 6) for _ in range(400)],
            "ts": [now - timedelta(seconds=rng.randrange(1, 86400)) for _ in range(400)],
            "trips": [rng.choice([None, *range(5)]) for _ in range(400)],
            "fare": [rng.randrange(100, 5000) / 100 for _ in range(400)],
            "rider": [f"r{rng.randrange(40)}" for _ in range(400)],
        }
    )
    with mock.patch("repast.online.tiles.now_ns", return_value=int(now.timestamp()) * S):
        # Out of order, in two writes: both count by event time.
        store.write_to_online_store("batch_trips", events.iloc[200:])
        store.write_to_online_store("batch_trips", events.iloc[:200])
    store.write_to_offline_store("batch_trips", events)
    online, offline = online_and_offline(store, "batch_trips", now)
    assert_same(online, offline, BATCH_FEATURES)
    assert online.count_trips_600s.sum() > 0
    # The server serves the same values from the same tiles.
    features = [f"batch_trips:{f}" for f in BATCH_FEATURES]

    async def main() -> dict[str, Any]:
        async with client_for(store) as client:
            body = {"features": features, "entities": {"driver_id": [1, 2, 3, 4, 5]}}
            response = await client.post("/get-online-features", json=body)
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

    with mock.patch("repast.online.tiles.now_ns", return_value=int(now.timestamp()) * S):
        got = run(main)
    assert got["metadata"]["feature_names"] == ["driver_id", *BATCH_FEATURES]
    served = pd.DataFrame(
        {n: c["values"] for n, c in zip(BATCH_FEATURES, got["results"][1:], strict=True)}
    )
    assert_same(served, offline, BATCH_FEATURES)


def test_registry_round_trip_and_apply_diff(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", True, DEFINITIONS + BATCH))
    created = store.apply_repo()
    assert ("feature_views", "batch_trips") in {
        (i.kind, i.name) for i in created.of(Transition.CREATE)
    }
    view = store.get_feature_view("batch_trips")
    assert type(view) is BatchFeatureView
    assert FromFeastPath is BatchFeatureView
    assert [f.name for f in view.features] == BATCH_FEATURES
    assert [f.dtype for f in view.features[:3]] == [Int64, Int64, Float64]
    assert [f.name for f in view.aggregation_inputs] == ["trips", "fare", "rider"]
    assert view.aggregations[6] == Aggregation(
        column="fare", function="last", time_window=timedelta(hours=1), name="last_1h"
    )
    assert view.timestamp_field == "ts"
    assert view.tile == timedelta(seconds=1)
    assert view.online is True
    assert view.to_dict() == BatchFeatureView.from_dict(view.to_dict()).to_dict()
    # Listed with the feature views, as in Feast.
    assert "batch_trips" in [v.name for v in store.list_batch_feature_views()]
    assert not store.plan_repo().has_changes
    # A changed window is an update of that one property.
    longer = (DEFINITIONS + BATCH).replace("timedelta(minutes=10)", "timedelta(minutes=20)")
    (store.repo_path / "definitions.py").write_text(longer.replace("ONLINE", "True"))
    (update,) = store.plan_repo().of(Transition.UPDATE)
    assert update.name == "batch_trips"
    paths = {c.path for c in update.changes}
    assert "aggregations" in paths
    assert "features" in paths
    store.apply_repo()
    assert "count_trips_1200s" in [f.name for f in store.get_feature_view("batch_trips").features]


def test_feature_view_takes_no_aggregations_as_in_feast() -> None:
    source = FileSource(name="s", path="x.parquet", timestamp_field="ts")
    agg = Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))
    with pytest.raises(TypeError, match="aggregations"):
        FeatureView(name="v", source=source, aggregations=[agg])  # type: ignore[call-arg]


BAD = [
    (
        'column="trips", function="sum", time_window=timedelta(hours=1)',
        'column="nope", function="sum", time_window=timedelta(hours=1)',
        "BatchFeatureView 'batch_trips': aggregation 'sum_nope_3600s': column 'nope' must be "
        "declared in the view's schema",
    ),
    (
        'column="trips", function="sum", time_window=timedelta(hours=1)',
        'column="rider", function="sum", time_window=timedelta(hours=1)',
        "aggregation 'sum_rider_3600s': sum needs an integer or float column; 'rider' is String",
    ),
    (
        'column="trips", function="sum", time_window=timedelta(hours=1)',
        'column="trips", function="sum", time_window=None',
        "BatchFeatureView 'batch_trips': aggregation 'sum_trips': time_window is required",
    ),
    (
        "    online=True,\n)",
        "    online=True,\n    udf=lambda df: df,\n)",
        "BatchFeatureView 'batch_trips': transformations .* are not supported",
    ),
    (
        "    online=True,\n)",
        '    online=True,\n    batch_engine={"type": "spark"},\n)',
        "BatchFeatureView 'batch_trips': a per-view batch_engine is not supported",
    ),
    (
        "    source=trips_source,\n    schema",
        "    source=trips_push,\n    schema",
        "BatchFeatureView 'batch_trips': source must be a batch source .* got PushSource "
        "'trips_push'; use a StreamFeatureView",
    ),
    (
        "    source=trips_source,\n    schema",
        '    source=FileSource(name="no_ts", path="data/trips.parquet"),\n    schema',
        "BatchFeatureView 'batch_trips': batch source 'no_ts' needs a timestamp_field",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_bad_batch_views_are_refused_at_apply(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in BATCH
    definitions = DEFINITIONS + BATCH.replace(old, new)
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", True, definitions))
    with pytest.raises(RepoValidationError, match=message):
        store.apply_repo()
    # Nothing was registered.
    assert store.list_feature_views() == []


@settings(max_examples=20, deadline=None)
@given(window=st.integers(-3600, 0), function=st.sampled_from(["sum", "mean", "max"]))
def test_non_positive_windows_are_refused(window: int, function: str) -> None:
    source = FileSource(name="s", path="x.parquet", timestamp_field="ts")
    schema = [Field(name="v", dtype=Float64)]
    if window < 0:
        # Refused by Aggregation itself.
        with pytest.raises(RepoValidationError, match="time_window must not be negative"):
            Aggregation(column="v", function=function, time_window=timedelta(seconds=window))
        return
    agg = Aggregation(column="v", function=function, time_window=timedelta(seconds=window))
    message = f"BatchFeatureView 'v': aggregation '{function}_v': time_window is required"
    with pytest.raises(RepoValidationError, match=message):
        BatchFeatureView(name="v", source=source, schema=schema, aggregations=[agg])
