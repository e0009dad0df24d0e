"""write_to_online_store and push on every store: newer event time wins (also within a batch),
partial writes, required columns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from golden_repo import add_push_view, build_store
from online_stores import STORES, online_config
from repast import FeatureStore
from repast.data_source import PushMode
from repast.errors import DataSourceNotFoundError, MissingColumnError, RepastError

T = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    redis = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    fs = build_store(tmp_path, online_config(request.param, redis))
    add_push_view(fs)
    yield fs
    fs.online_store.close()


def rows(*items: tuple[int, datetime, float, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [i[0] for i in items],
            "event_timestamp": [i[1] for i in items],
            "created": [i[1] for i in items],
            "conv_rate": pd.Series([i[2] for i in items], dtype="float32"),
            "rating": pd.Series([i[3] for i in items], dtype="int32"),
        }
    )


def read(store: FeatureStore, view: str = "hourly_fresh", ids: Any = (1, 2, 3)) -> dict[str, Any]:
    response = store.get_online_features(
        [f"{view}:conv_rate", f"{view}:rating"], {"driver_id": list(ids)}
    )
    out = response.to_dict(include_event_timestamps=True)
    return {"rating": out["rating"], "ts": out["rating__ts"]}


def test_newer_wins_and_older_or_equal_never_overwrite(store: FeatureStore) -> None:
    store.write_to_online_store("hourly_fresh", rows((1, T, 0.1, 1), (2, T, 0.2, 2)))
    store.write_to_online_store(
        "hourly_fresh",
        rows(
            (1, T, 0.9, 9),  # equal: skipped
            (2, T - timedelta(seconds=1), 0.9, 9),  # older: skipped
            (3, T, 0.3, 3),  # new key
        ),
    )
    assert read(store)["rating"] == [1, 2, 3]
    store.write_to_online_store("hourly_fresh", rows((1, T + timedelta(microseconds=1), 0.5, 5)))
    assert read(store)["rating"] == [5, 2, 3]


def test_within_one_batch_the_newest_wins_and_the_first_of_equals(store: FeatureStore) -> None:
    store.write_to_online_store(
        "hourly_fresh",
        rows(
            (1, T + timedelta(hours=1), 0.1, 10),
            (1, T, 0.2, 20),  # older than the row before it: skipped
            (2, T, 0.3, 30),
            (2, T, 0.4, 40),  # equal to the row before it: skipped
            (3, T, 0.5, 50),
            (3, T + timedelta(hours=1), 0.6, 60),  # newer, later in the batch: wins
        ),
    )
    assert read(store)["rating"] == [10, 30, 60]


def test_partial_write_updates_only_the_given_features(store: FeatureStore) -> None:
    store.write_to_online_store("hourly_fresh", rows((1, T, 0.1, 1), (2, T, 0.2, 2)))
    later = T + timedelta(minutes=1)
    partial = pa.table(
        {
            "driver_id": pa.array([1, 2, 3], pa.int64()),
            "event_timestamp": pa.array([later, T, later], pa.timestamp("us", tz="UTC")),
            "created": pa.array([later, T, later], pa.timestamp("us", tz="UTC")),
            "rating": pa.array([7, 8, 9], pa.int32()),
        }
    )
    store.write_to_online_store("hourly_fresh", partial)
    response = store.get_online_features(
        ["hourly_fresh:conv_rate", "hourly_fresh:rating"], {"driver_id": [1, 2, 3]}
    ).to_dict()
    assert response["rating"] == [7, 2, 9]  # 2: equal event time, skipped
    assert response["conv_rate"] == [pytest.approx(0.1), pytest.approx(0.2), None]


def test_push_writes_every_view_of_the_push_source(store: FeatureStore) -> None:
    store.push("hourly_push", rows((1, T, 0.1, 4)))
    assert read(store, ids=[1])["rating"] == [4]
    # The golden repo's batch source is one Parquet file: an offline push appends to it
    # (tests/test_offline_write.py covers offline pushes and concurrent appends).
    source = store.get_feature_view("hourly_fresh").batch_source
    path = store.config.resolve_location(source.path)  # type: ignore[attr-defined]
    before = pq.read_table(path)
    store.push("hourly_push", before.slice(0, 1), to=PushMode.OFFLINE)
    after = pq.read_table(path)
    assert after.num_rows == before.num_rows + 1
    assert after.slice(before.num_rows).equals(before.slice(0, 1))
    assert read(store, ids=[1])["rating"] == [4]  # offline only: online unchanged
    with pytest.raises(DataSourceNotFoundError, match="hourly_push"):
        store.push("hourly_pus", rows((1, T, 0.1, 4)))


def test_a_push_writes_online_to_views_with_online_false_as_feast_does(
    store: FeatureStore,
) -> None:
    # Feast 0.67's push writes online to every view of the push source, `online` or not, and
    # serves them (its `online` flag only selects what `materialize` loads; checked by running
    # Feast 0.67's FeatureStore.push on SQLite): so does Repast.
    from repast import FeatureView

    fresh = store.get_feature_view("hourly_fresh")
    offline_only = FeatureView(
        name="hourly_offline",
        entities=[store.get_entity("driver")],
        ttl=timedelta(0),
        schema=[*fresh.entity_columns, *fresh.features],
        source=store.get_data_source("hourly_push"),
        online=False,
    )
    store.apply([offline_only])
    store.push("hourly_push", rows((1, T, 0.1, 4), (2, T, 0.2, 5)))
    assert read(store, "hourly_offline", ids=[1, 2, 3])["rating"] == [4, 5, None]
    assert read(store, ids=[1, 2, 3])["rating"] == [4, 5, None]


def test_a_push_one_target_refuses_is_written_to_none(store: FeatureStore) -> None:
    from repast import FeatureView, Field
    from repast.types import Int64

    # A second view on the same push source whose only feature the rows do not carry.
    trips = FeatureView(
        name="trips_fresh",
        entities=[store.get_entity("driver")],
        ttl=timedelta(0),
        schema=[Field(name="avg_daily_trips", dtype=Int64)],
        source=store.get_data_source("hourly_push"),
    )
    store.apply([trips])
    with pytest.raises(MissingColumnError, match="'trips_fresh' has no column 'avg_daily_trips'"):
        store.push("hourly_push", rows((1, T, 0.1, 4)))
    assert read(store, ids=[1])["rating"] == [None]  # the view that fit got nothing either


def test_missing_columns_are_named(store: FeatureStore) -> None:
    df = rows((1, T, 0.1, 1))
    with pytest.raises(MissingColumnError, match="no column 'driver_id'"):
        store.write_to_online_store("hourly_fresh", df.drop(columns=["driver_id"]))
    with pytest.raises(MissingColumnError, match="no column 'event_timestamp'"):
        store.write_to_online_store("hourly_fresh", df.drop(columns=["event_timestamp"]))
    with pytest.raises(MissingColumnError, match="no column 'created'"):
        store.write_to_online_store("hourly_fresh", df.drop(columns=["created"]))
    with pytest.raises(MissingColumnError, match="no column 'conv_rate'"):
        store.write_to_online_store("hourly_fresh", df.drop(columns=["conv_rate", "rating"]))


def test_wrong_types_are_named(store: FeatureStore) -> None:
    df = rows((1, T, 0.1, 1))
    df["driver_id"] = ["one"]
    with pytest.raises(RepastError, match="driver_id"):
        store.write_to_online_store("hourly_fresh", df)


def test_naive_timestamps_are_utc(store: FeatureStore) -> None:
    df = rows((1, T, 0.1, 1))
    df["event_timestamp"] = [T.replace(tzinfo=None)]
    store.write_to_online_store("hourly_fresh", df)
    assert read(store, ids=[1])["ts"] == [int(T.timestamp())]


def test_unknown_view(store: FeatureStore) -> None:
    with pytest.raises(RepastError, match="did you mean 'hourly_fresh'"):
        store.write_to_online_store("hourly_frsh", rows((1, T, 0.1, 1)))


def test_rows_whose_features_are_all_null_are_skipped(
    store: FeatureStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.write_to_online_store("hourly_fresh", rows((1, T, 0.1, 1)))
    empty = rows((1, T + timedelta(hours=1), 0.0, 0))
    empty["conv_rate"] = pd.Series([None], dtype="float32")
    empty["rating"] = pd.Series([None], dtype="Int32")
    store.write_to_online_store("hourly_fresh", empty)
    assert read(store, ids=[1])["rating"] == [1]
    assert "every feature is null" in caplog.text


def test_write_plan_is_built_once_per_view_object(store: FeatureStore) -> None:
    from repast.online.write import write_plan

    view = store.get_feature_view("hourly_fresh")
    plan = write_plan(view)
    assert write_plan(view) is plan
    assert plan.online.features == ("conv_rate", "rating")
    assert plan.numeric_sources == {"conv_rate": pa.float32(), "rating": pa.int32()}
    assert "event_timestamp" in plan.timestamp_sources
    # Another object (a newer registry version) gets its own plan.
    again = store.get_feature_view("hourly_fresh")
    assert write_plan(again) is not plan
    assert write_plan(again).view is again


@pytest.mark.parametrize("order", ["newer_wins", "feast"])
def test_online_write_order_switch_on_sqlite(tmp_path: Path, order: str) -> None:
    # `online_write_order: feast` restores Feast's SQLite store: whatever is written last
    # stays (an older event time included; within a batch, the last row of a key).
    fs = build_store(tmp_path, {"type": "sqlite", "path": "data/online.db"})
    fs = FeatureStore(config=fs.config.model_copy(update={"online_write_order": order}))
    add_push_view(fs)
    earlier = T - timedelta(hours=1)
    fs.push("hourly_push", rows((1, T, 0.1, 4)))
    fs.push("hourly_push", rows((1, earlier, 0.2, 5)))
    fs.push("hourly_push", rows((2, T, 0.3, 6), (2, earlier, 0.4, 7)))
    got = read(fs, ids=[1, 2])["rating"]
    assert got == ([4, 6] if order == "newer_wins" else [5, 7])
    fs.online_store.close()


def test_a_unix_timestamp_feature_given_as_a_number_is_epoch_seconds(store: FeatureStore) -> None:
    # As Feast reads it (its Value holds seconds); an Arrow cast alone took it as microseconds.
    rows = {"driver_id": [7, 8], "event_timestamp": [T, T], "last_login": [1685608200, None]}
    store.write_to_online_store("driver_profile", rows)
    got = store.get_online_features(["driver_profile:last_login"], {"driver_id": [7, 8]})
    assert got.to_dict()["last_login"] == [datetime(2023, 6, 1, 8, 30, tzinfo=UTC), None]
    too_far = {"driver_id": [9], "event_timestamp": [T], "last_login": [2**62]}
    with pytest.raises(RepastError, match="column 'last_login'.*epoch seconds"):
        store.write_to_online_store("driver_profile", too_far)


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        # Feast 0.67 (pandas) takes an integer event time as nanoseconds: epoch seconds land
        # in January 1970, as they do in Feast's store (observed through its push and /push).
        (1_893_456_000_000_000_000, datetime(2030, 1, 1, tzinfo=UTC)),
        (1_893_456_000, datetime(1970, 1, 1, 0, 0, 1, 893456, tzinfo=UTC)),
        (-86_400_000_000_000, datetime(1969, 12, 31, tzinfo=UTC)),
    ],
)
def test_integer_event_times_are_epoch_nanoseconds_as_feast_reads_them(
    store: FeatureStore, nanos: int, expected: datetime
) -> None:
    df = rows((1, T, 0.5, 3))
    df["event_timestamp"] = df["created"] = [nanos]
    store.write_to_online_store("hourly_fresh", df)
    got = store.get_online_features(["hourly_fresh:rating"], {"driver_id": [1]})
    assert got.to_dict()["rating"] == [3]
    assert got.timestamps(1).to_pylist() == [expected]
