"""Importing a feature repo: run its Python files and collect the definitions they create."""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repast.data_source import DataSource, PushSource
from repast.entity import Entity
from repast.errors import RepoValidationError
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.label_view import LabelView
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.project import Project
from repast.registry.document import Kind
from repast.stream_feature_view import StreamFeatureView

__all__ = ["KINDS", "RepoContents", "kind_label", "parse_repo", "repo_files"]

# Registry section name and the words used for it in plan output, in apply order.
KINDS: tuple[tuple[Kind, str], ...] = (
    ("entities", "entity"),
    ("data_sources", "data source"),
    ("feature_views", "feature view"),
    ("stream_feature_views", "stream feature view"),
    ("label_views", "label view"),
    ("on_demand_feature_views", "on demand feature view"),
    ("feature_services", "feature service"),
)
_LABELS: dict[str, str] = dict(KINDS)

# Never imported: tooling and virtualenv folders that may sit inside a repo.
_ALWAYS_IGNORED_DIRS = {"__pycache__", "site-packages", "node_modules"}


def kind_label(kind: str) -> str:
    return _LABELS[kind]


@dataclass
class RepoContents:
    """Every definition a repo declares, grouped by registry section."""

    entities: list[Entity] = field(default_factory=list)
    data_sources: list[DataSource] = field(default_factory=list)
    feature_views: list[FeatureView] = field(default_factory=list)
    stream_feature_views: list[StreamFeatureView] = field(default_factory=list)
    label_views: list[LabelView] = field(default_factory=list)
    on_demand_feature_views: list[OnDemandFeatureView] = field(default_factory=list)
    feature_services: list[FeatureService] = field(default_factory=list)
    # Project objects carry metadata, not a registry section (apply stores them on the project).
    projects: list[Project] = field(default_factory=list)

    def section(self, kind: str) -> list[Any]:
        items: list[Any] = getattr(self, kind)
        return items

    def add(self, obj: object) -> bool:
        """File `obj` under its section; False when it is not a definition."""
        if isinstance(obj, Project):
            if not any(p is obj or p == obj for p in self.projects):
                self.projects.append(obj)
            return True
        kind = _kind_of(obj)
        if kind is None:
            return False
        section = self.section(kind)
        if not any(existing is obj for existing in section):
            section.append(obj)
        return True

    @classmethod
    def from_objects(cls, objects: Iterable[object]) -> RepoContents:
        contents = cls()
        for obj in objects:
            if not contents.add(obj):
                raise RepoValidationError(
                    f"cannot apply {type(obj).__name__} {obj!r}: not a Repast definition"
                )
        contents.add_implied_sources()
        return contents

    def add_implied_sources(self) -> None:
        """Register the sources that views use even when the repo never names them globally."""
        views: list[Any] = [*self.feature_views, *self.stream_feature_views, *self.label_views]
        for view in views:
            for source in (view.batch_source, view.stream_source):
                if source is not None:
                    self._add_source(source)
        for odfv in self.on_demand_feature_views:
            for source in getattr(odfv, "source_request_sources", {}).values():
                self._add_source(source)

    def _add_source(self, source: DataSource) -> None:
        self.add(source)
        if isinstance(source, PushSource) and source.batch_source is not None:
            self.add(source.batch_source)
        inner = getattr(source, "batch_source", None)
        if isinstance(inner, DataSource):
            self.add(inner)

    def objects(self) -> Iterator[tuple[Kind, Any]]:
        for kind, _ in KINDS:
            for obj in self.section(kind):
                yield kind, obj


def _kind_of(obj: object) -> Kind | None:
    # StreamFeatureView and LabelView subclass FeatureView, so they are tested first.
    if isinstance(obj, StreamFeatureView):
        return "stream_feature_views"
    if isinstance(obj, LabelView):
        return "label_views"
    if isinstance(obj, FeatureView):
        return "feature_views"
    if isinstance(obj, OnDemandFeatureView):
        return "on_demand_feature_views"
    if isinstance(obj, Entity):
        return "entities"
    if isinstance(obj, FeatureService):
        return "feature_services"
    if isinstance(obj, DataSource):
        return "data_sources"
    return None


def _ignore_patterns(repo_path: Path) -> list[str]:
    patterns: list[str] = []
    for name in (".repastignore", ".feastignore"):
        ignore_file = repo_path / name
        if ignore_file.is_file():
            for line in ignore_file.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    patterns.append(line.rstrip("/"))
    return patterns


def _ignored(relative: Path, patterns: list[str]) -> bool:
    text = relative.as_posix()
    for pattern in patterns:
        # A pattern names a file or a folder (and then everything inside it), as in .gitignore.
        for candidate in [text, *(p.as_posix() for p in relative.parents if p != Path("."))]:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(candidate, f"**/{pattern}"):
                return True
    return False


def repo_files(repo_path: Path) -> list[Path]:
    """The repo's Python files, sorted, minus ignored ones, hidden folders and virtualenvs."""
    patterns = _ignore_patterns(repo_path)
    files = []
    for path in sorted(repo_path.rglob("*.py")):
        relative = path.relative_to(repo_path)
        parts = relative.parts[:-1]
        if any(p.startswith(".") or p in _ALWAYS_IGNORED_DIRS for p in parts):
            continue
        if any(
            (repo_path.joinpath(*parts[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(parts))
        ):
            continue
        if _ignored(relative, patterns):
            continue
        files.append(path)
    return files


def _import_file(repo_path: Path, path: Path) -> dict[str, Any]:
    relative = path.relative_to(repo_path).with_suffix("")
    module_name = ".".join(relative.parts)
    if relative.name == "__init__":
        module_name = ".".join(relative.parts[:-1]) or "__repast_repo__"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RepoValidationError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except RepoValidationError as exc:
        raise RepoValidationError(f"{path}: {exc}") from exc
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = next((f for f in reversed(frames) if Path(f.filename) == path), None)
        line = f" (line {where.lineno})" if where else ""
        raise RepoValidationError(
            f"{path}{line}: importing the repo file failed: {type(exc).__name__}: {exc}"
        ) from exc
    return vars(module)


def parse_repo(repo_path: Path) -> RepoContents:
    """Import every Python file of the repo and collect the definitions in their globals.

    Files import each other as in a normal package, so the repo folder goes on `sys.path` for
    the duration of the import.
    """
    repo_path = repo_path.resolve()
    contents = RepoContents()
    origin: dict[tuple[str, str], tuple[object, Path]] = {}
    added_to_path = str(repo_path) not in sys.path
    if added_to_path:
        sys.path.insert(0, str(repo_path))
    try:
        for path in repo_files(repo_path):
            for value in list(_import_file(repo_path, path).values()):
                if isinstance(value, Project):
                    contents.add(value)
                    continue
                kind = _kind_of(value)
                if kind is None:
                    continue
                name = getattr(value, "name", "")
                seen = origin.get((kind, name))
                if seen is not None and seen[0] is not value and seen[0] != value:
                    raise RepoValidationError(
                        f"duplicate {kind_label(kind)} '{name}': defined in {seen[1]} and in {path}"
                    )
                if seen is None:
                    origin[(kind, name)] = (value, path)
                    contents.add(value)
    finally:
        if added_to_path:
            sys.path.remove(str(repo_path))
    contents.add_implied_sources()
    return contents
