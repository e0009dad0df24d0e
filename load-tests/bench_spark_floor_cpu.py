"""Issue 16's Spark floor in CPU seconds as well as wall time: the `spark-floor` variants
(load-tests/spark_floor.py), Repast on Spark and the local kernel, interleaved in one process
with one warm Spark session (bench_spark's settings and data), `repeats` rounds.

CPU is the driver JVM's (local mode: driver and executors are one JVM) plus its Python workers,
read from /proc, plus this process's own (the local kernel, the collect's Arrow on the driver):
on a machine shared with other jobs it moves far less than the wall time does.

    PYTHONPATH=sdk .venv/bin/python load-tests/bench_spark_floor_cpu.py 1000000 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_spark
import spark_floor


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        found += [c for child in children for c in _tree(int(child))]
    return found


def _cpu_seconds(jvm: int) -> float:
    ticks = 0
    for pid in _tree(jvm):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    own = resource.getrusage(resource.RUSAGE_SELF)
    return ticks / os.sysconf("SC_CLK_TCK") + own.ru_utime + own.ru_stime


def main() -> None:
    rows, repeats = int(sys.argv[1]), int(sys.argv[2])
    work = Path(f"/tmp/bench-spark-floor-cpu-{rows}")
    if not work.exists():
        bench_spark.generate(
            work, argparse.Namespace(source_rows=rows, entity_rows=rows, features=10)
        )
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import repast
    from repast.spark.session import spark_session

    features = [f"view:f{i}" for i in range(10)]
    entity = pq.read_table(work / "entity.parquet")
    stores = {}
    for engine in ("repast-spark", "repast-local"):
        store = repast.FeatureStore(repo_path=bench_spark.write_repo(work, engine, 10))
        store.apply_repo()
        store.get_historical_features(entity.slice(0, 1000), features).to_arrow()
        stores[engine] = store
    jvm = spark_session(bench_spark.SPARK_CONF).sparkContext._gateway.proc.pid
    jobs: dict[str, Callable[[], object]] = dict(
        spark_floor.floor_variants(work, 10, bench_spark.SPARK_CONF)
    )
    for engine, store in stores.items():
        jobs[engine] = lambda s=store: s.get_historical_features(entity, features).to_arrow()
    for job in jobs.values():
        job()  # warm-up
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            cpu, began = _cpu_seconds(jvm), time.perf_counter()
            job()
            wall = time.perf_counter() - began
            runs[name].append(
                (round(wall, 2), round(_cpu_seconds(jvm) - cpu, 2), os.getloadavg()[0])
            )
            print(name, runs[name][-1], flush=True)
    print(
        json.dumps(
            {
                name: {
                    "runs (wall s, cpu s, load)": r,
                    "median_wall": statistics.median(x[0] for x in r),
                    "median_cpu": statistics.median(x[1] for x in r),
                }
                for name, r in runs.items()
            }
        )
    )


if __name__ == "__main__":
    main()
