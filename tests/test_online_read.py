"""get_online_features on every store: response shape, statuses, projections, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from golden_repo import build_store, run_steps
from online_stores import STORES, online_config
from repast import FeatureService, FeatureStore, FeatureView, Field
from repast.errors import FeatureViewNotFoundError
from repast.online.read import EntityError, FeatureNotFoundError
from repast.types import Float32, Int64


def _micros(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


NOON = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    redis = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    fs = build_store(tmp_path, online_config(request.param, redis))
    hourly = fs.get_feature_view("driver_hourly_stats")
    global_stats = FeatureView(
        name="global_stats",
        entities=[],
        ttl=timedelta(0),
        schema=[Field(name="avg_daily_trips", dtype=Int64)],
        source=hourly.batch_source,
    )
    origin = FeatureService(
        name="origin_service",
        features=[
            hourly[["conv_rate"]].with_name("origin").with_join_key_map({"driver_id": "origin_id"}),
            hourly[["rating"]],
        ],
    )
    fs.apply([global_stats, origin])
    run_steps(fs)
    fs.materialize(datetime(2023, 1, 1), datetime(2024, 1, 2), ["global_stats"])
    yield fs
    fs.online_store.close()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("repast.online.read.now_micros", lambda: _micros(NOON))


def test_columns_are_join_keys_then_features_in_request_order(store: FeatureStore) -> None:
    response = store.get_online_features(
        ["driver_profile:name", "driver_hourly_stats:rating", "driver_profile:nickname"],
        [{"driver_id": 1002}, {"driver_id": 1001}],
    )
    assert response.feature_names == ["driver_id", "name", "rating", "nickname"]
    assert response.to_dict() == {
        "driver_id": [1002, 1001],
        "name": ["Bob", "Ann B."],
        "rating": [3, 5],
        "nickname": ["bobby", None],
    }


def test_missing_entities_are_not_found_on_every_store(store: FeatureStore) -> None:
    response = store.get_online_features(
        ["driver_hourly_stats:rating"], {"driver_id": [1001, 4242, 1001]}
    )
    assert response.to_dict()["rating"] == [5, None, 5]
    assert response.status_names(1) == ["PRESENT", "NOT_FOUND", "PRESENT"]
    assert response.status_names(0) == ["PRESENT"] * 3
    stamps = response.to_dict(include_event_timestamps=True)["rating__ts"]
    assert stamps == [int(datetime(2024, 1, 1, 11, tzinfo=UTC).timestamp()), 0, stamps[0]]


def test_repeated_entities_each_get_their_row(store: FeatureStore) -> None:
    # Few repeats: the keys are read as given; many: read once each and fanned out.
    for ids in ([1001, 4242, 1001], [1001, 1001, 4242, 1001, 1002, 1001]):
        response = store.get_online_features(
            ["driver_hourly_stats:rating", "driver_profile:name"], {"driver_id": ids}
        )
        got = response.to_dict()
        assert got["driver_id"] == ids
        assert got["rating"] == [{1001: 5, 1002: 3}.get(i) for i in ids]
        assert got["name"] == [{1001: "Ann B.", 1002: "Bob"}.get(i) for i in ids]
        assert response.status_names(1) == ["NOT_FOUND" if i == 4242 else "PRESENT" for i in ids]


def test_ttl_is_enforced_on_read(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # driver_customer_stats has ttl 2 h; 1001/c1 was written for 10:00, 1002/c1 for 11:00.
    late = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: _micros(late))
    response = store.get_online_features(
        ["driver_customer_stats:trips_together"],
        {"driver_id": [1001, 1002, 1003], "customer_id": ["c1", "c1", "c9"]},
    )
    assert response.status_names(2) == ["OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert response.to_dict()["trips_together"] == [None, 8, None]
    # Exactly ttl old is still inside (`now - event_ts > ttl` is outside).
    edge = datetime(2024, 1, 1, 12, tzinfo=UTC)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: _micros(edge))
    again = store.get_online_features(
        ["driver_customer_stats:trips_together"], {"driver_id": [1001], "customer_id": ["c1"]}
    )
    assert again.status_names(2) == ["PRESENT"]


def test_ttl_zero_never_expires(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    far = datetime(2030, 1, 1, tzinfo=UTC)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: _micros(far))
    response = store.get_online_features(["driver_profile:name"], {"driver_id": [1001]})
    assert response.status_names(1) == ["PRESENT"]


def test_full_feature_names_and_feature_services(store: FeatureStore) -> None:
    response = store.get_online_features(
        store.get_feature_service("driver_service"), {"driver_id": [1005]}, full_feature_names=True
    )
    assert response.feature_names == [
        "driver_id",
        "driver_hourly_stats__conv_rate",
        "driver_hourly_stats__avg_daily_trips",
        "driver_profile__name",
        "driver_profile__last_login",
    ]
    assert response.to_dict()["driver_profile__name"] == ["Eve"]


def test_join_key_map_and_alias(store: FeatureStore) -> None:
    response = store.get_online_features(
        store.get_feature_service("origin_service"),
        {"origin_id": [1002], "driver_id": [1001]},
        full_feature_names=True,
    )
    assert response.to_dict() == {
        "origin_id": [1002],
        "driver_id": [1001],
        "origin__conv_rate": [pytest.approx(0.55)],
        "driver_hourly_stats__rating": [5],
    }


def test_entity_less_view(store: FeatureStore) -> None:
    response = store.get_online_features(
        ["global_stats:avg_daily_trips", "driver_hourly_stats:rating"], {"driver_id": [1001, 1002]}
    )
    # The latest source row overall (1005 at 12:30 in the materialized window).
    assert response.to_dict()["avg_daily_trips"] == [30, 30]


def test_response_formats(store: FeatureStore) -> None:
    response = store.get_online_features(
        ["driver_hourly_stats:conv_rate", "driver_profile:recent_trip_ids"],
        {"driver_id": [1001, 1003]},
    )
    table = response.to_arrow(include_event_timestamps=True)
    assert table.column_names == [
        "driver_id",
        "driver_id__ts",
        "conv_rate",
        "conv_rate__ts",
        "recent_trip_ids",
        "recent_trip_ids__ts",
    ]
    df = response.to_df()
    assert list(df["driver_id"]) == [1001, 1003]
    assert response.to_dict()["recent_trip_ids"] == [[4, 5], [-1, 9223372036854775807]]


def test_unknown_view_and_feature_name_the_closest(store: FeatureStore) -> None:
    with pytest.raises(FeatureViewNotFoundError, match="did you mean 'driver_profile'"):
        store.get_online_features(["driver_profil:name"], {"driver_id": [1]})
    with pytest.raises(FeatureNotFoundError, match="did you mean 'rating'"):
        store.get_online_features(["driver_hourly_stats:ratin"], {"driver_id": [1]})
    with pytest.raises(FeatureNotFoundError, match="view:feature"):
        store.get_online_features(["driver_hourly_stats"], {"driver_id": [1]})


def test_entity_errors(store: FeatureStore) -> None:
    with pytest.raises(EntityError, match="needs entity column 'driver_id'"):
        store.get_online_features(["driver_hourly_stats:rating"], {"drivers": [1]})
    with pytest.raises(EntityError, match="entity column 'driver_id'.* row 0 is 'x', expected an"):
        store.get_online_features(["driver_hourly_stats:rating"], {"driver_id": ["x"]})
    with pytest.raises(EntityError, match="differ in length"):
        store.get_online_features(
            ["driver_customer_stats:trips_together"],
            {"driver_id": [1, 2], "customer_id": ["c1"]},
        )


def test_on_demand_views_apply_their_udf(store: FeatureStore) -> None:
    import pandas as pd

    from repast import RequestSource
    from repast.on_demand_feature_view import on_demand_feature_view
    from repast.types import Float64

    hourly = store.get_feature_view("driver_hourly_stats")
    request = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])

    @on_demand_feature_view(
        sources=[hourly, request], schema=[Field(name="conv_plus_bonus", dtype=Float64)]
    )
    def conv_plus_bonus(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame()
        out["conv_plus_bonus"] = inputs["conv_rate"] + inputs["bonus"]
        return out

    @on_demand_feature_view(
        sources=[hourly[["avg_daily_trips"]]],
        schema=[Field(name="trips_x2", dtype=Int64)],
        mode="python",
    )
    def trips_x2(inputs: dict[str, list[int | None]]) -> dict[str, list[int | None]]:
        return {"trips_x2": [None if t is None else 2 * t for t in inputs["avg_daily_trips"]]}

    store.apply([request, conv_plus_bonus, trips_x2])
    response = store.get_online_features(
        ["conv_plus_bonus:conv_plus_bonus", "driver_hourly_stats:rating", "trips_x2:trips_x2"],
        {"driver_id": [1001, 4242], "bonus": [1.0, 2.0]},
    )
    assert response.feature_names == ["driver_id", "conv_plus_bonus", "rating", "trips_x2"]
    got = response.to_dict()
    assert got["conv_plus_bonus"] == [pytest.approx(1.2), None]
    assert got["trips_x2"] == [24, None]
    assert got["rating"] == [5, None]
    with pytest.raises(EntityError, match="needs request data 'bonus'"):
        store.get_online_features(["conv_plus_bonus:conv_plus_bonus"], {"driver_id": [1001]})


def test_float32_values_keep_their_precision(store: FeatureStore) -> None:
    response = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1001]})
    assert response.to_dict()["conv_rate"] == [0.20000000298023224]
    assert store.get_feature_view("driver_hourly_stats").features[0].dtype == Float32


async def _packed_read(fs: FeatureStore, refs: list[str], ids: list[int]) -> Any:
    try:
        return await fs.read_online_packed_async(refs, {"driver_id": ids})
    finally:
        # The asyncio connections belong to this loop: closed with it.
        close_async = getattr(fs.online_store, "close_async", None)
        if close_async is not None:
            await close_async()


@pytest.mark.parametrize("kind", STORES)
def test_entity_key_version_2_reads_the_keys_it_wrote(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    redis = request.getfixturevalue("redis_clean") if kind != "sqlite" else None
    v3 = build_store(tmp_path, online_config(kind, redis))
    v3.online_store.close()
    config = v3.config.model_copy(update={"entity_key_serialization_version": 2})
    fs = FeatureStore(config=config)
    global_stats = FeatureView(
        name="global_stats",
        entities=[],
        ttl=timedelta(0),
        schema=[Field(name="avg_daily_trips", dtype=Int64)],
        source=fs.get_feature_view("driver_hourly_stats").batch_source,
    )
    fs.apply([global_stats])
    run_steps(fs)
    fs.materialize(datetime(2023, 1, 1), datetime(2024, 1, 2), ["global_stats"])
    try:
        refs = ["driver_hourly_stats:rating", "global_stats:avg_daily_trips"]
        # One and many rows: plain keys from the lists, and keys through Arrow.
        for ids in ([1001], [1001, 1002, 4242] * 8):
            got = fs.get_online_features(refs, {"driver_id": ids}).to_dict()
            assert got["rating"] == [{1001: 5, 1002: 3}.get(i) for i in ids]
            assert got["avg_daily_trips"] == [30] * len(ids)
            packed = asyncio.run(_packed_read(fs, refs, ids))
            if kind != "redis-feast":
                assert packed is not None
                rows = packed.views[0][1]
                read = ids if len(ids) == 1 else [1001, 1002, 4242]  # repeats: read once
                assert [r is not None for r in rows] == [i != 4242 for i in read]
    finally:
        fs.online_store.close()


# Plain keys are built for packed-row reads only.
@pytest.mark.parametrize("store", ["sqlite", "redis-packed"], indirect=True)
def test_plain_keys_fall_back_to_arrow_for_values_of_other_types(store: FeatureStore) -> None:
    import numpy as np

    refs = ["driver_hourly_stats:rating"]
    plain = asyncio.run(_packed_read(store, refs, [1001, 1002]))
    assert plain.key_columns == [[1001, 1002]]
    # A numpy array is not a list: Arrow converts it, as before; the same rows are read.
    converted = asyncio.run(_packed_read(store, refs, np.array([1001, 1002])))  # type: ignore[arg-type]
    assert isinstance(converted.key_columns[0], pa.Array)
    assert converted.views[0][1] == plain.views[0][1]
    # A bool is not a plain int: the Arrow path refuses it too (it is no entity id).
    with pytest.raises(EntityError, match="row 0 is True, expected an integer"):
        asyncio.run(_packed_read(store, refs, [True]))


def test_online_ttl_feast_serves_stale_values(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `online_ttl: feast` restores Feast 0.67: a view's ttl is ignored on online reads.
    late = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: _micros(late))
    feast_like = FeatureStore(config=store.config.model_copy(update={"online_ttl": "feast"}))
    refs = ["driver_customer_stats:trips_together"]
    entities: dict[str, list[Any]] = {
        "driver_id": [1001, 1002, 1003],
        "customer_id": ["c1", "c1", "c9"],
    }
    enforced = store.get_online_features(refs, entities)
    ignored = feast_like.get_online_features(refs, entities)
    assert enforced.status_names(2) == ["OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert ignored.status_names(2) == ["PRESENT", "PRESENT", "NOT_FOUND"]
    stale = ignored.to_dict()["trips_together"]
    assert stale[0] is not None
    assert stale[1:] == enforced.to_dict()["trips_together"][1:]
    feast_like.online_store.close()


def test_lenient_entity_columns_as_feast(store: FeatureStore) -> None:
    want = store.get_online_features(["driver_profile:name"], {"driver_id": [1001, 1002]})
    # An int64 join key sent as strings that parse as integers, as Feast converts them.
    as_text = store.get_online_features(["driver_profile:name"], {"driver_id": ["1001", "1002"]})
    assert as_text.to_dict()["name"] == want.to_dict()["name"]
    # The entity's name instead of its join key (one entity has that join key).
    by_entity = store.get_online_features(["driver_profile:name"], [{"driver": 1001}])
    assert by_entity.to_dict()["name"] == want.to_dict()["name"][:1]
    # Feast's keyword is accepted; Repast keeps no view versions, so nothing is added.
    with_meta = store.get_online_features(
        ["driver_profile:name"], {"driver_id": [1001]}, include_feature_view_version_metadata=True
    )
    assert with_meta.to_dict() == {"driver_id": [1001], "name": want.to_dict()["name"][:1]}
    with pytest.raises(EntityError, match="entity column 'driver_id'.* row 0 is '10x1'"):
        store.get_online_features(["driver_profile:name"], {"driver_id": ["10x1"]})
