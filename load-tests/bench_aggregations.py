"""Windowed aggregations offline (issue 17): Repast's as-of kernel vs DuckDB window SQL.

Seeded data in memory: `--events` events (int64 key over `--keys` keys, 30 days of event
times, an int64 value with 1 % nulls) and `--entity-rows` entity rows (random key, a time on a
5-minute boundary in days 8..30). Both engines compute sum, count, mean and max of the value over
1 hour, 1 day and 7 days (12 aggregates) for every entity row:

- `repast`: `repast.offline.aggregate.aggregate_as_of` (dense key ids, the Rust kernel,
  tiles of 5 minutes), Arrow in and out;
- `duckdb`: entity rows `UNION ALL` events, `sum/count/avg/max(value) OVER (PARTITION BY key
  ORDER BY ts RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW)`, the entity rows kept, ordered
  by row id, `.arrow()`.

The windows agree: entity times are on tile boundaries, so Repast's window is exactly
`(t - W, t]`, and no event falls on a 5-minute boundary, so DuckDB's `[t - W, t]` holds the same
events. Every value is checked equal (means to 1e-12 relative). Engines alternate in one
process, `--repeats` times each; medians of wall and CPU time are printed and written to
`--json`.

    .venv/bin/python load-tests/bench_aggregations.py                  # 10 M x 1 M, 3 repeats
    .venv/bin/python load-tests/bench_aggregations.py --events 1000000 --entity-rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.view import ViewJoin

S_US = 1_000_000
DAY_US = 86_400 * S_US
T0_US = 1_704_067_200 * S_US  # 2024-01-01T00:00:00Z
TILE_US = 300 * S_US
WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
INTERVALS = {"1h": "1 HOUR", "1d": "1 DAY", "7d": "7 DAY"}
FUNCTIONS = ["sum", "count", "mean", "max"]
SQL_FUNCTION = {"sum": "sum", "count": "count", "mean": "avg", "max": "max"}
TS = pa.timestamp("us", tz="UTC")


def generate(args: argparse.Namespace) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(args.seed)
    m, n = args.events, args.entity_rows
    times = T0_US + rng.integers(0, 30 * DAY_US, m)
    on_boundary = times % TILE_US == 0
    times[on_boundary] += 1  # no event on a tile boundary (see the module docstring)
    values = rng.integers(0, 1000, m)
    valid = rng.random(m) >= 0.01
    events = pa.table(
        {
            "key": pa.array(rng.integers(0, args.keys, m)),
            "ts": pa.array(times, TS),
            "value": pa.array(values, mask=~valid),
        }
    )
    entity_times = T0_US + 8 * DAY_US + rng.integers(0, 22 * DAY_US // TILE_US, n) * TILE_US
    entity = pa.table(
        {
            "row_id": pa.array(np.arange(n)),
            "key": pa.array(rng.integers(0, args.keys, n)),
            "event_timestamp": pa.array(entity_times, TS),
        }
    )
    return events, entity


def run_repast(events: pa.Table, entity: pa.Table) -> dict[str, pa.Array]:
    aggregates = [
        WindowedFeature(f, "value", window, f"{f}_{name}")
        for name, window in WINDOWS.items()
        for f in FUNCTIONS
    ]
    join = AggregateJoin(
        view=ViewJoin(
            name="bench",
            source=events,
            entity_join_keys=[("key", "key")],
            timestamp_field="ts",
            features=[("value", "value")],
        ),
        tile=timedelta(microseconds=TILE_US),
        aggregates=aggregates,
    )
    entity_ts = entity.column("event_timestamp").cast(pa.timestamp("ns", tz="UTC"))
    entity_ts = entity_ts.cast(pa.int64()).combine_chunks()
    out = aggregate_as_of(entity, entity_ts, join)
    return {a.output: column for a, column in zip(aggregates, out, strict=True)}


def run_duckdb(events: pa.Table, entity: pa.Table) -> dict[str, pa.Array]:
    import duckdb

    con = duckdb.connect()
    con.register("events", events)
    con.register("entity", entity)
    selects = ", ".join(
        f"{SQL_FUNCTION[f]}(value) OVER w{name} AS {f}_{name}"
        for name in WINDOWS
        for f in FUNCTIONS
    )
    windows = ", ".join(
        f"w{name} AS (PARTITION BY key ORDER BY ts RANGE BETWEEN INTERVAL {INTERVALS[name]} "
        "PRECEDING AND CURRENT ROW)"
        for name in WINDOWS
    )
    sql = f"""
        WITH u AS (
            SELECT key, ts, value, NULL::BIGINT AS row_id FROM events
            UNION ALL
            SELECT key, event_timestamp AS ts, NULL::BIGINT AS value, row_id FROM entity
        )
        SELECT row_id, {selects} FROM u
        WINDOW {windows}
        QUALIFY row_id IS NOT NULL
        ORDER BY row_id
    """
    result = con.execute(sql)
    table = result.to_arrow_table()
    return {name: table.column(name).combine_chunks() for name in table.column_names[1:]}


def same(repast: dict[str, pa.Array], duck: dict[str, pa.Array]) -> None:
    for name, column in repast.items():
        got, want = column.to_numpy(zero_copy_only=False), duck[name].to_numpy(zero_copy_only=False)
        if name.startswith("mean"):
            both_nan = np.isnan(got) & np.isnan(want)
            close = np.isclose(got, want, rtol=1e-12, atol=0)
            assert bool(np.all(both_nan | close)), name
        else:
            got_nulls = column.is_null().to_numpy(zero_copy_only=False)
            want_nulls = duck[name].is_null().to_numpy(zero_copy_only=False)
            if name.startswith("count"):
                # DuckDB's count over a window without values is 0, as Repast's.
                assert np.array_equal(got, want), name
            else:
                assert np.array_equal(got_nulls, want_nulls), name
                ok = got_nulls | (got == want)
                assert bool(np.all(ok)), name


def timed(fn: Any, *args: Any) -> tuple[float, float, Any]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - wall0, time.process_time() - cpu0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    events, entity = generate(args)
    runs: dict[str, list[tuple[float, float]]] = {"repast": [], "duckdb": []}
    checked = False
    for _ in range(args.repeats):
        wall, cpu, repast = timed(run_repast, events, entity)
        runs["repast"].append((wall, cpu))
        wall, cpu, duck = timed(run_duckdb, events, entity)
        runs["duckdb"].append((wall, cpu))
        if not checked:
            same(repast, duck)
            checked = True
        del repast, duck
    result: dict[str, Any] = {
        "events": args.events,
        "entity_rows": args.entity_rows,
        "keys": args.keys,
        "aggregates": len(FUNCTIONS) * len(WINDOWS),
        "load_average_at_start": load,
        "machine": platform.platform(),
        "identical_values": checked,
    }
    for engine, times in runs.items():
        result[engine] = {
            "wall_s": [round(w, 3) for w, _ in times],
            "cpu_s": [round(c, 3) for _, c in times],
            "median_wall_s": round(statistics.median(w for w, _ in times), 3),
            "median_cpu_s": round(statistics.median(c for _, c in times), 3),
        }
    ratio = result["duckdb"]["median_wall_s"] / result["repast"]["median_wall_s"]
    result["duckdb_over_repast_wall"] = round(ratio, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
