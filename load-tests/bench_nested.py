"""Materialize and push throughput of a view with Map, Struct and Json features, before vs after.

    .venv/bin/python load-tests/bench_nested.py --before /path/to/baseline/.venv/bin/python

A Parquet file of `--rows` rows is written once (`--keys` drivers, by default one per row so
materialization encodes every row; features: a Map held as a struct column, as Feast's
template stores one; a Struct of name/age/score; a Json config; an Int64). Each Python given
(`--before`, and this venv's as "after") then runs, in its own child process, `--repeat`
rounds of: materialize the file into a fresh Redis (`layout: packed`), and `push` a pandas
DataFrame of `--push-rows` rows whose Map/Struct cells are Python dicts (what a user's
DataFrame holds). The baseline is main before issue 15, which turned each nested value into
JSON text with orjson in Python; "after" encodes whole columns in Rust. Prints one JSON line
per round and a table of medians with the after/before ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
PROFILE = pa.struct([("name", pa.string()), ("age", pa.int64()), ("score", pa.float64())])
META = pa.struct([("vehicle", pa.string()), ("zone", pa.string()), ("rating", pa.string())])

DEFINITIONS = """
from datetime import timedelta
from repast import Entity, FeatureView, Field, FileSource, PushSource
from repast.types import Int64, Json, Map, String, Float64, Struct

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="src", path={path!r}, timestamp_field="event_timestamp")
push = PushSource(name="push", batch_source=source)
nested = FeatureView(
    name="nested",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="meta", dtype=Map),
        Field(name="profile", dtype=Struct({{"name": String, "age": Int64, "score": Float64}})),
        Field(name="config", dtype=Json),
        Field(name="trips", dtype=Int64),
    ],
    source=push,
)
"""


def columns(rng: np.random.Generator, n: int, keys: int) -> dict[str, Any]:
    zones = np.array([f"zone-{i}" for i in range(50)], dtype=object)
    ids = rng.integers(0, keys, n)
    seconds = rng.integers(0, 86_400, n)
    zone = zones[rng.integers(0, 50, n)]
    return {
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array(
            np.datetime64("2024-01-01T00:00:00", "us") + seconds * 1_000_000,
            pa.timestamp("us", tz="UTC"),
        ),
        "meta": pa.StructArray.from_arrays(
            [
                pa.array(np.where(ids % 2 == 0, "suv", "sedan").astype(object)),
                pa.array(zone),
                pa.array((rng.integers(10, 50, n) / 10).astype(str).astype(object)),
            ],
            fields=list(META),
        ),
        "profile": pa.StructArray.from_arrays(
            [
                pa.array(np.char.add("driver-", ids.astype(str)).astype(object)),
                pa.array(rng.integers(20, 70, n)),
                pa.array(rng.random(n)),
            ],
            fields=list(PROFILE),
        ),
        "config": pa.array(
            [f'{{"max_km": {d % 500}, "zones": ["{z}"]}}' for d, z in zip(ids, zone, strict=True)]
        ),
        "trips": pa.array(rng.integers(0, 10_000, n)),
    }


def child(repo: Path, push_rows: int) -> None:
    """One round in this process: materialize, then push; print both rates as JSON."""
    import pandas as pd

    from repast import FeatureStore

    store = FeatureStore(repo_path=repo)
    store.apply_repo(skip_source_validation=True)
    data = pq.read_table(repo / "nested.parquet")
    began = time.perf_counter()
    store.materialize(START, START + timedelta(days=1))
    materialize_s = time.perf_counter() - began
    frame: pd.DataFrame = data.slice(0, push_rows).to_pandas()  # dict cells, as users hold
    frame["event_timestamp"] = pd.Timestamp("2024-01-03", tz="UTC")
    began = time.perf_counter()
    store.push("push", frame)
    push_s = time.perf_counter() - began
    print(
        json.dumps(
            {
                "materialize_rows": len(data),
                "materialize_s": materialize_s,
                "push_rows": len(frame),
                "push_s": push_s,
            }
        )
    )


def make_repo(repo: Path, data: Path, connection: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "nested.parquet").symlink_to(data)
    (repo / "definitions.py").write_text(DEFINITIONS.format(path=str(data)))
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.json\nprovider: local\n"
        f"online_store:\n  type: redis\n  connection_string: {connection}\n  layout: packed\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--push-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, required=False, help="baseline venv's python")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.push_rows)
        return
    pythons = {"after": Path(sys.executable)}
    if args.before:
        pythons = {"before": args.before, **pythons}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in pythons}
    with tempfile.TemporaryDirectory(prefix="bench-nested-") as tmp:
        work = Path(tmp)
        data = work / "nested.parquet"
        pq.write_table(pa.table(columns(np.random.default_rng(7), args.rows, args.keys)), data)
        server = start_redis_server(work / "redis")
        try:
            for round_ in range(args.repeat):
                # Alternate who goes first, so neither always meets a warmer machine.
                order = list(pythons) if round_ % 2 == 0 else list(reversed(pythons))
                for name in order:
                    server.restart()
                    repo = work / f"repo-{name}-{round_}"
                    make_repo(repo, data, server.connection_string)
                    out = subprocess.run(
                        [str(pythons[name]), __file__, "--child", str(repo)]
                        + ["--push-rows", str(args.push_rows)],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    print(json.dumps({"build": name, "round": round_, **result}))
                    runs[name].append(result)
        finally:
            server.stop()

    def median_rate(name: str, what: str) -> float:
        return statistics.median(r[f"{what}_rows"] / r[f"{what}_s"] for r in runs[name])

    print(f"\n{'':<14}" + "".join(f"{n + ' rows/s':>18}" for n in pythons) + f"{'ratio':>10}")
    for what in ("materialize", "push"):
        rates = [median_rate(n, what) for n in pythons]
        ratio = f"{rates[-1] / rates[0]:>10.2f}" if len(rates) == 2 else ""
        print(f"{what:<14}" + "".join(f"{r:>18,.0f}" for r in rates) + ratio)


if __name__ == "__main__":
    main()
