"""materialize / materialize_incremental: Feast's semantics (docs/feast-compatibility.md §8),
bounded memory, a failure half-way that records nothing and a rerun that completes, and the
CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from golden_repo import build_store
from online_stores import STORES, online_config
from repast import Entity, FeatureStore, FeatureView, Field, FileSource, latest, materialize
from repast.cli import cli
from repast.config import RepoConfig
from repast.errors import FeatureViewNotFoundError
from repast.materialize import MaterializationCancelled, MaterializationError, scan_latest
from repast.online import WriteBatch
from repast.online.redis import RedisOnlineStore
from repast.types import Float64, Int64
from services import RedisServer

H = datetime(2024, 1, 1, tzinfo=UTC)


def hours(n: float) -> datetime:
    return H + timedelta(hours=n)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reads judge ttl at 14:00 on the data's day, when every golden row is within its ttl.
    monkeypatch.setattr("repast.online.read.now_micros", lambda: int(hours(14).timestamp() * 1e6))


def intervals(store: FeatureStore, view: str) -> list[list[str]]:
    record = store.registry.snapshot(allow_cache=False).record(store.project, "feature_views", view)
    assert record is not None
    return list(record.meta.get("materialization_intervals", []))


@pytest.fixture(params=STORES)
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    redis = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    store = build_store(tmp_path, online_config(request.param, redis))
    yield store
    store.online_store.close()


def rating(store: FeatureStore, *ids: int) -> list[Any]:
    return store.get_online_features(
        ["driver_hourly_stats:rating"], {"driver_id": list(ids)}
    ).to_dict()["rating"]


def test_window_is_inclusive_and_latest_wins_by_event_then_created(golden: FeatureStore) -> None:
    # 1001 has two rows at 11:00; the one created at 11:05 (rating 5) beats 11:01 (rating 3).
    # 1002's 12:00 row sits exactly on the end; 1004's 23:00 (previous day) row is before start.
    golden.materialize(hours(0), hours(12), ["driver_hourly_stats"])
    assert rating(golden, 1001, 1002, 1004, 1005) == [5, 3, None, None]
    conv = golden.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1004]})
    assert conv.to_dict()["conv_rate"] == [pytest.approx(0.75)]
    golden.materialize(hours(12.5), hours(12.5), ["driver_hourly_stats"])  # start == end
    assert rating(golden, 1005) == [4]


def test_ttl_is_not_applied_while_materializing(golden: FeatureStore) -> None:
    # driver_hourly_stats has ttl 1 day; a window of 3 days still loads the oldest row.
    golden.materialize(hours(-48), hours(0), ["driver_hourly_stats"])
    assert rating(golden, 1004) == [1]


def test_intervals_are_recorded_as_feast_records_them(
    golden: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden.materialize(hours(0), hours(11.5), ["driver_hourly_stats"])
    golden.materialize(hours(0), hours(13), ["driver_hourly_stats"])
    golden.materialize_incremental(hours(14), ["driver_hourly_stats"])
    assert intervals(golden, "driver_hourly_stats") == [
        ["2024-01-01T00:00:00Z", "2024-01-01T11:30:00Z"],
        ["2024-01-01T00:00:00Z", "2024-01-01T13:00:00Z"],
        ["2024-01-01T13:00:00Z", "2024-01-01T14:00:00Z"],
    ]
    assert intervals(golden, "driver_profile") == []


def test_first_incremental_start_is_now_minus_ttl_or_52_weeks(golden: FeatureStore) -> None:
    before = datetime.now(UTC)
    golden.materialize_incremental(before + timedelta(hours=1))
    hourly = intervals(golden, "driver_hourly_stats")[0][0]
    profile = intervals(golden, "driver_profile")[0][0]
    start = datetime.fromisoformat(hourly.replace("Z", "+00:00"))
    assert abs(start - (before - timedelta(days=1))) < timedelta(minutes=1)
    start = datetime.fromisoformat(profile.replace("Z", "+00:00"))
    assert abs(start - (before - timedelta(weeks=52))) < timedelta(minutes=1)


def test_naive_times_are_utc_and_start_after_end_fails(golden: FeatureStore) -> None:
    golden.materialize(datetime(2024, 1, 1), datetime(2024, 1, 1, 12), ["driver_profile"])
    assert intervals(golden, "driver_profile") == [["2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z"]]
    with pytest.raises(ValueError, match="must be before"):
        golden.materialize(hours(2), hours(1))
    with pytest.raises(FeatureViewNotFoundError, match="did you mean 'driver_profile'"):
        golden.materialize(hours(0), hours(1), ["driver_profil"])


def test_views_selected_by_default_are_online_and_enabled(golden: FeatureStore) -> None:
    hourly = golden.get_feature_view("driver_hourly_stats")
    offline_only = FeatureView(
        name="offline_only",
        entities=[golden.get_entity("driver")],
        schema=[Field(name="rating", dtype=hourly.features[3].dtype)],
        source=hourly.batch_source,
        online=False,
    )
    golden.apply(offline_only)
    golden.materialize(hours(0), hours(13))
    assert intervals(golden, "offline_only") == []
    assert len(intervals(golden, "driver_customer_stats")) == 1


# -- a failure half-way, then a rerun -------------------------------------------------------


def test_redis_killed_half_way_records_nothing_and_a_rerun_completes(
    tmp_path: Path, redis_clean: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build_store(tmp_path, online_config("redis-packed", redis_clean))
    monkeypatch.setattr(latest, "WRITE_BATCH_ROWS", 2)
    online = store.online_store
    assert isinstance(online, RedisOnlineStore)
    original = online._evals
    calls: list[int] = []

    def evals_then_die(view: Any, batch: WriteBatch) -> list[bytes]:
        calls.append(len(batch))
        if len(calls) == 2:
            redis_clean.stop()  # Redis goes away after the first batch was sent
        return original(view, batch)

    monkeypatch.setattr(online, "_evals", evals_then_die)
    with pytest.raises(MaterializationError) as failure:
        store.materialize(hours(0), hours(13), ["driver_hourly_stats"])
    message = str(failure.value)
    assert "driver_hourly_stats" in message
    assert "2024-01-01T00:00:00Z" in message
    assert "2024-01-01T13:00:00Z" in message
    assert intervals(store, "driver_hourly_stats") == []
    redis_clean.start()
    store.materialize(hours(0), hours(13), ["driver_hourly_stats"])
    assert len(intervals(store, "driver_hourly_stats")) == 1
    assert rating(store, 1001, 1002, 1003, 1004, 1005) == [5, 3, -1, None, 4]
    assert max(calls) <= 2


def test_a_cancelled_materialization_stops_between_batches_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server cancels jobs that outlive its shutdown grace period (`cancel`, set from the
    # event loop's thread): they stop at the next batch and the range is not recorded.
    store = build_store(tmp_path, online_config("sqlite", None))
    monkeypatch.setattr(latest, "WRITE_BATCH_ROWS", 1)
    cancel = threading.Event()
    written: list[int] = []
    original = store.online_store.write_batches

    def write_then_cancel(view: Any, batches: Any) -> int:
        def watched() -> Iterator[WriteBatch]:
            for batch in batches:
                written.append(len(batch))
                cancel.set()  # shutdown arrives while the first batch is written
                yield batch

        return original(view, watched())

    monkeypatch.setattr(store.online_store, "write_batches", write_then_cancel)
    with pytest.raises(MaterializationCancelled, match="driver_hourly_stats"):
        materialize.materialize(
            store.context,
            hours(0),
            hours(13),
            ["driver_hourly_stats"],
            progress=False,
            cancel=cancel,
        )
    assert written == [1]
    assert intervals(store, "driver_hourly_stats") == []
    materialize.materialize(
        store.context, hours(0), hours(13), ["driver_hourly_stats"], progress=False
    )
    assert len(intervals(store, "driver_hourly_stats")) == 1


# -- bounded memory, checked structurally ----------------------------------------------------


def _many_rows_store(tmp_path: Path, rows: int, keys: int) -> FeatureStore:
    data = tmp_path / "data"
    data.mkdir()
    times = [H + timedelta(seconds=i) for i in range(rows)]
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([i % keys for i in range(rows)], pa.int64()),
                "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
                "value": pa.array([float(i) for i in range(rows)], pa.float64()),
            }
        ),
        data / "many.parquet",
        row_group_size=64,
    )
    config = RepoConfig.model_validate(
        {"project": "many", "registry": str(tmp_path / "registry.json"), "repo_path": tmp_path}
    )
    store = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver_id"])
    store.apply(
        [
            driver,
            FeatureView(
                name="many",
                entities=[driver],
                schema=[Field(name="driver_id", dtype=Int64), Field(name="value", dtype=Float64)],
                source=FileSource(
                    name="many_src",
                    path=str(data / "many.parquet"),
                    timestamp_field="event_timestamp",
                ),
            ),
        ]
    )
    return store


def test_memory_follows_the_keys_not_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, keys, batch = 5000, 20, 64
    store = _many_rows_store(tmp_path, rows, keys)
    monkeypatch.setattr(latest, "READ_BATCH_ROWS", batch)
    stats: dict[str, int] = {}
    view = store.get_feature_view("many")
    table = scan_latest(store.context, view, H, H + timedelta(days=1), stats=stats)
    assert table.num_rows == keys
    # The winners table never held more than twice the keys plus two read batches.
    assert stats["max_held"] <= 2 * keys + 2 * batch
    assert sorted(table.column("value").to_pylist()) == [
        float(rows - keys + i) for i in range(keys)
    ]

    sizes: list[int] = []
    original = store.online_store.write_batch
    monkeypatch.setattr(latest, "WRITE_BATCH_ROWS", 7)

    def recording(view: Any, batch: WriteBatch) -> int:
        sizes.append(len(batch))
        return original(view, batch)

    monkeypatch.setattr(store.online_store, "write_batch", recording)
    store.materialize(H, H + timedelta(days=1))
    assert max(sizes) <= 7
    assert sum(sizes) == keys
    got = store.get_online_features(["many:value"], {"driver_id": [0, 19]}).to_dict()["value"]
    assert got == [float(rows - keys), float(rows - 1)]


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_materialize_and_get_online_features(tmp_path: Path) -> None:
    store = build_store(tmp_path, {"type": "sqlite", "path": "data/online.db"})
    (tmp_path / "feature_store.yaml").write_text(
        f"project: golden\nregistry: {tmp_path / 'registry.json'}\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
    )
    runner = CliRunner()
    args = ["-c", str(tmp_path)]
    result = runner.invoke(
        cli,
        [
            *args,
            "materialize",
            "2024-01-01T00:00:00",
            "2024-01-01T13:00:00",
            "-v",
            "driver_profile",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, [*args, "materialize-incremental", "2024-01-01T14:00:00", "-v", "driver_profile"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli,
        [
            *args,
            "get-online-features",
            "-e",
            "driver_id=1001",
            "-e",
            "driver_id=1002",
            "-f",
            "driver_profile:name",
            "-f",
            "driver_profile:avatar",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "driver_id": [1001, 1002],
        "name": ["Ann B.", "Bob"],
        "avatar": ["iVBORwA=", ""],
    }
    assert len(intervals(store, "driver_profile")) == 2
