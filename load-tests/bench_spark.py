"""Spark benchmark (issue 16): Repast on Spark vs Feast 0.67's Spark offline store vs Repast's
local kernel, and the Spark materialization engine into Redis.

Generates seeded data: an entity frame of `--entity-rows` rows (int64 key, timestamp, row id)
and a view's Parquet source (a directory of 8 files) of `--source-rows` rows with `--features`
float64 features over `--source-rows / 10` keys and 30 days; ttl 7 days. Each engine runs in
its own process, `--repeats` times, after one warm-up retrieval (JVM and Python workers up):

- `repast-spark`: `offline_store: {type: spark}` on `local[2]`, `get_historical_features(...)
  .to_arrow()` (the cogroup + Rust kernel join, features collected beside the entity frame).
- `repast-local`: the file store, same request (the local Rust kernel).
- `repast-spark-base`: `repast-spark` with repast imported from `--base-sdk` (another
  checkout's `sdk/`, its `_core` built): a before/after comparison in one run.
- `feast-spark`: Feast 0.67's Spark offline store on the same `local[2]` settings, from the
  Feast venv (tests/feast_venv.py), same request, `.to_arrow()`.
- `spark-floor`: no join, no Python worker: the least any Spark job must do to co-locate the
  same data by key (both sides read and shuffled by the same key hash), without and with a
  result of the join's size collected as Arrow (load-tests/spark_floor.py); and, as a floor
  for Repast's own plan, its co-group through `applyInArrow` with a worker that does nothing.

Every engine's result is aligned on the row id and compared value by value with repast-local.
`--materialize-rows` (0 to skip) then materializes `--materialize-rows` source rows over a
tenth as many entities, `--features` features (8 Parquet files), into a fresh redis-server on
127.0.0.1 per engine (`--materialize-engines`), each in its own process after a one-day
warm-up run, `--repeats` times (Redis flushed between runs):

- `repast-spark`: `batch_engine: {type: spark}` (the Spark job, session already up; Python
  workers' peak RSS reported by each partition, the JVM's after stop).
- `feast-spark`: Feast 0.67's `batch_engine: {type: spark.engine, partitions: 8}` with its
  Spark offline store and a SparkSource over the same files (`store.materialize`, timed).

rows/s = source rows in the window / seconds. Each engine then reads back ~2 000 sampled keys
online; the values (f0, f9) are compared with Repast's.

    .venv/bin/python load-tests/bench_spark.py --entity-rows 1000000 --source-rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DAY_US = 86_400 * 1_000_000
T0_US = 1_704_067_200 * 1_000_000
TS = pa.timestamp("us", tz="UTC")
SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.memory": "4g",
}

DEFINITIONS = """\
from datetime import timedelta
from {package} import Entity, FeatureView, Field
from {source_module} import SparkSource
from {package}.types import Float64, Int64

key = Entity(name="key", join_keys=["key"])
source = SparkSource(name="source", path="{path}", file_format="parquet",
                     timestamp_field="event_timestamp")
view = FeatureView(name="view", entities=[key], ttl=timedelta(days=7), source=source,
                   schema=[Field(name="key", dtype=Int64)]
                   + [Field(name=f"f{{i}}", dtype=Float64) for i in range({features})])
"""
FEAST_SOURCE = "feast.infra.offline_stores.contrib.spark_offline_store.spark_source"


def generate(work: Path, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(16)
    keys = max(1, args.source_rows // 10)
    (work / "source").mkdir(parents=True)
    per_file = -(-args.source_rows // 8)
    for part in range(8):
        n = min(per_file, args.source_rows - part * per_file)
        if n <= 0:
            break
        columns: dict[str, Any] = {
            "key": pa.array(rng.integers(0, keys, n), pa.int64()),
            "event_timestamp": pa.array(T0_US + rng.integers(0, 30 * DAY_US, n)).cast(TS),
        }
        for i in range(args.features):
            columns[f"f{i}"] = pa.array(rng.random(n))
        pq.write_table(pa.table(columns), work / "source" / f"part-{part}.parquet")
    entity = pa.table(
        {
            "key": pa.array(rng.integers(0, keys, args.entity_rows), pa.int64()),
            "event_timestamp": pa.array(
                T0_US + rng.integers(0, 30 * DAY_US, args.entity_rows)
            ).cast(TS),
            "rid": pa.array(np.arange(args.entity_rows), pa.int64()),
        }
    )
    pq.write_table(entity, work / "entity.parquet")


def write_repo(work: Path, engine: str, features: int) -> Path:
    repo = work / f"repo-{engine}"
    repo.mkdir(exist_ok=True)
    feast = engine.startswith("feast")
    offline = (
        "{type: file}"
        if engine == "repast-local"
        else json.dumps({"type": "spark", "spark_conf": SPARK_CONF})
    )
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo}/registry.db\nprovider: local\n"
        f"online_store: {{type: sqlite, path: {repo}/online.db}}\n"
        f"offline_store: {offline}\nentity_key_serialization_version: 3\n"
    )
    source_module = FEAST_SOURCE if feast else "repast"
    package = "feast" if feast else "repast"
    path = work / "source"
    if engine == "repast-local":
        text = DEFINITIONS.replace("SparkSource", "FileSource").replace(
            ', file_format="parquet"', ""
        )
    else:
        text = DEFINITIONS
    (repo / "definitions.py").write_text(
        text.format(package=package, source_module=source_module, path=path, features=features)
    )
    return repo


# --- children -----------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    repo = Path(args.repo)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    if args.engine == "spark-floor":
        sys.path.insert(0, str(ROOT / "load-tests"))
        from spark_floor import floor_child

        variants = floor_child(work, args.features, SPARK_CONF, args.repeats)
        print(json.dumps({"variants": variants}))
        return
    sys.path.insert(0, str(repo))
    if args.engine.startswith("feast"):
        import feast

        store: Any = feast.FeatureStore(repo_path=str(repo))
        import definitions

        store.apply([definitions.key, definitions.source, definitions.view])
    else:
        import repast

        store = repast.FeatureStore(repo_path=repo)
        store.apply_repo()
    features = [f"view:f{i}" for i in range(args.features)]
    entity = pq.read_table(work / "entity.parquet")
    frame: Any = entity.to_pandas() if args.engine.startswith("feast") else entity
    warm = frame.iloc[:1000] if args.engine.startswith("feast") else entity.slice(0, 1000)
    store.get_historical_features(warm, features).to_arrow()
    times = []
    result = None
    for _ in range(args.repeats):
        began = time.perf_counter()
        result = store.get_historical_features(frame, features).to_arrow()
        times.append(time.perf_counter() - began)
    assert result is not None
    result = result.select(["rid", *[f"f{i}" for i in range(args.features)]])
    pq.write_table(result, work / f"result-{args.engine}.parquet")
    out = {"seconds": times, "rows": result.num_rows}
    out["peak_rss_driver_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def generate_materialize(work: Path, args: argparse.Namespace) -> None:
    """`--materialize-rows` rows over a tenth as many keys, 8 Parquet files under `work/mat`."""
    rng = np.random.default_rng(4)
    n, keys = args.materialize_rows, max(1, args.materialize_rows // 10)
    (work / "mat").mkdir(exist_ok=True)
    per_file = -(-n // 8)
    for part in range(8):
        m = min(per_file, n - part * per_file)
        columns: dict[str, Any] = {
            "key": pa.array(rng.integers(0, keys, m), pa.int64()),
            "event_timestamp": pa.array(T0_US + rng.integers(0, 30 * DAY_US, m)).cast(TS),
        }
        for i in range(args.features):
            columns[f"f{i}"] = pa.array(rng.random(m))
        pq.write_table(pa.table(columns), work / "mat" / f"part-{part}.parquet")


# ttl 0 (no expiry) in both engines' views: the data is from 2024, and Repast's online reads
# judge a view's ttl against today, so the sample read back would be all nulls otherwise.


def _sample_keys(args: argparse.Namespace) -> list[int]:
    keys = max(1, args.materialize_rows // 10)
    return sorted({int(k) for k in np.random.default_rng(9).integers(0, keys, 2000)})


def _write_sample(work: Path, engine: str, values: dict[str, list[Any]]) -> None:
    pq.write_table(pa.table(values), work / f"online-{engine}.parquet")


def child_materialize(args: argparse.Namespace) -> None:
    """Materialize `work/mat` into a fresh redis-server `--repeats` times (flushed between
    runs), after a warm-up run over one day; then read back a sample of keys."""
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this venv (Feast's or ours)
    from services import start_redis_server

    work = Path(args.work)
    redis = start_redis_server(work / f"redis-{args.engine}")
    try:
        runner = _feast_materialize if args.engine.startswith("feast") else _repast_materialize
        print(json.dumps(runner(work, args, redis)))
    finally:
        redis.stop()


def _repast_materialize(work: Path, args: argparse.Namespace, redis: Any) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    import repast
    from repast.config import SparkBatchEngineConfig
    from repast.spark.materialize import materialize_view
    from repast.spark.session import spark_session
    from repast.types import Float64, Int64

    key = repast.Entity(name="key", join_keys=["key"])
    source = repast.FileSource(
        name="mat", path=str(work / "mat"), timestamp_field="event_timestamp"
    )
    fields = [repast.Field(name="key", dtype=Int64)]
    fields += [repast.Field(name=f"f{i}", dtype=Float64) for i in range(args.features)]
    view = repast.FeatureView(
        name="mat", entities=[key], ttl=timedelta(0), source=source, schema=fields
    )
    config = repast.RepoConfig(
        project="bench",
        registry=str(work / "mat-registry.json"),
        online_store={"type": "redis", "connection_string": redis.connection_string},
        batch_engine=SparkBatchEngineConfig(spark_conf=SPARK_CONF),
        repo_path=work,
    )
    store = repast.FeatureStore(config=config)
    store.apply([key, source, view])
    spark_session(SPARK_CONF)
    start = datetime.fromtimestamp(T0_US / 1e6, UTC)
    end = start + timedelta(days=31)
    materialize_view(store.context, view, start, start + timedelta(days=1))  # warm-up
    redis_flush(redis)
    runs = []
    for i in range(args.repeats):
        if i:
            redis_flush(redis)
        result = materialize_view(store.context, view, start, end)
        runs.append(
            {
                "seconds": result.seconds,
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "rows_per_second": result.rows_per_second,
                "worker_peak_rss_mb": result.worker_peak_rss_bytes / 2**20,
            }
        )
    keys = _sample_keys(args)
    names = [f"mat:f{i}" for i in range(args.features)]
    values = store.get_online_features(names, {"key": keys}).to_dict()
    _write_sample(work, args.engine, {k: values[k] for k in ["key", "f0", "f9"]})
    session = spark_session(SPARK_CONF)
    jvm = jvm_peak_rss_mb(session.sparkContext._gateway.proc.pid)
    session.stop()
    return {"runs": runs, "jvm_peak_rss_mb": jvm}


def _feast_materialize(work: Path, args: argparse.Namespace, redis: Any) -> dict[str, Any]:
    """Feast 0.67's `batch_engine: spark.engine` (its Spark compute engine) with its Spark
    offline store, the same Spark settings and a SparkSource over the same files."""
    from datetime import UTC, datetime, timedelta

    import feast
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64, Int64

    repo = work / "feast-mat"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo}/registry.db\nprovider: local\n"
        f"online_store: {{type: redis, connection_string: '{redis.connection_string}'}}\n"
        f"offline_store: {json.dumps({'type': 'spark', 'spark_conf': SPARK_CONF})}\n"
        f"batch_engine: {json.dumps({'type': 'spark.engine', 'partitions': 8})}\n"
        "entity_key_serialization_version: 3\n"
    )
    store = feast.FeatureStore(repo_path=str(repo))
    key = feast.Entity(name="key", join_keys=["key"])
    source = SparkSource(
        name="mat", path=str(work / "mat"), file_format="parquet",
        timestamp_field="event_timestamp",
    )  # fmt: skip
    fields = [feast.Field(name="key", dtype=Int64)]
    fields += [feast.Field(name=f"f{i}", dtype=Float64) for i in range(args.features)]
    view = feast.FeatureView(
        name="mat", entities=[key], ttl=timedelta(0), source=source, schema=fields
    )
    store.apply([key, source, view])
    start = datetime.fromtimestamp(T0_US / 1e6, UTC)
    end = start + timedelta(days=31)
    store.materialize(start, start + timedelta(days=1), ["mat"])  # warm-up
    redis_flush(redis)
    runs = []
    for i in range(args.repeats):
        if i:
            redis_flush(redis)
        began = time.perf_counter()
        store.materialize(start, end, ["mat"])
        seconds = time.perf_counter() - began
        runs.append(
            {
                "seconds": seconds,
                "rows_read": args.materialize_rows,
                "rows_per_second": args.materialize_rows / seconds,
            }
        )
    keys = _sample_keys(args)
    names = [f"mat:f{i}" for i in range(args.features)]
    values = store.get_online_features(names, [{"key": k} for k in keys]).to_dict()
    _write_sample(work, args.engine, {k: values[k] for k in ["key", "f0", "f9"]})
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    jvm = jvm_peak_rss_mb(session.sparkContext._gateway.proc.pid) if session else 0.0
    return {"runs": runs, "jvm_peak_rss_mb": jvm}


def jvm_peak_rss_mb(pid: int) -> float:
    """VmHWM of the driver's JVM (local mode: driver and executors are one JVM), which
    spark-submit starts as `pid` or as its child."""
    peaks = []
    for candidate in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    found = [int(c) for c in text.split()]
    return found + [g for c in found for g in _children(c)]


def redis_flush(server: Any) -> None:
    import redis

    client = redis.Redis(host=server.host, port=server.port)
    client.flushall()
    client.close()


# --- parent -------------------------------------------------------------------------------


def python_for(engine: str) -> str:
    if engine.startswith("feast"):
        return str(Path.home() / ".cache/repast/feast-venv/bin/python")
    return sys.executable


def run(engine: str, work: Path, args: argparse.Namespace, mode: str = "child") -> dict[str, Any]:
    repo = write_repo(work, engine, args.features) if mode == "child" else work
    command = [
        python_for(engine), __file__, f"--{mode}", "--engine", engine, "--work", str(work),
        "--repo", str(repo), "--features", str(args.features),
        "--repeats", str((args.feast_repeats or args.repeats) if engine.startswith("feast")
                         else args.repeats),
        "--materialize-rows", str(args.materialize_rows),
        "--materialize-engines", args.materialize_engines,
    ]  # fmt: skip
    sdk = str(ROOT / "sdk")
    if engine.endswith("-base"):  # the same engine from another tree's sdk (before/after)
        sdk = args.base_sdk
    env = {**os.environ, "PYTHONPATH": sdk} if engine.startswith("repast") else None
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode != 0:
        return {"error": done.stderr[-3000:]}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare(work: Path, engine: str, features: int) -> dict[str, Any]:
    base = pq.read_table(work / "result-repast-local.parquet").sort_by("rid")
    other = pq.read_table(work / f"result-{engine}.parquet").sort_by("rid")
    if base.num_rows != other.num_rows:
        return {"rows": [base.num_rows, other.num_rows]}
    differing = 0
    for i in range(features):
        a, b = base.column(f"f{i}").to_numpy(), other.column(f"f{i}").to_numpy()
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        differing = max(differing, int((~same).sum()))
    return {"rows_differing": differing, "rows": base.num_rows}


def compare_online(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The sampled online rows of each engine against Repast's (keys, f0 and f9 equal)."""
    base_path = work / "online-repast-spark.parquet"
    if not base_path.exists():
        return {}
    base = pq.read_table(base_path)
    out: dict[str, Any] = {"sampled_keys": base.num_rows, "nulls": base.column("f0").null_count}
    for engine in args.materialize_engines.split(","):
        path = work / f"online-{engine}.parquet"
        if engine != "repast-spark" and path.exists():
            other = pq.read_table(path)
            out[engine] = {
                name: sum(
                    a != b
                    for a, b in zip(
                        base.column(name).to_pylist(), other.column(name).to_pylist(), strict=True
                    )
                )
                for name in base.column_names
            } | {"schemas_equal": other.schema.equals(base.schema)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--source-rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    # Feast's engines are far slower at large sizes: fewer runs keep the benchmark bounded.
    parser.add_argument("--feast-repeats", type=int, default=0, help="default: --repeats")
    parser.add_argument("--materialize-rows", type=int, default=2_000_000)
    parser.add_argument("--engines", default="repast-local,repast-spark,feast-spark")
    parser.add_argument("--materialize-engines", default="repast-spark,feast-spark")
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument(
        "--base-sdk", default="", help="the sdk directory `repast-spark-base` imports repast from"
    )
    parser.add_argument("--json", default="")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--materialize", action="store_true")
    parser.add_argument("--engine", default="")
    parser.add_argument("--work", default="")
    parser.add_argument("--repo", default="")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.materialize:
        child_materialize(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = Path(tmp)
        generate(work, args)
        report: dict[str, Any] = {
            "machine": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_at_start": os.getloadavg(),
            },
            "entity_rows": args.entity_rows,
            "source_rows": args.source_rows,
            "features": args.features,
            "engines": {},
        }
        for engine in args.engines.split(","):
            figures = run(engine, work, args)
            figures["load_average_after"] = os.getloadavg()
            for variant in figures.get("variants", {}).values():
                variant["median_seconds"] = statistics.median(variant["seconds"])
            if "seconds" in figures:
                figures["median_seconds"] = statistics.median(figures["seconds"])
                if engine != "repast-local":
                    figures["agreement"] = compare(work, engine, args.features)
            report["engines"][engine] = figures
            print(engine, json.dumps(figures)[:400], flush=True)
        medians = {e: f.get("median_seconds") for e, f in report["engines"].items()}
        if medians.get("repast-spark") and medians.get("feast-spark"):
            report["feast_over_repast_spark"] = medians["feast-spark"] / medians["repast-spark"]
        if medians.get("repast-spark") and medians.get("repast-local"):
            report["repast_spark_over_local"] = medians["repast-spark"] / medians["repast-local"]
        if medians.get("repast-spark") and medians.get("repast-spark-base"):
            base = medians["repast-spark-base"]
            report["repast_spark_over_base"] = medians["repast-spark"] / base
        floors = report["engines"].get("spark-floor", {}).get("variants", {})
        for name, variant in floors.items():
            if medians.get("repast-local"):
                report[f"floor_{name}_over_local"] = (
                    variant["median_seconds"] / medians["repast-local"]
                )
            for engine in ("repast-spark", "repast-spark-base"):
                if medians.get(engine):
                    report[f"{engine.replace('-', '_')}_over_floor_{name}"] = (
                        medians[engine] / variant["median_seconds"]
                    )
        if args.materialize_rows:
            generate_materialize(work, args)
            report["materialize"] = {}
            for engine in args.materialize_engines.split(","):
                figures = run(engine, work, args, mode="materialize")
                if "runs" in figures:
                    rates = [r["rows_per_second"] for r in figures["runs"]]
                    figures["median_rows_per_second"] = statistics.median(rates)
                report["materialize"][engine] = figures
                print("materialize", engine, json.dumps(figures)[:600], flush=True)
            report["materialize_agreement"] = compare_online(work, args)
            rates = {e: f.get("median_rows_per_second") for e, f in report["materialize"].items()}
            if rates.get("repast-spark") and rates.get("feast-spark"):
                report["repast_over_feast_materialize"] = (
                    rates["repast-spark"] / rates["feast-spark"]
                )
        print(json.dumps({k: v for k, v in report.items() if k != "engines"}, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
