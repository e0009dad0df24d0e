"""`repast init`: lay out a new feature repo from a template."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from repast.errors import RepastError
from repast.templates.data import write_driver_stats

__all__ = ["TEMPLATES", "init_repo"]

TEMPLATES = ("local",)


def _project_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", directory.resolve().name).lstrip("_")
    return name or "my_project"


def init_repo(directory: Path, *, template: str = "local", minimal: bool = False) -> Path:
    """Create `<directory>/feature_repo` from a template and return its path.

    The project is named after the directory. `minimal` writes only `feature_store.yaml`.
    """
    if template not in TEMPLATES:
        raise RepastError(f"unknown template '{template}'; Repast ships: {', '.join(TEMPLATES)}")
    repo = directory / "feature_repo"
    if repo.exists() and any(repo.iterdir()):
        raise RepastError(f"{repo} already exists and is not empty; choose another directory")
    repo.mkdir(parents=True, exist_ok=True)
    source = resources.files("repast.templates").joinpath(template)
    yaml_text = source.joinpath("feature_store.yaml").read_text()
    (repo / "feature_store.yaml").write_text(
        yaml_text.replace("{project}", _project_name(directory))
    )
    if not minimal:
        (repo / "example_repo.py").write_text(source.joinpath("example_repo.py").read_text())
        write_driver_stats(repo / "data" / "driver_stats.parquet")
    (repo / "data").mkdir(exist_ok=True)
    return repo
