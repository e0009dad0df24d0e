"""In-process `get_online_features` latency against Redis on loopback, `packed` vs `feast`.

    .venv/bin/python load-tests/bench_online_sdk.py               # 2000 runs per scenario
    .venv/bin/python load-tests/bench_online_sdk.py --runs 300    # quicker

Scenarios (issue 4 targets): 1 entity x 50 features (one view), 100 entities x 50 features,
50 entities x 20 views x 3 features. Data for 10 000 drivers is written with
`write_to_online_store` first. Baseline in the same run: the same keys read with a plain
redis-py pipeline of `HMGET` (feast layout fields, replies left undecoded), i.e. the round
trip alone without building keys, decoding or shaping a response. Prints medians and p99 in
milliseconds, one JSON line per measurement, then a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from services import start_redis_server  # noqa: E402

DRIVERS = 10_000
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)


def build(tmp: Path, connection: str, layout: str) -> Any:
    import pyarrow.parquet as pq

    from repast import Entity, FeatureStore, FeatureView, Field, FileSource
    from repast.config import RepoConfig
    from repast.types import Float32, Float64, Int64

    data = tmp / f"data-{layout}"
    data.mkdir()
    rng = np.random.default_rng(1)
    ids = pa.array(np.arange(DRIVERS), pa.int64())
    ts = pa.array([NOW] * DRIVERS, pa.timestamp("us", tz="UTC"))
    wide: dict[str, Any] = {"driver_id": ids, "event_timestamp": ts}
    types = [Float32, Float64, Int64]
    arrow = [pa.float32(), pa.float64(), pa.int64()]
    for i in range(50):
        wide[f"w{i}"] = pa.array(rng.random(DRIVERS) * 100, pa.float64()).cast(
            arrow[i % 3], safe=False
        )
    pq.write_table(pa.table(wide), data / "wide.parquet")
    config = RepoConfig.model_validate(
        {
            "project": "bench",
            "registry": str(tmp / f"registry-{layout}.json"),
            "online_store": {"type": "redis", "connection_string": connection, "layout": layout},
            "repo_path": tmp,
        }
    )
    store = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(
        name="wide_src", path=str(data / "wide.parquet"), timestamp_field="event_timestamp"
    )
    id_field = Field(name="driver_id", dtype=Int64)
    objects: list[Any] = [
        driver,
        FeatureView(
            name="wide",
            entities=[driver],
            schema=[id_field, *(Field(name=f"w{i}", dtype=types[i % 3]) for i in range(50))],
            source=source,
        ),
    ]
    for v in range(20):
        objects.append(
            FeatureView(
                name=f"narrow_{v}",
                entities=[driver],
                schema=[id_field, *(Field(name=f"w{i}", dtype=types[i % 3]) for i in range(3))],
                source=source,
            )
        )
    store.apply(objects)
    table = pa.table(wide)
    store.write_to_online_store("wide", table)
    for v in range(20):
        store.write_to_online_store(
            f"narrow_{v}", table.select(["driver_id", "event_timestamp", "w0", "w1", "w2"])
        )
    return store


def measure(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    for _ in range(max(20, runs // 20)):  # warm up: plans cached, connections open
        fn()
    samples = []
    for _ in range(runs):
        began = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def scenarios(rng: np.random.Generator) -> dict[str, tuple[list[str], int]]:
    return {
        "1 entity x 50 features": ([f"wide:w{i}" for i in range(50)], 1),
        "100 entities x 50 features": ([f"wide:w{i}" for i in range(50)], 100),
        "50 entities x 20 views x 3 features": (
            [f"narrow_{v}:w{i}" for v in range(20) for i in range(3)],
            50,
        ),
    }


def baseline(
    connection: str, features: list[str], entities: int, rng: np.random.Generator
) -> Callable[[], Any]:
    """The round trip alone: a redis-py pipeline of HMGET on feast-layout fields."""
    import redis

    from repast import _core

    host, port = connection.split(":")
    client = redis.Redis(host=host, port=int(port))
    by_view: dict[str, list[str]] = {}
    for ref in features:
        view, feature = ref.split(":")
        by_view.setdefault(view, []).append(feature)
    fields: list[bytes] = []
    for view, names in by_view.items():
        fields += _core.feature_field_names(view, names) + [f"_ts:{view}".encode()]

    def run() -> Any:
        ids = pa.array(rng.integers(0, DRIVERS, entities), pa.int64())
        keys = _core.serialize_entity_keys(["driver_id"], [ids], [4], 3, b"bench").to_pylist()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, fields)
        return pipe.execute()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
        work = Path(tmp)
        server = start_redis_server(work / "redis")
        try:
            stores = {
                layout: build(work, server.connection_string, layout)
                for layout in ("packed", "feast")
            }
            # The feast-layout store wrote last into the same Redis; packed rows live in their
            # own fields, so both layouts' data sit side by side in the same hashes.
            for name, (features, entities) in scenarios(rng).items():
                for layout, store in stores.items():

                    def run(
                        store: Any = store, features: list[str] = features, n: int = entities
                    ) -> Any:
                        ids = rng.integers(0, DRIVERS, n).tolist()
                        return store.get_online_features(
                            features, {"driver_id": ids}, full_feature_names=True
                        )

                    result = {"scenario": name, "layout": layout, **measure(run, args.runs)}
                    rows.append(result)
                    print(json.dumps(result))
                result = {
                    "scenario": name,
                    "layout": "baseline: redis-py HMGET pipeline, undecoded",
                    **measure(
                        baseline(server.connection_string, features, entities, rng), args.runs
                    ),
                }
                rows.append(result)
                print(json.dumps(result))
        finally:
            server.stop()
    print(f"\n{'scenario':<38}{'layout':<46}{'median ms':>10}{'p99 ms':>10}")
    for r in rows:
        print(f"{r['scenario']:<38}{r['layout']:<46}{r['median_ms']:>10.3f}{r['p99_ms']:>10.3f}")


if __name__ == "__main__":
    main()
