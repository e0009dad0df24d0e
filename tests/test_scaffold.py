from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from repast.errors import RepastError
from repast.scaffold import init_repo


def test_init_lays_out_a_repo(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "my-proj")
    assert sorted(p.name for p in repo.iterdir()) == [
        "data",
        "example_repo.py",
        "feature_store.yaml",
    ]
    assert "project: my_proj\n" in (repo / "feature_store.yaml").read_text()
    table = pq.read_table(repo / "data" / "driver_stats.parquet")
    assert table.num_rows == 5 * 15 * 24
    assert set(table.column("driver_id").to_pylist()) == {1001, 1002, 1003, 1004, 1005}
    assert table.schema.field("event_timestamp").type.tz == "UTC"


def test_minimal_writes_only_the_yaml(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "p", minimal=True)
    assert sorted(p.name for p in repo.iterdir()) == ["data", "feature_store.yaml"]


def test_refuses_to_overwrite_and_unknown_templates(tmp_path: Path) -> None:
    init_repo(tmp_path / "p")
    with pytest.raises(RepastError, match="already exists"):
        init_repo(tmp_path / "p")
    with pytest.raises(RepastError, match="unknown template 'gcp'; Repast ships: local"):
        init_repo(tmp_path / "q", template="gcp")
