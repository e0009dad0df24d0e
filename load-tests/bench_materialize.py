"""Materialization into Redis: rows/s and peak RSS, `packed` vs `feast` layout.

    .venv/bin/python load-tests/bench_materialize.py                 # 10 M rows x 10 features
    .venv/bin/python load-tests/bench_materialize.py --rows 1000000  # smaller

A Parquet file of `--rows` rows (`--keys` distinct drivers, 10 features: 4 float32, 3 int64,
2 float64, 1 string) is written once; then each layout is materialized in a fresh child
process (so its peak RSS is its own) into a redis-server this script starts on 127.0.0.1
(tests/services.py). Baseline in the same run: Feast's write path for the feast layout
(redis-py pipeline, `HMGET _ts` then `HSET` + protobuf-free values per row, as
`online_write_batch` does) over `--baseline-rows` of the latest rows. Prints one JSON line
per measurement and a summary table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from services import start_redis_server  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
FEATURES = [
    ("f_float_0", "Float32"),
    ("f_float_1", "Float32"),
    ("f_float_2", "Float32"),
    ("f_float_3", "Float32"),
    ("f_int_0", "Int64"),
    ("f_int_1", "Int64"),
    ("f_int_2", "Int64"),
    ("f_double_0", "Float64"),
    ("f_double_1", "Float64"),
    ("f_label", "String"),
]

DEFINITIONS = """
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="src", path={path!r}, timestamp_field="event_timestamp")
stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[Field(name="driver_id", dtype=Int64), {fields}],
    source=source,
)
"""


def write_data(path: Path, rows: int, keys: int, chunk: int = 1_000_000) -> None:
    rng = np.random.default_rng(7)
    schema = None
    writer: pq.ParquetWriter | None = None
    labels = np.array([f"label-{i}" for i in range(100)], dtype=object)
    try:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            seconds = rng.integers(0, 86_400, n)
            columns: dict[str, Any] = {
                "driver_id": pa.array(rng.integers(0, keys, n), pa.int64()),
                "event_timestamp": pa.array(
                    (np.datetime64("2024-01-01T00:00:00", "us") + seconds * 1_000_000),
                    pa.timestamp("us", tz="UTC"),
                ),
            }
            for name, dtype in FEATURES:
                if dtype == "Float32":
                    columns[name] = pa.array(rng.random(n, dtype=np.float32))
                elif dtype == "Float64":
                    columns[name] = pa.array(rng.random(n))
                elif dtype == "Int64":
                    columns[name] = pa.array(rng.integers(0, 1_000_000, n))
                else:
                    columns[name] = pa.array(labels[rng.integers(0, 100, n)], pa.string())
            table = pa.table(columns)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table, row_group_size=256 * 1024)
    finally:
        if writer is not None:
            writer.close()


def make_repo(repo: Path, data: Path, connection: str, layout: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    fields = ", ".join(f'Field(name="{n}", dtype={t})' for n, t in FEATURES)
    (repo / "definitions.py").write_text(DEFINITIONS.format(path=str(data), fields=fields))
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.json\nprovider: local\n"
        f"online_store:\n  type: redis\n  connection_string: {connection}\n  layout: {layout}\n"
    )


def child(repo: Path) -> None:
    """Materialize the whole day in this process; print rows/s and peak RSS as JSON."""
    from repast import FeatureStore, FileSource

    store = FeatureStore(repo_path=repo)
    store.apply_repo(skip_source_validation=True)
    source = store.get_feature_view("driver_stats").batch_source
    assert isinstance(source, FileSource)
    rows = pq.ParquetFile(source.path).metadata.num_rows
    began = time.perf_counter()
    store.materialize(START, START + timedelta(days=1))
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": rows, "seconds": elapsed, "peak_rss_bytes": peak}))


def feast_baseline(connection: str, data: Path, limit: int) -> dict[str, Any]:
    """Feast's online_write_batch shape for the feast layout, on `limit` rows."""
    import redis

    from repast import _core

    table = pq.read_table(data).slice(0, limit)
    host, port = connection.split(":")
    client = redis.Redis(host=host, port=int(port))
    client.flushall()
    keys = _core.serialize_entity_keys(
        ["driver_id"], [table.column("driver_id").combine_chunks()], [4]
    )
    names = [n for n, _ in FEATURES]
    fields = _core.feature_field_names("driver_stats", names)
    types = {"Float32": 6, "Int64": 4, "Float64": 5, "String": 2}
    began = time.perf_counter()
    # Values are encoded column-wise in Rust (kinder than Feast's per-value protobuf objects);
    # what remains is Feast's per-row pipeline: HMGET the timestamps, then HSET per row.
    values = [
        _core.encode_values(table.column(n).combine_chunks(), types[t], n).to_pylist()
        for n, t in FEATURES
    ]
    ts = _core.encode_timestamps(table.column("event_timestamp").combine_chunks()).to_pylist()
    key_list = [k + b"bench" for k in keys.to_pylist()]
    step = 10_000
    for start in range(0, limit, step):
        part = range(start, min(start + step, limit))
        pipe = client.pipeline(transaction=False)
        for i in part:
            pipe.hmget(key_list[i], ["_ts:driver_stats"])
        pipe.execute()
        pipe = client.pipeline(transaction=False)
        for i in part:
            mapping: dict[Any, Any] = {b"_ts:driver_stats": ts[i]}
            mapping.update({f: v[i] for f, v in zip(fields, values, strict=True)})
            pipe.hset(key_list[i], mapping=mapping)
        pipe.execute()
    elapsed = time.perf_counter() - began
    client.close()
    return {"rows": limit, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=None, help="distinct drivers (rows / 10)")
    parser.add_argument("--layouts", nargs="+", default=["packed", "feast"])
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    keys = args.keys or max(1, args.rows // 10)
    with tempfile.TemporaryDirectory(prefix="bench-materialize-") as tmp:
        work = Path(tmp)
        data = work / "driver_stats.parquet"
        began = time.perf_counter()
        write_data(data, args.rows, keys)
        print(f"# wrote {args.rows:,} rows ({keys:,} keys) in {time.perf_counter() - began:.1f} s")
        server = start_redis_server(work / "redis")
        results: dict[str, Any] = {}
        try:
            for layout in args.layouts:
                server.restart()  # empty again (no persistence); FLUSHALL of 1 M keys times out
                repo = work / f"repo-{layout}"
                make_repo(repo, data, server.connection_string, layout)
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(repo)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result.update(
                    layout=layout, keys=keys, rows_per_s=result["rows"] / result["seconds"]
                )
                results[layout] = result
                print(json.dumps(result))
            base = feast_baseline(
                server.connection_string, data, min(args.baseline_rows, args.rows)
            )
            base["rows_per_s"] = base["rows"] / base["seconds"]
            print(json.dumps({"baseline": "feast-style redis-py pipeline", **base}))
        finally:
            server.stop()
    header = f"{'layout':<10}{'rows':>14}{'seconds':>10}{'rows/s':>12}"
    print(f"\n{header}{'peak RSS MiB':>14}{'x baseline':>12}")
    for layout, r in results.items():
        print(
            f"{layout:<10}{r['rows']:>14,}{r['seconds']:>10.1f}{r['rows_per_s']:>12,.0f}"
            f"{r['peak_rss_bytes'] / 2**20:>14,.0f}{r['rows_per_s'] / base['rows_per_s']:>12.1f}"
        )
    print(
        f"{'baseline':<10}{base['rows']:>14,}{base['seconds']:>10.1f}{base['rows_per_s']:>12,.0f}"
    )


if __name__ == "__main__":
    main()
