"""The registry document (docs/internals.md): one JSON object per registry.

    {"schema_version": 1, "version_id": "<uuid4>", "last_updated": "<RFC 3339>",
     "projects": {"<project>": {"created_timestamp": ..., "last_updated_timestamp": ...,
                                "entities": {"<name>": {"spec": {...}, "meta": {...}}}, ...,
                                "infra": {...}}}}

Functions here work on plain dicts; the registry layer never imports the definition classes.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

import orjson

from repast.errors import RegistryError

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "Kind",
    "delete_project",
    "delete_record",
    "dumps",
    "ensure_project",
    "get_record",
    "loads",
    "new_document",
    "now_rfc3339",
    "put_record",
    "set_infra",
    "stamp",
    "update_meta",
    "validate",
]

SCHEMA_VERSION: Final = 1

Kind = Literal[
    "entities",
    "data_sources",
    "feature_views",
    "on_demand_feature_views",
    "stream_feature_views",
    "feature_services",
    "label_views",
]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds, e.g. `2024-01-01T10:00:00.000000Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_document() -> dict[str, Any]:
    """An empty registry: no projects, and a `version_id` no store has seen."""
    return {
        "schema_version": SCHEMA_VERSION,
        "version_id": str(uuid.uuid4()),
        "last_updated": now_rfc3339(),
        "projects": {},
    }


def stamp(doc: dict[str, Any]) -> None:
    """Give the document a new `version_id` and `last_updated` (done on every commit)."""
    doc["schema_version"] = SCHEMA_VERSION
    doc["version_id"] = str(uuid.uuid4())
    doc["last_updated"] = now_rfc3339()


def dumps(doc: Mapping[str, Any]) -> bytes:
    """Serialize deterministically: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def loads(data: bytes, location: str) -> dict[str, Any]:
    """Parse and validate stored bytes; errors name `location` (the registry's path or URI)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if _is_protobuf(data):
            raise RegistryError(
                f"registry {location} is a Feast registry (protobuf), not Repast's JSON "
                "registry. Point `registry:` in feature_store.yaml at a new file (e.g. "
                f"data/registry.json), then run `repast import-feast-registry {location}` "
                "(Feast's objects and materialization intervals) and `repast apply` (the "
                "repo's on-demand views, from its .py files); Feast's file is left as it is"
            ) from None
        raise RegistryError(
            f"registry {location} is corrupt: not valid JSON ({exc}); "
            "restore it from a backup or delete it and run `repast apply` again"
        ) from None
    validate(doc, location)
    return doc  # type: ignore[no-any-return]


def _is_protobuf(data: bytes) -> bool:
    """Whether `data` parses as protobuf wire format to its end (Feast's `Registry` message):
    a JSON document or random bytes do not."""
    pos, n = 0, len(data)

    def varint() -> int | None:
        nonlocal pos
        value = shift = 0
        while pos < n and shift < 64:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        return None

    if n == 0:
        return False
    while pos < n:
        key = varint()
        if key is None or key >> 3 == 0:
            return False
        wire = key & 7
        if wire == 0:
            if varint() is None:
                return False
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length = varint()
            if length is None:
                return False
            pos += length
        elif wire == 5:
            pos += 4
        else:
            return False
    return pos == n


def validate(doc: object, location: str) -> None:
    """Raise `RegistryError` unless `doc` has the registry document's shape."""

    def corrupt(what: str) -> RegistryError:
        return RegistryError(
            f"registry {location} is corrupt: {what}; "
            "restore it from a backup or delete it and run `repast apply` again"
        )

    if not isinstance(doc, dict):
        raise corrupt(f"expected a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise corrupt(f"bad or missing schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise RegistryError(
            f"registry {location} has schema_version {version}, but this Repast reads "
            f"schema_version {SCHEMA_VERSION}; it was written by a newer Repast: upgrade repast"
        )
    for key in ("version_id", "last_updated"):
        if not isinstance(doc.get(key), str):
            raise corrupt(f"'{key}' must be a string")
    projects = doc.get("projects")
    if not isinstance(projects, dict):
        raise corrupt("'projects' must be an object")
    for project, body in projects.items():
        if not isinstance(body, dict):
            raise corrupt(f"project '{project}' must be an object")
        for kind in KINDS:
            records = body.get(kind, {})
            if not isinstance(records, dict):
                raise corrupt(f"'{project}.{kind}' must be an object")
            for name, record in records.items():
                if (
                    not isinstance(record, dict)
                    or not isinstance(record.get("spec"), dict)
                    or not isinstance(record.get("meta"), dict)
                ):
                    raise corrupt(
                        f"'{project}.{kind}.{name}' must be {{'spec': {{}}, 'meta': {{}}}}"
                    )
        if not isinstance(body.get("infra", {}), dict):
            raise corrupt(f"'{project}.infra' must be an object")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind '{kind}'; expected one of {', '.join(KINDS)}")


def ensure_project(doc: dict[str, Any], project: str, now: str | None = None) -> dict[str, Any]:
    """The project's entry, created (with every kind empty) when missing."""
    projects: dict[str, Any] = doc.setdefault("projects", {})
    body = projects.get(project)
    if body is None:
        now = now or now_rfc3339()
        body = {"created_timestamp": now, "last_updated_timestamp": now, "infra": {}}
        body.update({kind: {} for kind in KINDS})
        projects[project] = body
    for kind in KINDS:
        body.setdefault(kind, {})
    return body


def delete_project(doc: dict[str, Any], project: str) -> bool:
    """Remove a project and everything in it; False when it did not exist."""
    return doc.get("projects", {}).pop(project, None) is not None


def get_record(doc: Mapping[str, Any], project: str, kind: str, name: str) -> dict[str, Any] | None:
    """`{"spec": ..., "meta": ...}` or None."""
    _check_kind(kind)
    record = doc.get("projects", {}).get(project, {}).get(kind, {}).get(name)
    return record  # type: ignore[no-any-return]


def put_record(
    doc: dict[str, Any],
    project: str,
    kind: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    meta: Mapping[str, Any] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Create or replace a record's spec (creating the project if needed).

    `meta.created_timestamp` survives updates; `last_updated_timestamp` is set to now, on the
    record and on the project. Other meta keys already stored (e.g. a feature view's
    `materialization_intervals`) are kept unless `meta` overrides them.
    """
    _check_kind(kind)
    now = now or now_rfc3339()
    body = ensure_project(doc, project, now)
    old = body[kind].get(name)
    new_meta: dict[str, Any] = dict(old["meta"]) if old is not None else {}
    new_meta.setdefault("created_timestamp", now)
    if meta:
        new_meta.update(meta)
    new_meta["last_updated_timestamp"] = now
    record = {"spec": copy.deepcopy(dict(spec)), "meta": copy.deepcopy(new_meta)}
    body[kind][name] = record
    body["last_updated_timestamp"] = now
    return record


def update_meta(
    doc: dict[str, Any],
    project: str,
    kind: str,
    name: str,
    meta: Mapping[str, Any],
    *,
    now: str | None = None,
) -> dict[str, Any]:
    """Merge `meta` into an existing record's meta (the spec is untouched); KeyError if absent."""
    _check_kind(kind)
    record = get_record(doc, project, kind, name)
    if record is None:
        raise KeyError(f"{project}/{kind}/{name}")
    now = now or now_rfc3339()
    record["meta"].update(copy.deepcopy(dict(meta)))
    record["meta"]["last_updated_timestamp"] = now
    doc["projects"][project]["last_updated_timestamp"] = now
    return record


def delete_record(doc: dict[str, Any], project: str, kind: str, name: str) -> bool:
    """Remove a record; False when it did not exist."""
    _check_kind(kind)
    body = doc.get("projects", {}).get(project)
    if body is None or body.get(kind, {}).pop(name, None) is None:
        return False
    body["last_updated_timestamp"] = now_rfc3339()
    return True


def set_infra(doc: dict[str, Any], project: str, infra: Mapping[str, Any]) -> None:
    """Replace the project's `infra` section (the tables/keys the stores created)."""
    body = ensure_project(doc, project)
    body["infra"] = copy.deepcopy(dict(infra))
    body["last_updated_timestamp"] = now_rfc3339()
