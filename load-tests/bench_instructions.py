"""Instructions per in-process call, counted by valgrind's callgrind: a figure that other load on
a shared machine does not move (the same binary and inputs give the same count), for comparing
two builds of Repast when wall-clock timings are too noisy to tell a few percent apart.

    .venv/bin/python load-tests/bench_instructions.py                      # this checkout
    .venv/bin/python load-tests/bench_instructions.py --repo ../other-checkout --calls 400

For each scenario the workload runs twice under callgrind, with 0 calls and with `--calls`
calls after the same set-up; the difference divided by the calls is the cost of one call,
start-up and set-up excluded. Scenarios, on the embedded SQLite online store (no network, so
the count is all Repast, Python and Arrow): `read 1x50` (`get_online_features`, one entity,
50 features of one view), `read 100x50`, and `write 1x50` (`write_to_online_store`, one row).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WORKLOAD = textwrap.dedent(
    """
    import sys, tempfile
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    from repast import Entity, FeatureStore, FeatureView, Field, FileSource
    from repast.types import Float64

    scenario, calls = sys.argv[1], int(sys.argv[2])
    repo = Path(tempfile.mkdtemp())
    (repo / "feature_store.yaml").write_text(
        "project: bench\\nregistry: registry.json\\nprovider: local\\n"
        "online_store: {type: sqlite, path: online.db}\\nentity_key_serialization_version: 3\\n"
    )
    names = [f"f{i}" for i in range(50)]
    now = datetime(2024, 1, 1, tzinfo=UTC)
    rows = 1000
    table = pa.table(
        {"driver_id": pa.array(np.arange(rows), pa.int64()),
         "event_timestamp": pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
         **{n: pa.array(np.random.default_rng(0).random(rows)) for n in names}}
    )
    pq.write_table(table, repo / "data.parquet")
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="wide", entities=[driver], ttl=timedelta(0),
        schema=[Field(name=n, dtype=Float64) for n in names],
        source=FileSource(name="src", path=str(repo / "data.parquet"),
                          timestamp_field="event_timestamp"),
    )
    store = FeatureStore(repo_path=repo)
    store.apply([driver, view])
    store.write_to_online_store("wide", table)
    refs = [f"wide:{n}" for n in names]
    one = {"driver_id": [7]}
    hundred = {"driver_id": list(range(100))}
    row = table.slice(7, 1)
    # One warm call so first-use caches (plans, statements) are set-up, not per-call cost.
    if scenario == "read 1x50":
        call = lambda: store.get_online_features(refs, one)
    elif scenario == "read 100x50":
        call = lambda: store.get_online_features(refs, hundred)
    else:
        call = lambda: store.write_to_online_store("wide", row)
    call()
    for _ in range(calls):
        call()
    """
)

SCENARIOS = ["read 1x50", "read 100x50", "write 1x50"]


def instructions(python: Path, script: Path, scenario: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                str(python),
                str(script),
                scenario,
                str(calls),
            ],
            check=True,
            capture_output=True,
            # Same hash seed every run: dict and set layouts, and so the count, repeat exactly.
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        if summary is None:
            raise RuntimeError(f"no summary line in {out}")
        return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--only", nargs="*", choices=SCENARIOS)
    args = parser.parse_args()
    python = args.repo.resolve() / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORKLOAD)
        for scenario in args.only or SCENARIOS:
            base = instructions(python, script, scenario, 0)
            loaded = instructions(python, script, scenario, args.calls)
            per_call = (loaded - base) / args.calls
            print(
                json.dumps(
                    {
                        "repo": str(args.repo),
                        "scenario": scenario,
                        "instructions_per_call": round(per_call),
                    }
                )
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
