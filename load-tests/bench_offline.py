"""Point-in-time join benchmark (issue 3): Repast vs DuckDB ASOF JOIN vs pandas merge_asof.

Generates seeded data into a temporary directory: an entity frame of `--entity-rows` rows and one
view's Parquet source of `--source-rows` rows with `--features` float64 features (1 % nulls) over
`--keys` distinct integer keys and 30 days of event times; the view's ttl is 7 days. Then, for
each case (big: every entity row; small: the first `--small-entity-rows` rows), every engine runs
in its own subprocess (so peak RSS is its own), `--repeats` times, from the in-memory entity
table and the Parquet source to a result table:

- `repast`: `repast.offline.point_in_time_join` to a pyarrow Table.
- `repast-mem`: the same with the source already read into memory (join + gather only).
- `repast-stream`: `repast` with `memory_limit=--stream-memory-limit`, small enough that the
  bounded-memory path (`repast.offline.partitioned`) runs instead of the in-memory one.
- `duckdb`: `entity ASOF LEFT JOIN read_parquet(source)` on key equality and
  `entity_ts >= event_ts`, the ttl applied as a filter on the matched row, `.arrow()`. DuckDB does
  not keep the entity order (an advantage it is given here).
- `pandas`: `pd.read_parquet`, sort both sides by time, `merge_asof(by=key, tolerance=ttl)`,
  restore the entity order.

Prints medians, ratios against DuckDB and pandas, peak RSS against (input + output) bytes, and
checks that every engine chose the same feature values (aligned on a row id). Writes every
figure to `--json`.

    .venv/bin/python load-tests/bench_offline.py                      # 10 M x 10 M, 3 repeats
    .venv/bin/python load-tests/bench_offline.py --entity-rows 1000000 --source-rows 1000000
    # The large case: 100 M source rows (~9 GB of Parquet-decoded columns, more than the default
    # budget of half the free memory, so `repast` streams), data kept for later runs:
    .venv/bin/python load-tests/bench_offline.py --source-rows 100000000 --engines repast \
        --repeats 1 --data-dir ~/.cache/repast/bench-offline-100m --keep-data

Every child also reports which path each join took (`paths`: "memory" or the number of key
partitions of the bounded path).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TTL = timedelta(days=7)
DAY_US = 86_400 * 1_000_000
T0_US = 1_704_067_200 * 1_000_000  # 2024-01-01T00:00:00Z
TS = pa.timestamp("us", tz="UTC")
ENGINES = ["repast", "repast-mem", "repast-stream", "duckdb", "pandas"]
GENERATE_CHUNK = 1 << 20  # rows generated and written at a time (one row group each)


# --- data -----------------------------------------------------------------------------------


def generate(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Writes the source one row group at a time, so a 100 M-row source never sits in memory."""
    marker = work / "sizes.json"
    if marker.exists():
        sizes: dict[str, Any] = json.loads(marker.read_text())
        wanted = {k: getattr(args, k) for k in ("source_rows", "entity_rows", "keys", "features")}
        if sizes.get("parameters") == wanted | {"seed": args.seed}:
            return sizes
    rng = np.random.default_rng(args.seed)
    m, n, k = args.source_rows, args.entity_rows, args.keys
    source_bytes = 0
    writer: pq.ParquetWriter | None = None
    for start in range(0, m, GENERATE_CHUNK):
        rows = min(GENERATE_CHUNK, m - start)
        columns: dict[str, Any] = {
            "driver_id": pa.array(rng.integers(0, k, rows, dtype=np.int64)),
            "event_timestamp": pa.array(
                T0_US + rng.integers(0, 30 * DAY_US, rows), type=pa.int64()
            ).cast(TS),
        }
        for i in range(args.features):
            values = rng.random(rows)
            nulls = rng.random(rows) < 0.01
            columns[f"f{i}"] = pa.array(values, mask=nulls)
        chunk = pa.table(columns)
        source_bytes += chunk.nbytes
        if writer is None:
            writer = pq.ParquetWriter(work / "source.parquet", chunk.schema)
        writer.write_table(chunk, row_group_size=GENERATE_CHUNK)
    if writer is not None:
        writer.close()
    # Entity keys reach 5 % past the source's, so some rows find no key at all.
    entity = pa.table(
        {
            "driver_id": pa.array(rng.integers(0, k + k // 20, n, dtype=np.int64)),
            "event_timestamp": pa.array(T0_US + rng.integers(0, 31 * DAY_US, n), type=pa.int64())
            .cast(TS)
            .cast(pa.timestamp("ns", tz="UTC")),
            "rid": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    pq.write_table(entity, work / "entity.parquet")
    sizes = {
        "source_bytes": source_bytes,
        "entity_bytes": entity.nbytes,
        "parameters": {
            "source_rows": m,
            "entity_rows": n,
            "keys": k,
            "features": args.features,
            "seed": args.seed,
        },
    }
    marker.write_text(json.dumps(sizes))
    return sizes


# --- engines (each runs in a child process) --------------------------------------------------


def run_repast(
    entity: pa.Table,
    source_path: Path,
    features: list[str],
    mem: bool,
    memory_limit: int | None,
    paths: list[Any],
) -> Any:
    from repast.offline import ViewJoin, partitioned, point_in_time_join

    source: Any = pq.read_table(source_path) if mem else source_path
    bounded = partitioned.join_view

    def spy(view: Any, plan: Any, *rest: Any) -> Any:
        paths[-1] = plan.partitions
        return bounded(view, plan, *rest)

    partitioned.join_view = spy  # type: ignore[assignment]

    def once() -> pa.Table:
        view = ViewJoin(
            name="stats",
            source=source,
            entity_join_keys=[("driver_id", "driver_id")],
            timestamp_field="event_timestamp",
            features=[(f, f) for f in features],
            ttl=TTL,
        )
        paths.append("memory")
        return point_in_time_join(entity, "event_timestamp", [view], memory_limit=memory_limit)

    return once


def run_duckdb(entity: pa.Table, source_path: Path, features: list[str]) -> Any:
    import duckdb

    con = duckdb.connect()
    con.register("entity", entity)
    days = TTL.days
    picked = ", ".join(
        f"CASE WHEN s.event_timestamp >= e.event_timestamp - INTERVAL {days} DAY "
        f"THEN s.{f} END AS {f}"
        for f in features
    )
    query = (
        f"SELECT e.driver_id, e.event_timestamp, e.rid, {picked} "
        f"FROM entity e ASOF LEFT JOIN read_parquet('{source_path}') s "
        "ON e.driver_id = s.driver_id AND e.event_timestamp >= s.event_timestamp"
    )

    def once() -> pa.Table:
        result = con.sql(query)
        fetch = getattr(result, "fetch_arrow_table", None) or result.arrow
        table = fetch()
        return table if isinstance(table, pa.Table) else table.read_all()

    return once


def run_pandas(entity: pa.Table, source_path: Path, features: list[str]) -> Any:
    import pandas as pd

    frame = entity.to_pandas()
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")

    def once() -> Any:
        source = pd.read_parquet(source_path)
        left = frame.sort_values("event_timestamp", kind="stable")
        right = source.sort_values("event_timestamp", kind="stable")
        merged = pd.merge_asof(
            left,
            right,
            on="event_timestamp",
            by="driver_id",
            tolerance=pd.Timedelta(TTL),
            direction="backward",
            allow_exact_matches=True,
        )
        return merged.sort_values("rid", kind="stable").reset_index(drop=True)

    return once


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    features = [f"f{i}" for i in range(args.features)]
    entity = pq.read_table(work / "entity.parquet")
    if args.entity_rows < entity.num_rows:
        entity = entity.slice(0, args.entity_rows)
    source_path = work / "source.parquet"
    paths: list[Any] = []
    if args.child in ("repast", "repast-mem", "repast-stream"):
        limit = None
        if args.child == "repast-stream":
            from repast.offline.budget import parse_byte_size

            limit = parse_byte_size(args.stream_memory_limit)
        mem = args.child == "repast-mem"
        once = run_repast(entity, source_path, features, mem, limit, paths)
    elif args.child == "duckdb":
        once = run_duckdb(entity, source_path, features)
    else:
        once = run_pandas(entity, source_path, features)
    times, cpu = [], []
    result: Any = None
    for _ in range(args.repeats):
        result = None
        start, start_cpu = time.perf_counter(), time.process_time()
        result = once()
        times.append(time.perf_counter() - start)
        # CPU seconds of every thread: comparable when the machine is shared.
        cpu.append(time.process_time() - start_cpu)
    if isinstance(result, pa.Table):
        out_bytes = result.nbytes
        check = result.select(["rid", "f0"])
    else:
        out_bytes = int(result.memory_usage(deep=True).sum())
        check = pa.table({"rid": result["rid"].to_numpy(), "f0": result["f0"].to_numpy()})
    pq.write_table(check, work / f"check-{args.child}-{args.case}.parquet")
    print(
        json.dumps(
            {
                "times_s": times,
                "cpu_s": cpu,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "output_bytes": out_bytes,
                "rows": result.num_rows if isinstance(result, pa.Table) else len(result),
                "paths": paths,
            }
        )
    )


# --- parent ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for module in ("pyarrow", "duckdb", "pandas", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    info["versions"] = versions
    # Allocator settings change the first-touch cost of large buffers (see RESULTS.md).
    info["env"] = {
        k: os.environ[k]
        for k in ("MIMALLOC_LARGE_OS_PAGES", "ARROW_DEFAULT_MEMORY_POOL", "RAYON_NUM_THREADS")
        if k in os.environ
    }
    return info


def run_engine(
    engine: str, case: str, rows: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--case",
        case,
        "--work",
        str(work),
        "--entity-rows",
        str(rows),
        "--features",
        str(args.features),
        "--repeats",
        str(args.repeats),
        "--stream-memory-limit",
        args.stream_memory_limit,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["median_s"] = statistics.median(result["times_s"])
    return result


def agreement(work: Path, case: str, engines: list[str]) -> dict[str, float]:
    """Share of rows whose f0 equals Repast's (both null counts as equal), aligned on rid."""
    base_path = work / f"check-repast-{case}.parquet"
    if not base_path.exists():
        return {}
    base = pq.read_table(base_path).sort_by("rid")
    ref = base.column("f0").to_numpy(zero_copy_only=False)
    out = {}
    for engine in engines:
        path = work / f"check-{engine}-{case}.parquet"
        if engine == "repast" or not path.exists():
            continue
        other = pq.read_table(path).sort_by("rid")
        values = other.column("f0").to_numpy(zero_copy_only=False)
        same = (ref == values) | (np.isnan(ref) & np.isnan(values))
        out[engine] = float(same.mean()) if len(same) else 1.0
    # Guards the benchmark itself: most rows must find a value.
    out["repast_non_null_share"] = float((~np.isnan(ref)).mean()) if len(ref) else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity-rows", type=int, default=10_000_000)
    parser.add_argument("--source-rows", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--small-entity-rows", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per engine and case")
    parser.add_argument("--json", type=Path, default=Path("bench_offline.json"))
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the data goes (default: a temporary directory, deleted after the run)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep --data-dir (and reuse data generated there with the same parameters)",
    )
    parser.add_argument(
        "--stream-memory-limit",
        default="1GiB",
        help="memory_limit of the repast-stream engine",
    )
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--case", default="big", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    engines = [e for e in args.engines.split(",") if e]
    report: dict[str, Any] = {"machine": machine(), "parameters": vars(args) | {"json": None}}
    with contextlib.ExitStack() as stack:
        if args.data_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-offline-")))
        else:
            work = args.data_dir.expanduser()
            work.mkdir(parents=True, exist_ok=True)
            if not args.keep_data:
                stack.callback(shutil.rmtree, work, ignore_errors=True)
        start = time.perf_counter()
        sizes = generate(work, args)
        print(f"generated data in {time.perf_counter() - start:.1f} s: {sizes}", flush=True)
        report["sizes"] = sizes
        report["source_parquet_bytes"] = (work / "source.parquet").stat().st_size
        cases = {"big": args.entity_rows, "small": min(args.small_entity_rows, args.entity_rows)}
        for case, rows in cases.items():
            results = {}
            for engine in engines:
                results[engine] = run_engine(engine, case, rows, args, work)
                r = results[engine]
                shown = (
                    f"median {r['median_s']:.3f} s, runs {[round(t, 3) for t in r['times_s']]}, "
                    f"cpu {[round(t, 2) for t in r.get('cpu_s', [])]} s, "
                    f"peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB, paths {r['paths']}"
                    if "error" not in r
                    else r["error"]
                )
                print(f"[{case}: {rows:,} x {args.source_rows:,}] {engine}: {shown}", flush=True)
            summary = summarize(results, sizes, rows, args)
            summary["agreement_with_repast"] = agreement(work, case, engines)
            report[case] = {"entity_rows": rows, "results": results, "summary": summary}
            print(f"[{case}] {json.dumps(summary)}", flush=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.json}")


def summarize(
    results: dict[str, Any], sizes: dict[str, int], rows: int, args: argparse.Namespace
) -> dict[str, Any]:
    ok = {e: r for e, r in results.items() if "error" not in r}
    summary: dict[str, Any] = {}
    entity_bytes = sizes["entity_bytes"] * rows // max(args.entity_rows, 1)
    for engine in ("repast", "repast-stream"):
        repast = ok.get(engine)
        if repast is None:
            continue
        for other in ("duckdb", "pandas"):
            if other in ok:
                ratio = ok[other]["median_s"] / repast["median_s"]
                summary[f"{engine}_speedup_vs_{other}"] = round(ratio, 2)
        budget = entity_bytes + sizes["source_bytes"] + repast["output_bytes"]
        summary[f"{engine}_input_plus_output_bytes"] = budget
        peak = repast["peak_rss_bytes"] / budget
        summary[f"{engine}_peak_rss_over_input_plus_output"] = round(peak, 2)
    return summary


if __name__ == "__main__":
    main()
