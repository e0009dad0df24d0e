"""Feast 0.67's own `feast init` template converts to Repast by its imports alone.

The test makes the template with Feast (test-only venv, tests/feast_venv.py), copies it, changes
`feast` to `repast` only in the import lines and in the `feast` CLI calls of test_workflow.py,
then runs `repast apply` and `python test_workflow.py` with this repo's venv, and the untouched
template with Feast. Both must run to the end; every step's online values must be Feast's, and
the historical frames must hold Feast's columns and values (rows compared by driver).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feast_venv import FEAST_DEMO_TIMES, convert, feast_env, feast_python, run

pytestmark = pytest.mark.timeout(1500)

# pandas would elide columns of a wide frame with "..."; the workflow itself runs unchanged.
RUN_WORKFLOW = (
    "import runpy, pandas as pd; "
    "pd.set_option('display.max_columns', None); pd.set_option('display.width', 100000); "
    "pd.set_option('display.max_colwidth', None); "
    "runpy.run_path('test_workflow.py', run_name='__main__')"
)
ONLINE_STEPS = (
    "Online features",
    "Online features retrieved (instead) through a feature service",
    "Online features retrieved (using feature service v3, which uses a feature view with a push "
    "source",
    "Online features again with updated values from a stream push",
)
FRAME_STEPS = ("Historical features for training", "Historical features for batch scoring")


def steps(output: str) -> dict[str, list[str]]:
    """The workflow's printed steps: `--- <title> ---` and the lines below it."""
    out: dict[str, list[str]] = {}
    title = ""
    for line in output.splitlines():
        match = re.fullmatch(r"--- (.*?) ?-{3}", line.strip())
        if match:
            title = match.group(1).strip()
            out[title] = []
        elif title and line.strip():
            out[title].append(line)
    return out


def online_values(lines: list[str]) -> dict[str, Any]:
    """`name  :  [values]` lines as {name: values}."""
    values: dict[str, Any] = {}
    for line in lines:
        name, sep, value = line.partition("  :  ")
        if sep:
            values[name.strip()] = ast.literal_eval(value.strip())
    return values


def frame(lines: list[str]) -> dict[str, dict[str, str]]:
    """A printed DataFrame as {driver_id: {column: cell}}. pandas right-aligns every column
    under its header, so a cell ends where its header ends (cells may hold spaces)."""
    header = lines[0]
    ends = [(m.group(), m.end()) for m in re.finditer(r"\S+", header)]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        if line.startswith("["):
            continue
        cells: dict[str, str] = {}
        start = 0
        for name, end in ends:
            cells[name] = line[start:end].strip()
            start = end
        cells[ends[0][0]] = cells[ends[0][0]].split()[-1]  # the index comes first
        rows[cells["driver_id"]] = cells
    return rows


def same_cell(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6)
    except ValueError:
        return a == b


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = feast_python()
    root = tmp_path_factory.mktemp("feast-template")
    run([str(python.parent / "feast"), "init", "demo"], root, feast_env())
    return root / "demo"


def test_feast_template_runs_converted(template: Path, tmp_path: Path) -> None:
    feast_repo = tmp_path / "feast"
    repast_repo = tmp_path / "repast"
    # Both start from the same generated data (the workflow appends to it by a push).
    shutil.copytree(template, feast_repo)
    shutil.copytree(template, repast_repo)
    convert(repast_repo / "feature_repo")
    converted = (repast_repo / "feature_repo" / "feature_definitions.py").read_text()
    assert "from repast import (" in converted
    assert "from feast" not in converted

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cwd = repast_repo / "feature_repo"
    applied = run(["repast", "apply"], cwd, env)
    assert "Created label view driver_quality_labels" in applied
    ours = steps(run([sys.executable, "-c", RUN_WORKFLOW], cwd, env))
    theirs = steps(
        run([str(feast_python()), "-c", RUN_WORKFLOW], feast_repo / "feature_repo", feast_env())
    )

    assert list(ours) == list(theirs)  # every step ran, in Feast's order, to the teardown
    for step in ONLINE_STEPS:
        assert online_values(ours[step]) == online_values(theirs[step]), step
    for step in FRAME_STEPS:
        # Rows by driver: Feast's file store sorts the batch-scoring rows, Repast keeps the
        # entity frame's order (docs/feast-compatibility.md §7).
        mine, feast = frame(ours[step]), frame(theirs[step])
        assert sorted(mine) == sorted(feast) == ["1001", "1002", "1003"]
        for driver, row in mine.items():
            assert list(row) == list(feast[driver]) or set(row) == set(feast[driver]), step
            for column, cell in row.items():
                if step.endswith("batch scoring") and column == "event_timestamp":
                    continue  # "now", taken by each run at its own time
                assert same_cell(cell, feast[driver][column]), (step, driver, column, cell)
    pushed = online_values(ours[ONLINE_STEPS[-1]])
    assert pushed["avg_daily_trips"][0] == 1000
    assert pushed["driver_metadata"][0] == {"rating": "5.0", "vehicle_type": "truck"}
    # The ONLINE_AND_OFFLINE push appended its row to the template's single Parquet file.
    import pyarrow.parquet as pq

    data = cwd / "data" / "driver_stats.parquet"
    original = pq.read_table(template / "feature_repo" / "data" / "driver_stats.parquet")
    assert pq.read_table(data).num_rows == original.num_rows + 1


FEAST_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'demo_%'"
FEAST_READ = (
    "from feast import FeatureStore; import json; print(json.dumps(FeatureStore('.')"
    ".get_online_features(features=['driver_hourly_stats:conv_rate', "
    "'driver_hourly_stats:avg_daily_trips'], entity_rows=[{'driver_id': 1001}, "
    "{'driver_id': 1002}]).to_dict()))"
)


def _feast_rows(path: Path) -> dict[str, list[Any]]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute(FEAST_TABLES)]
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1, 2').fetchall() for n in names}


def test_converting_in_place_shares_feasts_online_file(feast_demo: Path, tmp_path: Path) -> None:
    # A repo Feast has used holds Feast's protobuf registry and Feast's SQLite file. The
    # registry gets a message naming the import command; the online file is shared: Repast's
    # tables sit beside Feast's (never the same names), and Feast still reads its own.
    cwd = tmp_path / "demo" / "feature_repo"
    shutil.copytree(feast_demo.parent, cwd.parent)
    registry, online = cwd / "data" / "registry.db", cwd / "data" / "online_store.db"
    before_registry, before_rows = registry.read_bytes(), _feast_rows(online)
    assert sorted(before_rows) == [
        "demo_driver_hourly_stats",
        "demo_driver_hourly_stats_fresh",
        "demo_driver_quality_labels",
    ]
    feast_read = run([str(feast_python()), "-c", FEAST_READ], cwd, feast_env())
    convert(cwd)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["repast", "apply"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert f"registry {registry} is a Feast registry (protobuf)" in done.stderr
    assert "Point `registry:` in feature_store.yaml at a new file" in done.stderr
    assert f"run `repast import-feast-registry {registry}`" in " ".join(done.stderr.split())
    yaml = cwd / "feature_store.yaml"
    yaml.write_text(yaml.read_text().replace("data/registry.db", "data/registry.json"))
    applied = subprocess.run(
        ["repast", "apply"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert "Created feature view driver_hourly_stats" in applied.stdout, applied.stderr
    said = " ".join(applied.stderr.split())
    assert f"SQLite online store {online} also holds Feast's tables (demo_" in said
    assert "run `repast materialize` to load Repast's" in said
    start, _, end = FEAST_DEMO_TIMES
    run(["repast", "materialize", start, end], cwd, env)
    ours = json.loads(
        run(
            [
                "repast",
                "get-online-features",
                "-e",
                "driver_id=1001",
                "-f",
                "driver_hourly_stats:avg_daily_trips",
            ],
            cwd,
            env,
        )
    )
    assert ours["avg_daily_trips"] == [json.loads(feast_read)["avg_daily_trips"][0]]
    with sqlite3.connect(online) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "repast:demo:driver_hourly_stats" in names
    assert registry.read_bytes() == before_registry
    assert _feast_rows(online) == before_rows
    # Feast, on its own registry, still reads the same values from the shared file.
    (cwd / "feast.yaml").write_text(
        yaml.read_text().replace("data/registry.json", "data/registry.db")
    )
    read_again = "import shutil; shutil.copy('feast.yaml', 'feature_store.yaml'); " + FEAST_READ
    # (Parsed: Feast orders a view's features as a Python set, which varies between runs.)
    again = run([str(feast_python()), "-c", read_again], cwd, feast_env())
    assert json.loads(again) == json.loads(feast_read)
