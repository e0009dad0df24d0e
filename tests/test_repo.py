from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pytest

from feature_repos import write_full_repo, write_repo
from repast.errors import RepoValidationError
from repast.repo import parse_repo, repo_files


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def names(items: Sequence[_Named]) -> list[str]:
    return sorted(item.name for item in items)


def test_collects_every_kind_and_implied_sources(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path)
    contents = parse_repo(repo)
    assert names(contents.entities) == ["customer", "driver"]
    assert names(contents.feature_views) == [
        "all_types",
        "customer_profile",
        "driver_fresh",
        "driver_stats",
    ]
    assert names(contents.stream_feature_views) == ["driver_stream"]
    assert names(contents.on_demand_feature_views) == ["conv_plus_bonus"]
    assert names(contents.feature_services) == ["aliased_service", "driver_service"]
    assert names(contents.data_sources) == [
        "customer_source",
        "driver_events",
        "driver_push",
        "driver_source",
        "request",
    ]


def test_ignore_files_and_hidden_folders(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path)
    (repo / "scratch").mkdir()
    (repo / "scratch" / "broken.py").write_text("raise RuntimeError('must not be imported')\n")
    (repo / ".hidden").mkdir()
    (repo / ".hidden" / "x.py").write_text("raise RuntimeError('hidden')\n")
    (repo / "venv").mkdir()
    (repo / "venv" / "pyvenv.cfg").write_text("")
    (repo / "venv" / "lib.py").write_text("raise RuntimeError('venv')\n")
    (repo / ".repastignore").write_text("# comment\nscratch/\n")
    assert [p.name for p in repo_files(repo)] == ["definitions.py"]
    parse_repo(repo)


def test_feastignore_is_honoured(tmp_path: Path) -> None:
    repo = write_full_repo(tmp_path)
    (repo / "notes.py").write_text("raise RuntimeError('ignored')\n")
    (repo / ".feastignore").write_text("notes.py\n")
    assert [p.name for p in repo_files(repo)] == ["definitions.py"]


def test_import_error_names_file_and_line(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, "x = 1\ny = undefined_name\n")
    with pytest.raises(RepoValidationError, match=r"definitions\.py \(line 2\).*NameError"):
        parse_repo(repo)


def test_same_name_defined_twice_differently(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        """
        from repast import Entity
        a = Entity(name="driver", join_keys=["driver_id"])
        """,
    )
    (repo / "other.py").write_text(
        "from repast import Entity\nb = Entity(name='driver', join_keys=['id'])\n"
    )
    with pytest.raises(
        RepoValidationError, match="duplicate entity 'driver'.*definitions.py.*other.py"
    ):
        parse_repo(repo)


def test_files_may_import_each_other(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        """
        from repast import Entity
        driver = Entity(name="driver", join_keys=["driver_id"])
        """,
    )
    (repo / "views.py").write_text(
        "from definitions import driver\n"
        "from repast import FeatureView, FileSource\n"
        "src = FileSource(name='s', path='data/driver_stats.parquet',"
        " timestamp_field='event_timestamp')\n"
        "fv = FeatureView(name='fv', entities=[driver], source=src)\n"
    )
    contents = parse_repo(repo)
    assert names(contents.entities) == ["driver"]
    assert names(contents.feature_views) == ["fv"]
