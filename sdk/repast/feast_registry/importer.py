"""`repast import-feast-registry`: a Feast registry file (local or S3) into Repast's registry.

The Feast file is only read. `prepare` decodes and checks everything before anything is
written: a file that is not a whole Feast registry changes nothing. `FeatureStore.
import_feast_registry` then applies the definitions as `apply` does (one atomic registry
commit, which also creates the online tables), and `record_intervals` stores the feature views'
materialization intervals, so `materialize-incremental` continues from where Feast stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repast.context import StoreContext
from repast.errors import RegistryError
from repast.feast_registry.convert import Imported, RegistryFormatError, read_registry
from repast.registry import document

__all__ = ["DEFAULT_SOURCE", "prepare", "read_source", "record_intervals"]

DEFAULT_SOURCE = "data/registry.db"
"""Feast's default registry path (`feast init`), relative to the repo."""


def _location(store: StoreContext, source: str) -> str:
    if source.startswith("s3://"):
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else store.config.repo_path / path)


def read_source(store: StoreContext, source: str) -> bytes:
    """The bytes of the Feast registry at `source` (a path, relative to the repo, or s3://)."""
    location = _location(store, source)
    if location.startswith("s3://"):
        from repast.registry.s3_store import S3RegistryStore

        s3 = S3RegistryStore(location, endpoint_url=store.config.registry.s3_endpoint_override)
        try:
            found = s3.read()
        finally:
            s3.close()
        if found is None:
            raise RegistryError(f"no Feast registry at {location}: the object does not exist")
        return found[0]
    try:
        return Path(location).read_bytes()
    except FileNotFoundError:
        raise RegistryError(
            f"no Feast registry at {location}: the file does not exist (give its path or "
            "s3:// URI: `repast import-feast-registry PATH`)"
        ) from None
    except OSError as exc:
        raise RegistryError(f"cannot read the Feast registry {location}: {exc}") from None


def prepare(store: StoreContext, source: str = DEFAULT_SOURCE) -> Imported:
    """The objects of the store's project in the Feast registry at `source`, checked; nothing
    is written.

    Raises `RegistryError` when `source` is missing or not a Feast registry, or is the
    registry Repast itself is configured to use."""
    location = _location(store, source)
    target = store.config.registry_path
    if not target.startswith("s3://"):
        target = str(Path(target).resolve())
    if (location if location.startswith("s3://") else str(Path(location).resolve())) == target:
        raise RegistryError(
            f"{location} is the registry feature_store.yaml names for Repast; point "
            "`registry:` at a new file (e.g. data/registry.json) first: Feast's file is only "
            "read, and Repast writes its own registry"
        )
    data = read_source(store, source)
    if data.lstrip()[:1] == b"{":
        raise RegistryError(
            f"{location} is a JSON document, not a Feast (protobuf) registry; nothing imported"
        )
    try:
        imported = read_registry(data, store.project)
    except RegistryFormatError as exc:
        raise RegistryError(
            f"{location} is not a readable Feast registry ({exc}); nothing was imported"
        ) from None
    if not imported.objects:
        others = ", ".join(imported.other_projects) or "none"
        raise RegistryError(
            f"{location} holds nothing for project '{store.project}' (its projects: {others}); "
            "nothing was imported"
        )
    return imported


def record_intervals(store: StoreContext, imported: Imported) -> None:
    """Store the imported views' materialization intervals in Repast's registry."""
    if imported.intervals:
        store.registry.commit(lambda doc: _record_intervals(doc, store.project, imported))


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _record_intervals(doc: dict[str, Any], project: str, imported: Imported) -> None:
    for name, intervals in imported.intervals.items():
        for kind in ("feature_views", "stream_feature_views"):
            if document.get_record(doc, project, kind, name) is None:
                continue
            value = [[_iso(start), _iso(end)] for start, end in intervals]
            document.update_meta(doc, project, kind, name, {"materialization_intervals": value})
