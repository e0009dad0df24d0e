"""Aggregated views online: events into tiles (SQLite and Redis), reads equal to the offline
kernel at the same instant (docs/aggregations.md)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import FeatureStore, PushMode, _core
from repast.online.base import OnlineView, ReadRequest
from repast.online.sqlite import SqliteOnlineStore
from repast.online.tiles import TileSpec
from server_helpers import client_for, redis_config, run, write_feature_store_yaml
from services import RedisServer
from test_aggregation_oracle import S, reference, window_start
from test_aggregation_oracle import run as run_offline
from test_aggregation_store import DEFINITIONS, FEATURES, write_repo

NOW = datetime(2024, 3, 20, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * S


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles are pruned and read as of NOW."""
    monkeypatch.setattr("repast.online.tiles.now_ns", lambda: NOW_NS)


def recent_events(n: int, seed: int) -> pd.DataFrame:
    """Events of the last two days before NOW (the repo's own file holds older ones)."""
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "driver_id": [rng.randrange(1, 6) for _ in range(n)],
            "ts": [NOW - timedelta(seconds=rng.randrange(1, 2 * 86400)) for _ in range(n)],
            "trips": [rng.choice([None, *range(5)]) for _ in range(n)],
            "fare": [rng.randrange(100, 5000) / 100 for _ in range(n)],
            "rider": [f"r{rng.randrange(40)}" for _ in range(n)],
        }
    )


def online_repo(tmp: Path, online_store: dict[str, Any] | None = None) -> FeatureStore:
    repo = write_repo(tmp / "repo", online=True, definitions=DEFINITIONS)
    if online_store is not None:
        write_feature_store_yaml(repo, "agg", online_store)
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    return store


def _sqlite(store: FeatureStore) -> SqliteOnlineStore:
    """The store's online store, which `online_repo` configures as SQLite by default."""
    online = store.context.online_store
    assert isinstance(online, SqliteOnlineStore), online
    return online


def assert_same(online: pd.DataFrame, offline: pd.DataFrame) -> None:
    for name in FEATURES:
        for got, want in zip(online[name].tolist(), offline[name].tolist(), strict=True):
            if pd.isna(want):
                assert pd.isna(got), name
            elif isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-12), name
            else:
                assert got == want, name


def online_equals_offline(store: FeatureStore) -> None:
    drivers = [1, 2, 3, 4, 5, 6]
    online = store.get_online_features(
        [f"driver_trips:{f}" for f in FEATURES], [{"driver_id": d} for d in drivers]
    ).to_df()
    entity = pd.DataFrame({"driver_id": drivers, "event_timestamp": [NOW] * len(drivers)})
    offline = store.get_historical_features(entity, [f"driver_trips:{f}" for f in FEATURES]).to_df()
    assert_same(online.iloc[:5], offline.iloc[:5])
    # Driver 6 was never written online: NOT_FOUND, every value null (offline: count 0).
    assert online.iloc[5][FEATURES].isna().all()
    assert offline.count_trips_3600s.tolist()[5] == 0


@pytest.mark.usefixtures("clock")
def test_push_online_and_offline_agree_on_sqlite(tmp_path: Path) -> None:
    store = online_repo(tmp_path)
    events = recent_events(600, seed=11)
    # Two pushes, the second one late and out of order: both count by event time.
    store.push("trips_push", events.iloc[300:], to=PushMode.ONLINE_AND_OFFLINE)
    store.push("trips_push", events.iloc[:300], to=PushMode.ONLINE_AND_OFFLINE)
    online_equals_offline(store)


@pytest.mark.usefixtures("clock")
def test_push_online_and_offline_agree_on_redis(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = online_repo(tmp_path, redis_config(redis_clean))
    events = recent_events(600, seed=12)
    store.push("trips_push", events.iloc[:200], to=PushMode.ONLINE_AND_OFFLINE)
    store.write_to_online_store("driver_trips", events.iloc[200:])
    store.write_to_offline_store("driver_trips", events.iloc[200:])
    online_equals_offline(store)


@pytest.mark.usefixtures("clock")
def test_materialization_backfills_tiles(tmp_path: Path) -> None:
    store = online_repo(tmp_path)
    store.write_to_offline_store("driver_trips", recent_events(500, seed=13))
    store.materialize(NOW - timedelta(days=10), NOW)
    online_equals_offline(store)


@pytest.mark.usefixtures("clock")
def test_server_pushes_and_serves_aggregates(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = online_repo(tmp_path, redis_config(redis_clean))
    events = recent_events(300, seed=14)
    store.push("trips_push", events.iloc[:150], to=PushMode.ONLINE_AND_OFFLINE)
    pushed = events.iloc[150:]
    df = {
        "driver_id": pushed.driver_id.tolist(),
        "ts": [t.isoformat().replace("+00:00", "Z") for t in pushed.ts],
        "trips": [None if pd.isna(v) else int(v) for v in pushed.trips],
        "fare": pushed.fare.tolist(),
        "rider": pushed.rider.tolist(),
    }
    features = [f"driver_trips:{f}" for f in FEATURES]

    async def main() -> dict[str, Any]:
        async with client_for(store) as client:
            push = {"push_source_name": "trips_push", "df": df, "to": "online_and_offline"}
            response = await client.post("/push", json=push)
            assert response.status_code == 200, response.text
            body = {"features": features, "entities": {"driver_id": [1, 2, 9]}}
            response = await client.post("/get-online-features", json=body)
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

    got = run(main)
    entity = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [NOW, NOW]})
    want = store.get_historical_features(entity, features).to_df()
    names = got["metadata"]["feature_names"]
    assert names == ["driver_id", *FEATURES]
    for name, column in zip(names[1:], got["results"][1:], strict=True):
        for g, w in zip(column["values"][:2], want[name].tolist(), strict=True):
            if pd.isna(w):
                assert g is None, name
            elif isinstance(w, float):
                assert g == pytest.approx(w, rel=1e-12), name
            else:
                assert g == w, name
        assert column["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    # Driver 9 has no events: NOT_FOUND, and null (offline its count would be 0).
    assert got["results"][3]["values"][2] is None


def test_tiles_past_the_longest_window_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("repast.online.tiles.now_ns", lambda: NOW_NS)
    monkeypatch.setattr("repast.online.tiles._pruned", {})
    store = online_repo(tmp_path)
    old = recent_events(50, seed=15)
    store.push("trips_push", old, to=PushMode.ONLINE)
    keys = _core.serialize_entity_keys(["driver_id"], [pa.array([1, 2])], [4], 3).to_pylist()
    view = OnlineView.of(store.get_stream_feature_view("driver_trips"))
    (before,) = _sqlite(store).read_packed([ReadRequest(view, keys, [])])
    # Three days later, one new event for driver 1: the old tiles are gone from its set, and
    # every window of every driver is empty of the old events.
    later = NOW_NS + 3 * 86400 * S
    monkeypatch.setattr("repast.online.tiles.now_ns", lambda: later)
    fresh = pd.DataFrame(
        {
            "driver_id": [1],
            "ts": [NOW + timedelta(days=3)],
            "trips": [7],
            "fare": [1.0],
            "rider": ["x"],
        }
    )
    store.push("trips_push", fresh, to=PushMode.ONLINE)
    got = store.get_online_features(
        ["driver_trips:sum_trips_86400s", "driver_trips:count_trips_3600s"],
        [{"driver_id": 1}, {"driver_id": 2}],
    ).to_dict()
    assert got["sum_trips_86400s"] == [7, None]
    # Driver 2's set was pruned (no window reaches its events): NOT_FOUND, nulls.
    assert got["count_trips_3600s"] == [1, None]
    # Driver 1's set was pruned to the new tile when written; SQLite deleted driver 2's set,
    # which no window reaches any more.
    (sets,) = _sqlite(store).read_packed([ReadRequest(view, keys, [])])
    assert sets[1] is None
    assert sets[0] is not None
    # One tile of 8 partials now, where it held one per tile of its old events.
    assert before[0] is not None
    assert before[1] is not None
    assert len(sets[0]) < len(before[0]) / 3
    # An event older than any window still read is dropped, not stored.
    stale = fresh.assign(ts=[NOW - timedelta(days=5)])
    with caplog.at_level("WARNING", logger="repast.online.tiles"):
        store.push("trips_push", stale, to=PushMode.ONLINE)
    assert "'driver_trips': 1 events older than the longest window were dropped" in caplog.text
    (after,) = _sqlite(store).read_packed([ReadRequest(view, keys, [])])
    assert after[0] == sets[0]


SPECS = [
    ("sum", "int", 30 * S),
    ("count", "other", 30 * S),
    ("max", "int", 10 * S),
    ("min", "int", 30 * S),
    ("last", "int", 20 * S),
    ("mean", "int", 30 * S),
    ("var", "float", 30 * S),
    ("count_distinct", "other", 30 * S),
]
# `last` of strings and bytes is kept online too.
STRING_SPECS = [("last", "text", 20 * S), ("last", "binary", 30 * S)]
# Each spec's input: the event's integer, or a string / bytes made from it.
_AS: dict[str, Any] = {
    "text": lambda v: None if v is None else f"é{v}",
    "binary": lambda v: None if v is None else str(v).encode() + b"\xff",
}
_ARROW = {"text": pa.string(), "binary": pa.binary()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(0, 120), st.one_of(st.none(), st.integers(-50, 50))
        ),
        max_size=40,
    ),
    splits=st.lists(st.integers(0, 40), max_size=3),
    instants=st.lists(st.integers(6, 16), min_size=1, max_size=4),
    tile=st.sampled_from([1, 5, 10]),
)
def test_online_tiles_equal_offline_at_random_instants(
    events: list[tuple[int, int, int | None]],
    splits: list[int],
    instants: list[int],
    tile: int,
) -> None:
    """Events written in batches in any order; reads at tile boundaries equal the offline
    kernel (and the brute-force reference) at the same instant."""
    specs = SPECS + STRING_SPECS
    spec = TileSpec("v", specs, ["value"] * len(specs), tile * S, "ts")
    cuts = sorted({0, len(events), *(min(c, len(events)) for c in splits)})
    batches = [events[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    random.Random(len(events)).shuffle(batches)
    times = sorted({t * tile * 10 for t in instants})
    stored: list[bytes | None] = [None] * 4
    # Events at or before the start of the longest window read at the first instant are dropped.
    horizon = window_start(min(times), 30, tile)
    for seq, batch in enumerate(batches):
        entities = pa.array([k for k, _, _ in batch], pa.int64())
        stamps = pa.array([ts * S for _, ts, _ in batch], pa.int64())
        values = pa.array([v for _, _, v in batch], pa.int64())
        columns = [
            (
                "value",
                pa.array([_AS[kind](v) for _, _, v in batch], _ARROW[kind])
                if kind in _AS
                else values,
            )
            for _, kind, _ in specs
        ]
        sets, _, dropped, late = _core.tiles_update(
            spec.specs,
            spec.tile_ns,
            stored,
            entities,
            stamps,
            columns,
            seq * 1000,
            min(times) * S,
        )
        assert dropped == sum(1 for _, ts, _ in batch if ts <= horizon)
        assert late == 0  # no watermark given
        stored = list(sets)
    ordered = [e for batch in batches for e in batch]
    for t in times:
        rows = spec.read(stored, t * S)
        _, decoded = _core.decode_packed_rows(
            pa.array(rows, pa.binary()),
            [4, 4, 4, 4, 4, 5, 5, 4, 2, 1],
            list(range(len(specs))),
        )
        for (function, kind, window), column in zip(specs, decoded, strict=True):
            kept = [(k, ts, v) for k, ts, v in ordered if ts > horizon]
            want = [reference(kept, k, t, function, window // S, tile, True) for k in range(4)]
            got = column.to_pylist()
            if function == "last":
                # Ties at one event time go to the later arrival (docs/aggregations.md).
                want = [_last(kept, k, t, window // S, tile) for k in range(4)]
            as_input = _AS.get(kind, lambda v: v)
            want = [as_input(w) for w in want] if kind in _AS else want
            # The offline kernel over the same events (the source in arrival order), as of t.
            arrow = _ARROW.get(kind, pa.float64() if function == "var" else pa.int64())
            (offline,) = run_offline(
                [(k, ts, as_input(v)) for k, ts, v in kept],
                [(k, t) for k in range(4)],
                [(function, window // S)],
                tile,
                arrow,
            )
            for key, (g, w, o) in enumerate(zip(got, want, offline, strict=True)):
                if not any(k == key for k, _, _ in kept):
                    # Never written (or only with events past every window): not found.
                    assert g is None
                elif isinstance(w, float):
                    assert g == pytest.approx(w, rel=1e-9, abs=1e-9), function
                    assert g == pytest.approx(o, rel=1e-9, abs=1e-9), function
                else:
                    assert g == w, (function, t)
                    assert g == o, (function, t)


def _last(
    events: list[tuple[int, int, int | None]], key: int, t: int, window: int, tile: int
) -> int | None:
    start = ((t - window) // tile) * tile
    chosen = [
        (ts, i, v)
        for i, (k, ts, v) in enumerate(events)
        if k == key and start < ts <= t and v is not None
    ]
    return max(chosen)[2] if chosen else None


def test_repast_stream_fills_tiles_from_kafka(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str
) -> None:
    import asyncio
    import time

    from repast import Aggregation, StreamFeatureView
    from repast.stream import StreamRunner
    from stream_helpers import (
        FAST_BACKOFF,
        eventually,
        fresh_metrics,
        produce,
        stream_store,
        unique,
    )

    topic = unique("agg")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    live = store.get_stream_feature_view("driver_live")
    assert live.stream_source is not None
    view = StreamFeatureView(
        name="driver_agg",
        entities=live.entities,
        source=live.stream_source,
        schema=[*live.entity_columns, *live.features],
        aggregations=[
            Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)),
            Aggregation(column="conv_rate", function="max", time_window=timedelta(hours=1)),
        ],
        timestamp_field="event_timestamp",
    )
    store.apply([view])
    runner = StreamRunner(
        store.context, ["driver_agg"], group_id=unique("g"), from_beginning=True,
        metrics=fresh_metrics(), backoff=FAST_BACKOFF,
    )  # fmt: skip
    now = time.time()
    # Out of order; the last one is older than the hour.
    events = [(1, 3, 0.5, 60), (1, 4, 0.25, 600), (2, 5, 0.75, 30), (1, 100, 9.0, 7200)]

    async def main() -> None:
        await produce(
            kafka_broker,
            topic,
            [
                {"driver_id": d, "event_timestamp": now - ago, "trips": t, "conv_rate": c}
                for d, t, c, ago in events
            ],
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))

        def served() -> bool:
            got = store.get_online_features(
                ["driver_agg:sum_trips_3600s", "driver_agg:max_conv_rate_3600s"],
                {"driver_id": [1, 2]},
            ).to_dict()
            return bool(
                got["sum_trips_3600s"] == [7, 5] and got["max_conv_rate_3600s"] == [0.5, 0.75]
            )

        await eventually(served, "the aggregates")
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    store.online_store.close()


@pytest.mark.usefixtures("clock")
def test_concurrent_writers_lose_no_event_on_redis(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import redis

    store = online_repo(tmp_path, redis_config(redis_clean))
    batches = [recent_events(40, seed=100 + i).assign(driver_id=1) for i in range(6)]
    # The compare-and-set script is loaded on first use; a flush makes the next write reload it.
    store.write_to_online_store("driver_trips", batches[0])
    redis.Redis.from_url(redis_clean.url).script_flush()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: store.write_to_online_store("driver_trips", b), batches[1:]))
    assert_every_event_counted(store, batches, driver=1)


def assert_every_event_counted(
    store: FeatureStore, batches: list[pd.DataFrame], driver: int
) -> None:
    """The driver's hourly count and daily sum online are those of every event in `batches`."""
    got = store.get_online_features(
        ["driver_trips:count_trips_3600s", "driver_trips:sum_trips_86400s"],
        {"driver_id": [driver]},
    ).to_dict()
    events = pd.concat(batches)
    hour = events[events.ts > NOW - timedelta(hours=1)]
    day = events[events.ts > NOW - timedelta(days=1)]
    assert got["count_trips_3600s"] == [int(hour.trips.notna().sum())]
    assert got["sum_trips_86400s"] == [int(day.trips.sum())]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return online_repo(tmp_path_factory.mktemp("bad"))


@settings(max_examples=25, deadline=None)
@given(trips=st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x % 1 != 0))
def test_bad_event_values_are_refused_before_any_write(
    sqlite_store: FeatureStore, trips: float
) -> None:
    from repast.errors import RepastError

    rows = recent_events(2, seed=1).assign(trips=[trips, 1.0])
    with pytest.raises(RepastError, match=r"column 'trips' \(double\)"):
        sqlite_store.write_to_online_store("driver_trips", rows)
    text = rows.assign(ts=["yesterday", "today"])
    with pytest.raises(RepastError, match="column 'ts' is (large_)?string, not a timestamp"):
        sqlite_store.write_to_online_store("driver_trips", text)
    got = sqlite_store.get_online_features(
        ["driver_trips:count_trips_3600s"], {"driver_id": [1, 2, 3, 4, 5]}
    ).to_dict()
    assert got["count_trips_3600s"] == [None] * 5


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=6),
    cut=st.integers(0, 400),
    flip=st.integers(0, 400),
    noise=st.binary(max_size=64),
)
def test_damaged_string_tiles_are_refused_not_served(
    values: list[str | None], cut: int, flip: int, noise: bytes
) -> None:
    """Stored tiles of a `last` of strings that were cut short, had a byte changed or are
    arbitrary bytes either decode to a well-formed row or raise a DecodeError naming the
    entity; never another error, never a crash."""
    specs = [("last", "text", 30 * S), ("last", "binary", 30 * S)]
    n = len(values)
    (good,), _, _, _ = _core.tiles_update(
        specs,
        10 * S,
        [None],
        pa.array([0] * n, pa.int64()),
        pa.array([(i + 1) * S for i in range(n)], pa.int64()),
        [
            ("s", pa.array(values, pa.string())),
            ("b", pa.array([None if v is None else v.encode() for v in values], pa.binary())),
        ],
        0,
        10 * S,
    )
    # Read back whole: the last non-null value of each column.
    present = [v for v in values if v is not None]
    (row,) = _core.tiles_read(specs, 10 * S, [good], 20 * S)
    _, columns = _core.decode_packed_rows(pa.array([row], pa.binary()), [2, 1], [0, 1])
    want = present[-1] if present else None
    assert columns[0].to_pylist() == [want]
    assert columns[1].to_pylist() == [None if want is None else want.encode()]
    damaged = bytearray(good[: cut % (len(good) + 1)])
    if damaged:
        damaged[flip % len(damaged)] ^= 0xFF
    for stored in (bytes(damaged), noise):
        try:
            (read,) = _core.tiles_read(specs, 10 * S, [stored], 20 * S)
        except _core.DecodeError as exc:
            message = str(exc)
        else:
            message = ""
        if message:
            assert "entity 0's stored tiles are unreadable" in message
            continue
        # What still decodes is a row the packed-row readers take (strings still UTF-8), or
        # nothing (a set whose newest-event field reads as "no event").
        if read is not None:
            _core.decode_packed_rows(pa.array([read], pa.binary()), [2, 1], [0, 1])
