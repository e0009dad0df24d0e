from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from feature_repos import write_full_repo
from repast.cli import cli, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from repast.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_init_apply_plan_list_dump(tmp_path: Path) -> None:
    result = run("-c", str(tmp_path), "init", "demo")
    assert result.returncode == 0, result.stderr
    repo = tmp_path / "demo" / "feature_repo"
    assert (repo / "data" / "driver_stats.parquet").exists()

    applied = run("-c", str(repo), "apply")
    assert applied.returncode == 0, applied.stderr
    assert "Created entity driver" in applied.stdout
    assert "Created feature view driver_hourly_stats" in applied.stdout
    assert "Created on demand feature view transformed_conv_rate" in applied.stdout
    assert "Created feature service driver_activity_v1" in applied.stdout

    planned = run("-c", str(repo), "plan")
    assert planned.returncode == 0, planned.stderr
    assert "No changes to registry" in planned.stdout
    assert "Unchanged feature view driver_hourly_stats" in planned.stdout

    listed = run("-c", str(repo), "feature-views", "list")
    assert listed.stdout.split()[:3] == ["NAME", "ENTITIES", "TYPE"]
    assert "driver_hourly_stats_fresh" in listed.stdout

    dump = orjson.loads(run("-c", str(repo), "registry-dump").stdout)
    assert dump["project"] == "demo"
    assert sorted(dump["feature_services"]) == [
        "driver_activity_v1",
        "driver_activity_v2",
        "driver_activity_v3",
    ]


def test_feature_store_yaml_flag_and_tags_filter(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path / "repo")
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(repo), "apply"])
    assert result.exit_code == 0, result.output
    alt = tmp_path / "alt.yaml"
    alt.write_text((repo / "feature_store.yaml").read_text().replace("test_project", "other"))
    result = runner.invoke(cli, ["-c", str(repo), "-f", str(alt), "feature-views", "list"])
    assert result.exit_code == 0
    assert "driver_stats" not in result.output  # project 'other' is empty
    result = runner.invoke(
        cli, ["-c", str(repo), "feature-views", "list", "--tags", "team:drivers"]
    )
    assert "driver_stats" in result.output
    assert "customer_profile" not in result.output
    result = runner.invoke(cli, ["-c", str(repo), "entities", "describe", "driver"])
    assert orjson.loads(result.output)["join_key"] == "driver_id"


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path / "repo")
    (repo / "feature_store.yaml").write_text("project: p\nonline_store:\n  tpye: redis\n")
    result = run("-c", str(repo), "apply")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "feature_store.yaml" in result.stderr
    assert "online_store" in result.stderr

    result = run("-c", str(tmp_path / "missing"), "plan")
    assert result.returncode == 1
    assert "feature_store.yaml" in result.stderr


def test_unknown_object_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = write_full_repo(tmp_path / "repo")
    with pytest.raises(SystemExit) as exit_info:
        main(["-c", str(repo), "feature-views", "describe", "nope"])
    assert exit_info.value.code == 1
    assert "feature view 'nope' does not exist" in capsys.readouterr().err


def test_teardown(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path / "repo")
    assert run("-c", str(repo), "apply").returncode == 0
    result = run("-c", str(repo), "teardown")
    assert result.returncode == 0, result.stderr
    assert "test_project" not in run("-c", str(repo), "projects", "list").stdout


def test_get_historical_features(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path / "repo")
    runner = CliRunner()
    assert runner.invoke(cli, ["-c", str(repo), "apply"]).exit_code == 0
    rows = (
        '[{"driver_id": 1001, "event_timestamp": "2024-01-02T01:00:00Z"},'
        ' {"driver_id": 1002, "event_timestamp": "2023-12-31T00:00:00Z"}]'
    )
    result = runner.invoke(
        cli,
        ["-c", str(repo), "get-historical-features", "-d", rows, "-f", "driver_stats:trips"],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.strip().splitlines()]
    assert lines[0] == ["driver_id", "event_timestamp", "trips"]
    assert lines[1] == ["1001", "2024-01-02", "01:00:00+00:00", "3"]
    assert lines[2] == ["1002", "2023-12-31", "00:00:00+00:00"]  # before any data: empty
    bad = runner.invoke(
        cli, ["-c", str(repo), "get-historical-features", "-d", "{", "-f", "driver_stats:trips"]
    )
    assert bad.exit_code == 2
    assert "--dataframe" in bad.output


LABELS_REPO = """\
from repast import ConflictPolicy, Entity, Field, FileSource, LabelView, Project, PushSource
from repast.types import Int64, String

project = Project(name="labels", description="human labels")
driver = Entity(name="driver", join_keys=["driver_id"])
labels = LabelView(
    name="driver_quality_labels",
    entities=[driver],
    schema=[Field(name="is_reliable", dtype=Int64), Field(name="labeler", dtype=String)],
    source=PushSource(
        name="labels_push",
        batch_source=FileSource(
            name="labels_batch", path="data/labels.parquet", timestamp_field="event_timestamp"
        ),
    ),
    conflict_policy=ConflictPolicy.LAST_WRITE_WINS,
)
"""


def test_label_views_plan_apply_list_describe_and_dump(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        "project: labels\nregistry: data/registry.json\nprovider: local\n"
    )
    (repo / "labels.py").write_text(LABELS_REPO)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([0], pa.timestamp("us", tz="UTC")),
                "is_reliable": pa.array([1], pa.int64()),
                "labeler": ["ann"],
            }
        ),
        repo / "data" / "labels.parquet",
    )
    runner = CliRunner()
    planned = runner.invoke(cli, ["-c", str(repo), "plan"])
    assert "Created label view driver_quality_labels" in planned.output, planned.output
    applied = runner.invoke(cli, ["-c", str(repo), "apply"])
    assert applied.exit_code == 0, applied.output
    listed = runner.invoke(cli, ["-c", str(repo), "label-views", "list"])
    assert "driver_quality_labels" in listed.output
    described = runner.invoke(
        cli, ["-c", str(repo), "label-views", "describe", "driver_quality_labels"]
    )
    assert orjson.loads(described.output)["conflict_policy"] == "last_write_wins"
    dumped = orjson.loads(runner.invoke(cli, ["-c", str(repo), "registry-dump"]).output)
    assert "driver_quality_labels" in dumped["label_views"]
    assert dumped["spec"]["description"] == "human labels"
