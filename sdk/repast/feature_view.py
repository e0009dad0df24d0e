"""`FeatureView` (`feast.feature_view`): features of one entity set, read from one source.

Source routing follows Feast: a stream source (Push/Kafka/Kinesis) becomes `stream_source`
and its `batch_source` becomes `batch_source`; any other source is the `batch_source`.
A view without entities uses the dummy entity `__dummy` (join key `__dummy_id`, value "").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa

from repast._spec import (
    check_bool,
    check_duration,
    check_name,
    check_str,
    check_tags,
    duration,
    fail,
    known,
    seconds,
)
from repast.data_source import (
    STREAM_SOURCE_TYPES,
    DataSource,
    RequestSource,
    data_source_from_dict,
    source_dict,
)
from repast.entity import Entity
from repast.field import Field, check_fields
from repast.projection import BaseFeatureView, FeatureViewProjection
from repast.types import FeastType, from_arrow_type, from_value_type
from repast.value_type import ValueType

__all__ = [
    "DUMMY_ENTITY",
    "DUMMY_ENTITY_ID",
    "DUMMY_ENTITY_NAME",
    "DUMMY_ENTITY_VAL",
    "FeatureView",
]

DUMMY_ENTITY_NAME = "__dummy"
DUMMY_ENTITY_ID = "__dummy_id"
DUMMY_ENTITY_VAL = ""
# Stored in the registry beside user entities, as Feast does.
DUMMY_ENTITY = Entity(name=DUMMY_ENTITY_NAME, join_keys=[DUMMY_ENTITY_ID])


class FeatureView(BaseFeatureView):
    """Features keyed by `entities`, read from `source`, looked back at most `ttl`.

    `entities` holds entity *names* (as Feast stores them); the Entity objects passed in
    are remembered so `join_keys` and the split of `schema` into `entity_columns` and
    `features` work before apply. `ttl=None` and `timedelta(0)` both mean unbounded.
    """

    view_type = "feature_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource | None = None,
        sink_source: DataSource | None = None,
        schema: list[Field] | None = None,
        entities: Sequence[Entity | str] | None = None,
        ttl: timedelta | None = timedelta(0),
        online: bool = True,
        offline: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        org: str = "",
        mode: str | None = None,
        enable_validation: bool = False,
        version: str = "latest",
        enabled: bool = True,
    ) -> None:
        kind = type(self).__name__
        self.name = check_name(kind, name)
        at = self._where()
        self.ttl: timedelta = check_duration(at, "ttl", ttl) or timedelta(0)
        self.batch_source, self.stream_source = _route_source(at, source)
        if sink_source is not None and not isinstance(sink_source, DataSource):
            fail(at, f"sink_source must be a DataSource, got {sink_source!r}")
        self.sink_source = sink_source
        self.entities: list[str] = []
        self._join_key_of: dict[str, str] = {}
        self._value_type_of: dict[str, ValueType] = {}
        for e in entities or []:
            if isinstance(e, Entity):
                self._join_key_of[e.name] = e.join_key
                self._value_type_of[e.name] = e.value_type
                e_name = e.name
            elif isinstance(e, str) and e:
                e_name = e
            else:
                fail(at, f"entities must be a list of Entity, got {e!r}")
            if e_name in self.entities:
                fail(at, f"entity {e_name!r} is listed twice")
            self.entities.append(e_name)
        if not self.entities:
            self.entities = [DUMMY_ENTITY_NAME]
        fields = check_fields(at, "schema", schema)
        self._check_field_mapping(fields)
        join_keys = set(self._join_key_of.values())
        self.entity_columns: list[Field] = [f for f in fields if f.name in join_keys]
        self.features: list[Field] = [f for f in fields if f.name not in join_keys]
        for entity_name, join_key in self._join_key_of.items():
            self._check_entity_dtype(entity_name, join_key)
        self.online = check_bool(at, "online", online)
        self.offline = check_bool(at, "offline", offline)
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.owner: str = check_str(at, "owner", owner)
        self.org: str = check_str(at, "org", org)
        self.mode: str | None = check_str(at, "mode", mode, optional=True)
        self.enable_validation = check_bool(at, "enable_validation", enable_validation)
        self.version: str = check_str(at, "version", version)
        self.enabled = check_bool(at, "enabled", enabled)
        self.projection = FeatureViewProjection.from_definition(self)

    # --- schema ------------------------------------------------------------------------------

    @property
    def schema(self) -> list[Field]:
        return [*self.entity_columns, *self.features]

    @property
    def join_keys(self) -> list[str]:
        """The view's join key names (empty for an entity-less view, as in Feast)."""
        if self.entities == [DUMMY_ENTITY_NAME]:
            return []
        from_columns = [f.name for f in self.entity_columns]
        if len(from_columns) >= len(self.entities) or not self._join_key_of:
            return from_columns
        return [self._join_key_of[e] for e in self.entities if e in self._join_key_of]

    def _check_field_mapping(self, fields: list[Field]) -> None:
        mapping = self.batch_source.field_mapping
        for f in fields:
            if f.name in mapping and f.name not in mapping.values():
                fail(
                    self._where(),
                    f"schema field {f.name!r} is a source column that field_mapping renames "
                    f"to {mapping[f.name]!r}; name the field {mapping[f.name]!r}",
                )

    def _check_entity_dtype(self, entity_name: str, join_key: str) -> None:
        declared = self._value_type_of.get(entity_name, ValueType.UNKNOWN)
        for f in self.entity_columns:
            mismatch = f.dtype.to_value_type() != declared != ValueType.UNKNOWN
            if f.name == join_key and mismatch:
                fail(
                    self._where(),
                    f"field {f.name!r} has dtype {f.dtype} but entity {entity_name!r} "
                    f"declares value type {declared.name}",
                )

    def infer_schema(
        self, source_schema: pa.Schema, entities_by_name: Mapping[str, Entity]
    ) -> None:
        """Fill what the definition left out from the batch source's Arrow schema (apply calls it).

        `entity_columns` gains every join key missing from it (typed by the entity's declared
        value type, else by the column); if `features` is empty it becomes every source
        column except join keys and the timestamp and created-timestamp columns. Source
        names are compared after `field_mapping`. Declared fields are never changed.
        """
        at = self._where()
        entities = [e for e in self.entities if e != DUMMY_ENTITY_NAME]
        for e in entities:
            entity = entities_by_name.get(e)
            if entity is not None:
                self._join_key_of[e] = entity.join_key
                self._value_type_of[e] = entity.value_type
            elif e not in self._join_key_of:
                fail(at, f"entity {e!r} is not defined{known(e, list(entities_by_name))}")
        source = self.batch_source
        skipped = {source.timestamp_field, source.created_timestamp_column}
        columns: dict[str, Any] = {}
        for col in source_schema:
            mapped = source.field_mapping.get(col.name, col.name)
            if col.name not in skipped and mapped not in skipped:
                columns[mapped] = col.type
        join_keys = [self._join_key_of[e] for e in entities]
        # Entities given by name leave their join key among the features until now.
        self.entity_columns += [f for f in self.features if f.name in join_keys]
        self.features = [f for f in self.features if f.name not in join_keys]
        have = {f.name for f in self.entity_columns}
        for e, jk in zip(entities, join_keys, strict=True):
            if jk in have:
                continue
            if jk not in columns:
                fail(
                    at,
                    f"join key {jk!r} of entity {e!r} is not a column of source "
                    f"{source.name!r}{known(jk, list(columns))}",
                )
            declared = self._value_type_of.get(e, ValueType.UNKNOWN)
            dtype = (
                from_value_type(declared)
                if declared != ValueType.UNKNOWN
                else self._arrow_dtype(jk, columns[jk])
            )
            self.entity_columns.append(Field(name=jk, dtype=dtype))
        for e, jk in zip(entities, join_keys, strict=True):
            self._check_entity_dtype(e, jk)
        if not self.features:
            self.features = [
                Field(name=name, dtype=self._arrow_dtype(name, arrow))
                for name, arrow in columns.items()
                if name not in join_keys
            ]
        projected = [f for f in self.projection.features if f.name not in join_keys]
        self.projection.features = projected or list(self.features)

    def _arrow_dtype(self, column: str, arrow_type: Any) -> FeastType:
        dtype = from_arrow_type(arrow_type)
        if dtype is None:
            fail(
                self._where(),
                f"column {column!r} has Arrow type {arrow_type}, which Repast cannot serve",
            )
        return dtype

    # --- dict form ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": list(self.entities),
            "entity_columns": [f.to_dict() for f in self.entity_columns],
            "features": [f.to_dict() for f in self.features],
            "ttl": seconds(self.ttl),
            "batch_source": source_dict(self.batch_source),
            "stream_source": source_dict(self.stream_source),
            "sink_source": source_dict(self.sink_source),
            "online": self.online,
            "offline": self.offline,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
            "org": self.org,
            "mode": self.mode,
            "enable_validation": self.enable_validation,
            "version": self.version,
            "enabled": self.enabled,
        }

    @classmethod
    def _kwargs_from_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        stream = d.get("stream_source")
        batch = d.get("batch_source")
        source = data_source_from_dict(stream) if stream else None
        if source is None and batch is not None:
            source = data_source_from_dict(batch)
        sink = d.get("sink_source")
        return {
            "name": d["name"],
            "source": source,
            "sink_source": None if sink is None else data_source_from_dict(sink),
            "entities": [e for e in d.get("entities", []) if e != DUMMY_ENTITY_NAME],
            "ttl": duration(d.get("ttl")),
            "online": d.get("online", True),
            "offline": d.get("offline", False),
            "description": d.get("description", ""),
            "tags": d.get("tags"),
            "owner": d.get("owner", ""),
            "org": d.get("org", ""),
            "enable_validation": d.get("enable_validation", False),
            "version": d.get("version", "latest"),
        }

    def _set_columns_from_dict(self, d: dict[str, Any]) -> None:
        self.entity_columns = [Field.from_dict(f) for f in d.get("entity_columns", [])]
        self.features = [Field.from_dict(f) for f in d.get("features", [])]
        self.projection = FeatureViewProjection.from_definition(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureView:
        view = cls(mode=d.get("mode"), enabled=d.get("enabled", True), **cls._kwargs_from_dict(d))
        view._set_columns_from_dict(d)
        return view

    def __repr__(self) -> str:
        source = self.stream_source or self.batch_source
        return (
            f"{type(self).__name__}(name={self.name!r}, entities={self.entities!r}, "
            f"features={[f.name for f in self.features]!r}, ttl={self.ttl!r}, "
            f"source={source!r})"
        )


def _route_source(at: str, source: object) -> tuple[DataSource, DataSource | None]:
    """(batch_source, stream_source) for the `source` argument."""
    if source is None:
        fail(at, "source is required (a FileSource, PushSource or KafkaSource)")
    if isinstance(source, BaseFeatureView):
        fail(at, "a view derived from another view (source=FeatureView) is not supported")
    if not isinstance(source, DataSource) or isinstance(source, RequestSource):
        fail(at, f"source must be a batch or stream DataSource, got {source!r}")
    if isinstance(source, STREAM_SOURCE_TYPES):
        batch = source.batch_source
        if batch is None:
            fail(
                at,
                f"stream source {source.name!r} has no batch_source; "
                "a stream source needs one to hold its rows offline",
            )
        return batch, source
    return source, None
