"""The offline aggregation kernel against brute force over the raw events (docs/aggregations.md).

The reference below is written from the documented definition only: a read at `t` covers
the events with `s(t) < event_ts <= t`, `s(t) = h * floor((t - W) / h)`, nulls skipped, SQL
empty-window results. Hypothesis draws events in any order (late and out-of-order), with null
keys, times and values, several windows and tiles, and views with and without entities.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast.errors import OfflineStoreError
from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.view import ViewJoin

S = 1_000_000_000
NUMERIC = ["sum", "mean", "avg", "min", "max", "var", "variance", "stddev", "std"]
ANY = ["count", "last", "count_distinct"]


def window_start(t: int, window: int, tile: int) -> int:
    return ((t - window) // tile) * tile


def reference(
    events: Sequence[tuple[int | None, int | None, Any]],
    key: int | None,
    t: int | None,
    function: str,
    window: int,
    tile: int,
    keyed: bool,
) -> Any:
    """The aggregate for one entity row, from the definition; `events` are (key, ts, value)."""
    if t is None or (keyed and key is None):
        chosen: list[tuple[int, int, Any]] = []
    else:
        start = window_start(t, window, tile)
        chosen = [
            (ts, row, v)
            for row, (k, ts, v) in enumerate(events)
            if ts is not None
            and (not keyed or (k is not None and k == key))
            and start < ts <= t
            and v is not None
        ]
    values = [v for _, _, v in chosen]
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if function == "sum":
        return sum(values)
    if function in ("mean", "avg"):
        return sum(values) / len(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    if function == "last":
        return max(chosen, key=lambda e: (e[0], e[1]))[2]
    if len(values) < 2:
        return None
    if function in ("var", "variance"):
        return statistics.variance(values)
    return statistics.stdev(values)


def run(
    events: Sequence[tuple[int | None, int | None, Any]],
    rows: Sequence[tuple[int | None, int | None]],
    aggregates: Sequence[tuple[str, int]],
    tile: int,
    value_type: pa.DataType,
    keyed: bool = True,
) -> list[list[Any]]:
    columns: dict[str, Any] = {
        "ts": pa.array([None if ts is None else ts * S for _, ts, _ in events], pa.int64()).cast(
            pa.timestamp("ns", tz="UTC")
        ),
        "value": pa.array([v for _, _, v in events], value_type),
    }
    entity: dict[str, Any] = {
        "event_timestamp": pa.array(
            [None if t is None else t * S for _, t in rows], pa.int64()
        ).cast(pa.timestamp("ns", tz="UTC"))
    }
    if keyed:
        columns["driver"] = pa.array([k for k, _, _ in events], pa.int64())
        entity["driver"] = pa.array([k for k, _ in rows], pa.int32())
    join = AggregateJoin(
        view=ViewJoin(
            name="trips",
            source=pa.table(columns),
            entity_join_keys=[("driver", "driver")] if keyed else [],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(seconds=tile),
        aggregates=[
            WindowedFeature(f, "value", timedelta(seconds=w), f"{f}_{w}_{i}")
            for i, (f, w) in enumerate(aggregates)
        ],
    )
    entity_table = pa.table(entity)
    entity_ts = entity_table.column("event_timestamp").cast(pa.int64()).combine_chunks()
    return [c.to_pylist() for c in aggregate_as_of(entity_table, entity_ts, join)]


def check(got: list[Any], want: list[Any], function: str) -> None:
    for g, w in zip(got, want, strict=True):
        if w is None or isinstance(w, int) and function != "last":
            assert g == w
        elif isinstance(w, float) and math.isnan(w):
            assert g is not None
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9)


keys = st.one_of(st.none(), st.integers(0, 3))
times = st.one_of(st.none(), st.integers(-40, 120))
functions = st.sampled_from([*NUMERIC, *ANY])
windows = st.integers(1, 60)
tiles = st.sampled_from([1, 5, 10, 7])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.tuples(keys, times, st.one_of(st.none(), st.integers(-1000, 1000))), max_size=40
    ),
    rows=st.lists(st.tuples(keys, times), max_size=15),
    aggregates=st.lists(st.tuples(functions, windows), min_size=1, max_size=4),
    tile=tiles,
    keyed=st.booleans(),
)
def test_integers_match_brute_force(
    events: list[tuple[int | None, int | None, int | None]],
    rows: list[tuple[int | None, int | None]],
    aggregates: list[tuple[str, int]],
    tile: int,
    keyed: bool,
) -> None:
    got = run(events, rows, aggregates, tile, pa.int64(), keyed)
    for (function, window), column in zip(aggregates, got, strict=True):
        want = [reference(events, k, t, function, window, tile, keyed) for k, t in rows]
        check(column, want, function)


# Quarters: sums of a few of them are exact in binary floating point.
floats = st.one_of(st.none(), st.integers(-400, 400).map(lambda q: q / 4))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.tuples(keys, times, floats), max_size=40),
    rows=st.lists(st.tuples(keys, times), max_size=15),
    aggregates=st.lists(
        st.tuples(st.sampled_from([*NUMERIC, "count", "last"]), windows), min_size=1, max_size=4
    ),
    tile=tiles,
)
def test_floats_match_brute_force(
    events: list[tuple[int | None, int | None, float | None]],
    rows: list[tuple[int | None, int | None]],
    aggregates: list[tuple[str, int]],
    tile: int,
) -> None:
    got = run(events, rows, aggregates, tile, pa.float64())
    for (function, window), column in zip(aggregates, got, strict=True):
        want = [reference(events, k, t, function, window, tile, True) for k, t in rows]
        check(column, want, function)


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.tuples(keys, times, st.one_of(st.none(), st.sampled_from(["a", "b", "c", "dd", ""]))),
        max_size=40,
    ),
    rows=st.lists(st.tuples(keys, times), max_size=10),
    function=st.sampled_from(ANY),
    window=windows,
    tile=tiles,
)
def test_strings_count_count_distinct_and_last(
    events: list[tuple[int | None, int | None, str | None]],
    rows: list[tuple[int | None, int | None]],
    function: str,
    window: int,
    tile: int,
) -> None:
    (got,) = run(events, rows, [(function, window)], tile, pa.string())
    assert got == [reference(events, k, t, function, window, tile, True) for k, t in rows]


def test_sawtooth_and_exact_boundaries() -> None:
    # Tile 10 s, window 30 s. Events at 5, 10, 11, 20, 30, 31 (values = their times).
    events = [(1, ts, ts) for ts in (31, 5, 10, 11, 20, 30)]
    rows = [(1, 40), (1, 45), (1, 49), (1, 50), (1, 30), (1, 4)]
    (sums,) = run(events, rows, [("sum", 30)], 10, pa.int64())
    # t=40 is on a boundary: exactly (10, 40] -> 11 + 20 + 30 + 31.
    # t=45 and 49: back to the boundary before t - 30, still (10, t] (the sawtooth).
    # t=50: (20, 50] -> 30 + 31. t=30: (0, 30]. t=4: nothing yet.
    assert sums == [92, 92, 92, 61, 5 + 10 + 11 + 20 + 30, None]


def test_late_and_out_of_order_events_count_by_event_time() -> None:
    # Written in any order (a late event last): only event time decides.
    events = [(7, 100, 1), (7, 10, 100), (7, 95, 5), (7, 99, 10)]
    (sums, lasts) = run(events, [(7, 100)], [("sum", 10), ("last", 10)], 1, pa.int64())
    assert sums == [16]
    assert lasts == [1]


def test_empty_windows() -> None:
    want = {"count": 0, "count_distinct": 0}
    functions = [*NUMERIC, *ANY]
    got = run([(1, 50, 3)], [(1, 10), (2, 50)], [(f, 5) for f in functions], 1, pa.int64())
    for function, column in zip(functions, got, strict=True):
        assert column == [want.get(function)] * 2, function


def test_min_max_last_keep_the_input_type() -> None:
    events = [(1, 1, 1.5), (1, 2, -2.0)]
    columns = {
        "ts": pa.array([1 * S, 2 * S], pa.timestamp("ns")),
        "value": pa.array([1.5, -2.0], pa.float32()),
        "driver": pa.array([1, 1]),
    }
    join = AggregateJoin(
        view=ViewJoin(
            name="v",
            source=pa.table(columns),
            entity_join_keys=[("driver", "driver")],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(seconds=1),
        aggregates=[
            WindowedFeature(f, "value", timedelta(seconds=10), f)
            for f in ("min", "max", "last", "sum")
        ],
    )
    entity = pa.table({"driver": [1], "event_timestamp": pa.array([5 * S], pa.timestamp("ns"))})
    out = aggregate_as_of(entity, pa.array([5 * S], pa.int64()), join)
    assert [c.type for c in out] == [pa.float32(), pa.float32(), pa.float32(), pa.float64()]
    assert [c.to_pylist() for c in out] == [[-2.0], [1.5], [-2.0], [-0.5]]
    assert len(events) == 2


def test_string_and_multi_column_keys() -> None:
    source = pa.table(
        {
            "city": ["a", "a", "b", None],
            "shop": [1, 2, 1, 1],
            "ts": pa.array([1 * S, 2 * S, 3 * S, 4 * S], pa.timestamp("ns")),
            "value": [1, 2, 3, 4],
        }
    )
    join = AggregateJoin(
        view=ViewJoin(
            name="v",
            source=source,
            entity_join_keys=[("city", "city"), ("shop", "shop")],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(seconds=1),
        aggregates=[WindowedFeature("sum", "value", timedelta(seconds=10), "s")],
    )
    entity = pa.table(
        {
            "city": pa.array(["a", "a", "b", "b", None], pa.large_string()),
            "shop": [1, 2, 1, 2, 1],
        }
    )
    ts = pa.array([5 * S] * 5, pa.int64())
    (sums,) = aggregate_as_of(entity, ts, join)
    assert sums.to_pylist() == [1, 2, 3, None, None]


def _bad_join(function: str, values: pa.Array) -> AggregateJoin:
    source = pa.table({"ts": pa.array([S] * len(values), pa.timestamp("ns")), "value": values})
    return AggregateJoin(
        view=ViewJoin(
            name="bad_view",
            source=source,
            entity_join_keys=[],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(seconds=1),
        aggregates=[WindowedFeature(function, "value", timedelta(seconds=10), "out")],
    )


@settings(max_examples=30, deadline=None)
@given(
    function=st.sampled_from(NUMERIC),
    values=st.lists(st.text(max_size=3), min_size=1, max_size=5),
)
def test_numeric_functions_refuse_strings(function: str, values: list[str]) -> None:
    join = _bad_join(function, pa.array(values))
    entity = pa.table({"event_timestamp": pa.array([2 * S], pa.timestamp("ns"))})
    with pytest.raises(
        OfflineStoreError,
        match=f"feature view 'bad_view': column 'value': {function} needs an integer or float "
        "column, not Utf8",
    ):
        aggregate_as_of(entity, pa.array([2 * S], pa.int64()), join)


def test_integer_sum_overflow_is_an_error() -> None:
    join = _bad_join("sum", pa.array([2**62, 2**62], pa.int64()))
    entity = pa.table({"event_timestamp": pa.array([2 * S], pa.timestamp("ns"))})
    with pytest.raises(OfflineStoreError, match="overflows int64"):
        aggregate_as_of(entity, pa.array([2 * S], pa.int64()), join)


def test_count_distinct_beyond_the_exact_set_is_within_the_stated_error() -> None:
    n = 20_000
    source = pa.table(
        {
            "ts": pa.array([(i % 100) * S for i in range(n)], pa.timestamp("ns")),
            "value": pa.array([f"user-{i % 5000}" for i in range(n)]),
        }
    )
    join = AggregateJoin(
        view=ViewJoin(
            name="v",
            source=source,
            entity_join_keys=[],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(seconds=10),
        aggregates=[WindowedFeature("count_distinct", "value", timedelta(seconds=1000), "d")],
    )
    entity = pa.table({"event_timestamp": pa.array([200 * S], pa.timestamp("ns"))})
    (got,) = aggregate_as_of(entity, pa.array([200 * S], pa.int64()), join)
    estimate = got.to_pylist()[0]
    # Standard error 1.6 %: 4 of them.
    assert abs(estimate - 5000) / 5000 < 0.065
