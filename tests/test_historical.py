from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_repos import write_full_repo, write_template_repo
from repast import FeatureStore
from repast.errors import FeatureViewNotFoundError
from repast.offline import ColumnNotFoundError, FeatureNameCollisionError
from repast.online.read import FeatureNotFoundError

UTC_US = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    repo = write_template_repo(tmp_path_factory.mktemp("demo") / "proj")
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    return store


def expected_as_of(data: pd.DataFrame, driver: int, when: datetime, ttl: timedelta) -> pd.Series:
    """Brute force: the latest row at or before `when` within ttl; ties by `created`."""
    rows = data[
        (data.driver_id == driver)
        & (data.event_timestamp <= when)
        & (data.event_timestamp >= when - ttl)
    ]
    if rows.empty:
        return pd.Series(dtype=object)
    return rows.sort_values(["event_timestamp", "created"]).iloc[-1]


def test_training_frame_matches_brute_force(demo: FeatureStore) -> None:
    data = pq.read_table(demo.repo_path / "data" / "driver_stats.parquet").to_pandas()
    end = data.event_timestamp.max()
    times = [end, end - timedelta(minutes=30), end - timedelta(days=3), end + timedelta(days=2)]
    entity = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 1001, 9999],
            "event_timestamp": [times[0], times[1], times[2], times[3], times[0]],
            "label": ["a", "b", "c", "d", "e"],
        }
    )
    frame = demo.get_historical_features(
        entity,
        ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
    ).to_df()
    assert list(frame.columns) == [
        "driver_id",
        "event_timestamp",
        "label",
        "conv_rate",
        "avg_daily_trips",
    ]
    assert frame.label.tolist() == ["a", "b", "c", "d", "e"]
    for i, (_, row) in enumerate(entity.iterrows()):
        want = expected_as_of(data, row.driver_id, row.event_timestamp, timedelta(days=1))
        got = frame.iloc[i]
        if want.empty:
            assert pd.isna(got.conv_rate)
            assert pd.isna(got.avg_daily_trips)
        else:
            assert got.conv_rate == pytest.approx(want.conv_rate)
            assert got.avg_daily_trips == want.avg_daily_trips
    # A day past the last row is outside the one-day ttl; 9999 has no data.
    assert pd.isna(frame.conv_rate[3])
    assert pd.isna(frame.conv_rate[4])


def test_feature_service_with_projection_and_on_demand_view(demo: FeatureStore) -> None:
    data = pq.read_table(demo.repo_path / "data" / "driver_stats.parquet")
    when = data.column("event_timestamp").to_pylist()[-1]
    entity = pa.table(
        {
            "driver_id": [1001, 1002],
            "event_timestamp": pa.array([when, when], UTC_US),
            "val_to_add": [1, 2],
            "val_to_add_2": [10, 20],
        }
    )
    service = demo.get_feature_service("driver_activity_v1")
    table = demo.get_historical_features(entity, service, full_feature_names=True).to_arrow()
    assert table.column_names == [
        "driver_id",
        "event_timestamp",
        "val_to_add",
        "val_to_add_2",
        "driver_hourly_stats__conv_rate",
        # The on-demand view's other inputs come along, as in Feast's output.
        "driver_hourly_stats__acc_rate",
        "driver_hourly_stats__avg_daily_trips",
        "transformed_conv_rate__conv_rate_plus_val1",
        "transformed_conv_rate__conv_rate_plus_val2",
    ]
    conv = table.column("driver_hourly_stats__conv_rate").to_pylist()
    plus1 = table.column("transformed_conv_rate__conv_rate_plus_val1").to_pylist()
    plus2 = table.column("transformed_conv_rate__conv_rate_plus_val2").to_pylist()
    assert plus1 == pytest.approx([conv[0] + 1, conv[1] + 2])
    assert plus2 == pytest.approx([conv[0] + 10, conv[1] + 20])


def test_entity_frame_from_parquet_and_int_with_nulls(demo: FeatureStore, tmp_path: Path) -> None:
    when = datetime.now(UTC)
    path = tmp_path / "entities.parquet"
    pq.write_table(
        pa.table({"driver_id": [1001, 424242], "ts": pa.array([when, when], UTC_US)}), path
    )
    table = demo.get_historical_features(
        str(path), ["driver_hourly_stats:avg_daily_trips"]
    ).to_arrow()
    # The timestamp column is inferred (the only one); the int feature stays an int column.
    assert table.schema.field("avg_daily_trips").type == pa.int64()
    assert table.column("avg_daily_trips").null_count >= 1


def test_name_collision_and_unknown_names(demo: FeatureStore) -> None:
    entity = pd.DataFrame(
        {"driver_id": [1001], "event_timestamp": [pd.Timestamp("2024-01-01", tz="UTC")]}
    )
    refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats_fresh:conv_rate"]
    with pytest.raises(FeatureNameCollisionError, match="full_feature_names=True"):
        demo.get_historical_features(entity, refs)
    frame = demo.get_historical_features(entity, refs, full_feature_names=True).to_df()
    assert list(frame.columns)[-2:] == [
        "driver_hourly_stats__conv_rate",
        "driver_hourly_stats_fresh__conv_rate",
    ]
    with pytest.raises(
        FeatureNotFoundError, match="no feature 'conv_rat'; did you mean 'conv_rate'"
    ):
        demo.get_historical_features(entity, ["driver_hourly_stats:conv_rat"])
    with pytest.raises(FeatureViewNotFoundError, match="view 'driver_hourly' does not exist"):
        demo.get_historical_features(entity, ["driver_hourly:conv_rate"])
    with pytest.raises(ColumnNotFoundError, match="driver_id"):
        demo.get_historical_features(
            entity.rename(columns={"driver_id": "id"}), ["driver_hourly_stats:conv_rate"]
        ).to_arrow()


def test_join_key_map_and_field_mapping(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_full_repo(tmp_path))
    store.apply_repo()
    when = datetime(2024, 1, 2, 1, tzinfo=UTC)
    entity = pa.table(
        {
            "origin_id": [1002, 1001],
            "customer_id": ["c2", "nobody"],
            "event_timestamp": pa.array([when, when], UTC_US),
        }
    )
    aliased = store.get_historical_features(
        entity, store.get_feature_service("aliased_service"), full_feature_names=True
    ).to_arrow()
    assert aliased.column("origin__conv_rate").to_pylist() == [0.25, 0.5]
    assert aliased.column("origin__trips").to_pylist() == [4, 3]
    # customer_profile maps the source column `cust` to the join key `customer_id`.
    profile = store.get_historical_features(
        entity, ["customer_profile:age", "customer_profile:score"]
    ).to_arrow()
    assert profile.column("age").to_pylist() == [40, None]
    assert profile.column("score").to_pylist() == [0.2, None]


def test_naive_entity_times_come_back_as_utc(demo: FeatureStore) -> None:
    # Naive times are read as UTC (docs/feast-compatibility.md §7.2) and, as in Feast, the
    # output column says so.
    entity = pa.table(
        {
            "driver_id": [1001],
            "event_timestamp": pa.array([datetime(2021, 4, 12, 10)], pa.timestamp("us")),
        }
    )
    table = demo.get_historical_features(entity, ["driver_hourly_stats:conv_rate"]).to_arrow()
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("event_timestamp").to_pylist() == [datetime(2021, 4, 12, 10, tzinfo=UTC)]
