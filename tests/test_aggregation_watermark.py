"""`watermark_delay_threshold` online: an event earlier than its entity's newest stored event
minus the threshold is dropped (docs/aggregations.md, "Late and out-of-order events"), checked
against a brute-force simulation of that rule."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import _core
from repast.online.tiles import TileSpec
from services import RedisServer
from test_aggregation_online import SPECS, _last
from test_aggregation_oracle import S, reference, window_start

Event = tuple[int, int, int | None]


def simulate(
    batches: list[list[Event]], lateness: int, horizon: int
) -> tuple[list[Event], list[int], list[int]]:
    """The rule, by brute force: per batch, each entity's watermark is its newest kept event
    before the batch minus `lateness`; the events kept, and per batch the counts of events
    dropped past the horizon and as late."""
    newest: dict[int, int] = {}
    kept: list[Event] = []
    dropped: list[int] = []
    late: list[int] = []
    for batch in batches:
        marks = {k: ts - lateness for k, ts in newest.items()}
        n_dropped = n_late = 0
        for k, ts, v in batch:
            if ts <= horizon:
                n_dropped += 1
            elif k in marks and ts < marks[k]:
                n_late += 1
            else:
                kept.append((k, ts, v))
                newest[k] = max(newest.get(k, ts), ts)
        dropped.append(n_dropped)
        late.append(n_late)
    return kept, dropped, late


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(0, 120), st.one_of(st.none(), st.integers(-50, 50))
        ),
        max_size=40,
    ),
    splits=st.lists(st.integers(0, 40), max_size=4),
    instants=st.lists(st.integers(6, 16), min_size=1, max_size=3),
    tile=st.sampled_from([1, 5, 10]),
    lateness=st.integers(0, 60),
)
def test_late_events_are_dropped_as_the_rule_says(
    events: list[Event], splits: list[int], instants: list[int], tile: int, lateness: int
) -> None:
    spec = TileSpec("v", SPECS, ["value"] * len(SPECS), tile * S, "ts", lateness * S)
    cuts = sorted({0, len(events), *(min(c, len(events)) for c in splits)})
    batches = [events[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    random.Random(len(events)).shuffle(batches)
    times = sorted({t * tile * 10 for t in instants})
    horizon = window_start(min(times), 30, tile)
    kept, want_dropped, want_late = simulate(batches, lateness, horizon)
    stored: list[bytes | None] = [None] * 4
    for seq, batch in enumerate(batches):
        sets, _, dropped, late = _core.tiles_update(
            spec.specs,
            spec.tile_ns,
            stored,
            pa.array([k for k, _, _ in batch], pa.int64()),
            pa.array([ts * S for _, ts, _ in batch], pa.int64()),
            [("value", pa.array([v for _, _, v in batch], pa.int64()))] * len(SPECS),
            seq * 1000,
            min(times) * S,
            spec.lateness_ns,
        )
        assert (dropped, late) == (want_dropped[seq], want_late[seq])
        stored = list(sets)
    for t in times:
        _, columns = _core.decode_packed_rows(
            pa.array(spec.read(stored, t * S), pa.binary()),
            [4, 4, 4, 4, 4, 5, 5, 4],
            list(range(len(SPECS))),
        )
        for (function, _, window), column in zip(SPECS, columns, strict=True):
            if function == "last":
                want = [_last(kept, k, t, window // S, tile) for k in range(4)]
            else:
                want = [reference(kept, k, t, function, window // S, tile, True) for k in range(4)]
            for key, (got, w) in enumerate(zip(column.to_pylist(), want, strict=True)):
                if not any(k == key for k, _, _ in kept):
                    assert got is None
                elif isinstance(w, float):
                    assert got == pytest.approx(w, rel=1e-9, abs=1e-9), function
                else:
                    assert got == w, (function, t)


def test_an_event_exactly_at_the_watermark_counts() -> None:
    """Spark's rule: only events strictly before the watermark are late."""
    spec = TileSpec("v", [("sum", "int", 100 * S)], ["value"], S, "ts", 10 * S)
    stored: list[bytes | None] = [None]

    def write(ts: list[int], values: list[int]) -> int:
        nonlocal stored
        sets, _, _, late = _core.tiles_update(
            spec.specs,
            spec.tile_ns,
            stored,
            pa.array([0] * len(ts), pa.int64()),
            pa.array([t * S for t in ts], pa.int64()),
            [("value", pa.array(values, pa.int64()))],
            0,
            60 * S,
            spec.lateness_ns,
        )
        stored = list(sets)
        return late

    # One batch: its own events never make each other late, whatever their order.
    assert write([50, 20], [1, 2]) == 0
    # Newest stored 50, threshold 10: 40 counts, 39 is late, a newer 55 counts.
    assert write([40, 39, 55], [4, 8, 16]) == 1
    _, columns = _core.decode_packed_rows(
        pa.array(spec.read(stored, 60 * S), pa.binary()), [4], [0]
    )
    assert columns[0].to_pylist() == [1 + 2 + 4 + 16]


def test_repast_stream_drops_events_later_than_the_watermark(
    tmp_path: Path,
    redis_clean: RedisServer,
    kafka_broker: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
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

    topic = unique("wm")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    live = store.get_stream_feature_view("driver_live")
    source = live.stream_source
    assert source is not None
    source.watermark_delay_threshold = timedelta(minutes=5)  # type: ignore[attr-defined]
    view = StreamFeatureView(
        name="driver_wm",
        entities=live.entities,
        source=source,
        schema=[*live.entity_columns, *live.features],
        aggregations=[Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))],
        timestamp_field="event_timestamp",
    )
    store.apply([source, view])
    runner = StreamRunner(
        store.context, ["driver_wm"], group_id=unique("g"), from_beginning=True,
        metrics=fresh_metrics(), backoff=FAST_BACKOFF,
    )  # fmt: skip
    now = time.time()

    def message(trips: int, ago: float) -> dict[str, Any]:
        return {"driver_id": 1, "event_timestamp": now - ago, "trips": trips, "conv_rate": 0.5}

    def total() -> Any:
        got = store.get_online_features(["driver_wm:sum_trips_3600s"], {"driver_id": [1]})
        return got.to_dict()["sum_trips_3600s"][0]

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        # The newest event of driver 1 is a minute old: its watermark is 6 minutes ago.
        await produce(kafka_broker, topic, [message(1, 60), message(2, 1800)])
        await eventually(lambda: total() == 3, "the first batch")
        # 10 minutes old is late (dropped); 4 minutes old is within the threshold (counts).
        # One partition: the late event is consumed first, so 13 is the final total.
        await produce(kafka_broker, topic, [message(100, 600), message(10, 240)])
        await eventually(lambda: total() == 13, "the second batch")
        stop.set()
        await asyncio.wait_for(task, 30)

    with caplog.at_level("WARNING", logger="repast.online.tiles"):
        asyncio.run(main())
    store.online_store.close()
    assert "'driver_wm': 1 events later than the watermark" in caplog.text
