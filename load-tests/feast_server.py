"""Feast's own feature server for `bench_server.py --with-feast`: a benchmark-only virtualenv
with `feast[redis]` (~/.cache/repast/feast-venv, made on first use), a Feast repo holding
the same views and data as the Repast one, and the Repast/Feast ratios of a run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["FEAST_VENV", "build_feast_repo", "feast_python", "ratios"]

FEAST_VENV = Path.home() / ".cache" / "repast" / "feast-venv"


def feast_python() -> Path:
    python = FEAST_VENV / "bin" / "python"
    if not (FEAST_VENV / "bin" / "feast").exists():
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "-q", "-p", "3.11", str(FEAST_VENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(python), "feast[redis]"], check=True)
    return python


FEAST_REPO = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, PushSource
from feast.types import Float32, Float64, Int64
driver = Entity(name="driver", join_keys=["driver_id"])
types = [Float32, Float64, Int64]
for width in (50, 250):
    source = FileSource(name=f"src{width}", path="{repo}/wide%d.parquet" % width,
                        timestamp_field="event_timestamp")
    schema = [Field(name="driver_id", dtype=Int64)] + [
        Field(name=f"f{i}", dtype=types[i % 3]) for i in range(width)]
    # Feast registers module-level objects only.
    globals()[f"wide{width}"] = FeatureView(name=f"wide{width}", entities=[driver],
                                            schema=schema, source=source, ttl=timedelta(0))
    if width == 50:
        push = PushSource(name="bench_push", batch_source=source)
        pushed = FeatureView(name="pushed", entities=[driver], schema=schema, source=push,
                             ttl=timedelta(0))
"""

FEAST_LOAD = """
import sys, pyarrow.parquet as pq
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
for name in ("wide50", "wide250"):
    store.write_to_online_store(name, pq.read_table(f"{sys.argv[1]}/{name}.parquet").to_pandas())
"""


def build_feast_repo(repo: Path, source_repo: Path, redis_connection: str) -> Path:
    python = feast_python()
    repo.mkdir(parents=True)
    for width in (50, 250):
        shutil.copy(source_repo / f"wide{width}.parquet", repo / f"wide{width}.parquet")
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"online_store:\n  type: redis\n  connection_string: {redis_connection}\n"
        "entity_key_serialization_version: 3\n"
    )
    (repo / "repo.py").write_text(FEAST_REPO.replace("{repo}", str(repo)))
    feast = str(python.parent / "feast")
    for step in ([feast, "-c", str(repo), "apply"], [str(python), "-c", FEAST_LOAD, str(repo)]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{step[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return python


def ratios(repast: dict[str, Any], feast: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, ours in repast.items():
        theirs = feast.get(name)
        if not theirs:
            continue
        a, b = ours["summary"], theirs["summary"]
        out[name] = {
            "throughput_x": round(a["throughput_rps"] / b["throughput_rps"], 1)
            if b["throughput_rps"]
            else None,
            "feast_p99_over_repast_p99": round(b["p99_ms"] / a["p99_ms"], 1)
            if a["p99_ms"]
            else None,
            "feast_cpu_over_repast_cpu": round(
                b["server_cpu_ms_per_request"] / a["server_cpu_ms_per_request"], 1
            )
            if a["server_cpu_ms_per_request"]
            else None,
        }
    return out
