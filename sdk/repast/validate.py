"""Checks `apply` runs before anything is written, and schema inference from Parquet sources."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from repast.batch_feature_view import aggregated_view
from repast.data_source import DataSource, FileSource
from repast.entity import Entity
from repast.errors import RepoValidationError
from repast.repo import RepoContents
from repast.types import Bytes, Float32, Float64, Int32, Int64, String

__all__ = ["closest", "read_source_schema", "validate_repo"]


def closest(name: str, known: list[str]) -> str:
    """`"; did you mean 'x'?"` when a known name is close, else the list of known names."""
    match = difflib.get_close_matches(name, known, n=1)
    if match:
        return f"; did you mean '{match[0]}'?"
    if known:
        return f"; known: {', '.join(sorted(known))}"
    return "; none are defined"


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def read_source_schema(source: FileSource, resolve: Callable[[str], Path]) -> pa.Schema:
    """The Arrow schema of a FileSource's Parquet file or dataset folder."""
    path = resolve(source.path)
    if not path.exists():
        raise RepoValidationError(
            f"{type(source).__name__} '{source.name}': file {path} does not exist"
        )
    try:
        return ds.dataset(path, format="parquet", partitioning="hive").schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise RepoValidationError(
            f"{type(source).__name__} '{source.name}': cannot read {path} as Parquet: {exc}"
        ) from exc


def _source_column(source: DataSource, name: str) -> str:
    """The raw column that `field_mapping` renames to `name` (or `name` itself)."""
    for raw, mapped in (source.field_mapping or {}).items():
        if mapped == name:
            return str(raw)
    return name


def _check_view_against_source(
    view: Any, source: FileSource, schema: pa.Schema, where: str
) -> None:
    columns = set(schema.names)
    required: list[tuple[str, str]] = []
    if source.timestamp_field:
        required.append(("timestamp field", source.timestamp_field))
    if source.created_timestamp_column:
        required.append(("created timestamp column", source.created_timestamp_column))
    required += [("join key", _source_column(source, k)) for k in view.join_keys]
    if getattr(view, "aggregations", None):
        # Its features are computed; the source holds their inputs and the aggregation time.
        required.append(("aggregation timestamp", _source_column(source, view.timestamp_field)))
        required += [
            ("aggregation input", _source_column(source, f.name)) for f in view.aggregation_inputs
        ]
    else:
        required += [("feature", _source_column(source, f.name)) for f in view.features]
    for role, column in required:
        if column not in columns:
            raise RepoValidationError(
                f"{where}: {role} column '{column}' is not in {source.path}"
                f"{closest(column, sorted(columns))}"
            )


_VIEW_KINDS = ("feature_views", "stream_feature_views", "label_views", "on_demand_feature_views")


def _check_names(contents: RepoContents) -> None:
    seen: dict[str, str] = {}
    for kind in _VIEW_KINDS:
        for view in contents.section(kind):
            label = kind.replace("_", " ")[:-1]
            if view.name in seen:
                raise RepoValidationError(
                    f"duplicate name '{view.name}': used by a {seen[view.name]} and a {label}; "
                    "feature view names must be unique across all kinds of views"
                )
            seen[view.name] = label
    for kind, _ in (("entities", 0), ("data_sources", 0), ("feature_services", 0)):
        names = [obj.name for obj in contents.section(kind)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RepoValidationError(
                f"duplicate {kind.replace('_', ' ')} named {', '.join(map(repr, dupes))}"
            )


def _check_view(view: Any, entities: dict[str, Entity]) -> None:
    where = f"{type(view).__name__} '{view.name}'"
    for entity_name in view.entities:
        if entity_name != "__dummy" and entity_name not in entities:
            raise RepoValidationError(
                f"{where}: entity '{entity_name}' is not defined in the repo"
                f"{closest(entity_name, list(entities))}"
            )
    ttl = view.ttl
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl < timedelta(0)):
        raise RepoValidationError(f"{where}: ttl must be a non-negative timedelta, got {ttl!r}")
    names = [f.name for f in view.features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RepoValidationError(
            f"{where}: feature {', '.join(map(repr, dupes))} is declared twice"
        )
    clash = sorted(set(names) & set(view.join_keys))
    if clash:
        raise RepoValidationError(
            f"{where}: feature {', '.join(map(repr, clash))} has the name of a join key"
        )


_LAST_ONLINE = (Int32, Int64, Float32, Float64, String, Bytes)


def _check_aggregations(contents: RepoContents) -> None:
    # Online, `last` keeps its value in the tiles, which hold numbers, strings and bytes
    # (docs/aggregations.md).
    for declared in [*contents.feature_views, *contents.stream_feature_views]:
        view = aggregated_view(declared)
        if view is None or not view.online:
            continue
        types = view.input_types()
        for agg in view.aggregations:
            dtype = types.get(agg.column)
            if agg.function == "last" and dtype not in _LAST_ONLINE:
                raise RepoValidationError(
                    f"{type(view).__name__} '{view.name}': aggregation "
                    f"'{agg.resolved_name(agg.time_window)}': last of a {dtype} column is "
                    "computed offline only; online tiles keep integers, floats, strings and "
                    "bytes (set online=False)"
                )


def validate_repo(
    contents: RepoContents,
    resolve: Callable[[str], Path],
    *,
    skip_source_validation: bool = False,
) -> None:
    """Raise `RepoValidationError` for the first problem found; infer missing view schemas.

    Runs before the registry is touched, so a bad repo never writes anything.
    """
    _check_names(contents)
    _check_aggregations(contents)
    entities = {e.name: e for e in contents.entities}
    views: dict[str, Any] = {v.name: v for kind in _VIEW_KINDS for v in contents.section(kind)}
    schemas: dict[str, pa.Schema] = {}
    for view in [*contents.feature_views, *contents.stream_feature_views, *contents.label_views]:
        source = view.batch_source
        file_source = source if isinstance(source, FileSource) else None
        check_source = file_source is not None and not _is_remote(file_source.path)
        if file_source is not None and check_source and not skip_source_validation:
            if file_source.name not in schemas:
                schemas[file_source.name] = read_source_schema(file_source, resolve)
            schema = schemas[file_source.name]
            view.infer_schema(schema, entities)
        _check_view(view, entities)
        if file_source is not None and check_source and not skip_source_validation:
            _check_view_against_source(
                view, file_source, schemas[file_source.name], f"{type(view).__name__} '{view.name}'"
            )
    # Projections name features before the views' schemas are known; resolve them now.
    for odfv in contents.on_demand_feature_views:
        odfv.infer_features(views)
    for service in contents.feature_services:
        service.infer_features(views)
