"""Feast's registry message (`feast.core.Registry`, docs/feast-compatibility.md and the field
numbers of Feast 0.67) turned into Repast definitions, without Feast installed.

Only what Repast can define is imported; every other object is listed in `Imported.skipped`
with the reason. On-demand views (and stream views with a udf) hold their transformation as a
dill-pickled Python function: unpickling runs arbitrary code, so they are never unpickled,
and their definitions must come from the repo's Python files (`repast apply`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from repast.aggregation import Aggregation
from repast.data_format import AvroFormat, JsonFormat, ProtoFormat, StreamFormat
from repast.data_source import DataSource, FileSource, KafkaSource, PushSource, RequestSource
from repast.entity import Entity
from repast.feast_registry.wire import Message, WireError, parse
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.field import Field
from repast.label_view import ConflictPolicy, LabelView
from repast.project import Project
from repast.projection import FeatureViewProjection
from repast.stream_feature_view import StreamFeatureView
from repast.types import FeastType, Struct, from_string, from_value_type
from repast.value_type import ValueType

__all__ = ["Imported", "RegistryFormatError", "Skipped", "read_registry"]

# feast.core.Registry
_VERSION_ID, _LAST_UPDATED = 4, 5
_ENTITIES, _FEATURE_VIEWS, _FEATURE_SERVICES, _ODFVS = 1, 6, 7, 8
_DATA_SOURCES, _STREAM_VIEWS, _PROJECT_METADATA, _PROJECTS, _LABEL_VIEWS = 12, 14, 15, 17, 19
# feast.core.DataSource.SourceType
_FILE, _KAFKA, _REQUEST, _PUSH = 1, 3, 7, 9
_SOURCE_TYPES = {
    2: "BigQuery",
    4: "Kinesis",
    5: "Redshift",
    6: "custom",
    8: "Snowflake",
    10: "Trino",
    11: "Spark",
    12: "Athena",
    13: "Iceberg",
}
_DUMMY_ENTITY = "__dummy"
_STRUCT_SCHEMA_TAG = "feast:struct_schema"
_CONFLICT_POLICIES = list(ConflictPolicy)  # Feast's enum numbers follow this order
_PICKLED = (
    "its transformation is a dill-pickled Python function, which Repast never unpickles "
    "(unpickling runs arbitrary code); run `repast apply` on the repo's .py files to define it"
)


class RegistryFormatError(ValueError):
    """The bytes are not a Feast registry Repast can read."""


@dataclass(frozen=True)
class Skipped:
    kind: str
    name: str
    reason: str


@dataclass
class Imported:
    """What a Feast registry holds for one project, as Repast definitions."""

    project: str
    objects: list[Any] = field(default_factory=list)
    intervals: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    """Materialization intervals per feature view and stream feature view, in Feast's order."""
    skipped: list[Skipped] = field(default_factory=list)
    other_projects: list[str] = field(default_factory=list)


def read_registry(data: bytes, project: str) -> Imported:
    """The objects of `project` in the serialized Feast registry `data`.

    Raises `RegistryFormatError` naming the byte offset when `data` is not a whole Feast
    registry (empty, truncated, corrupt)."""
    if not data:
        raise RegistryFormatError("the file is empty")
    try:
        registry = parse(data)
        return _Reader(registry, project).read()
    except WireError as exc:
        raise RegistryFormatError(f"{exc}; the file is cut short or corrupt") from None


class _Reader:
    def __init__(self, registry: Message, project: str) -> None:
        self.registry = registry
        self.out = Imported(project)
        self.project = project
        self.projects: set[str] = set()
        self.sources: dict[str, DataSource] = {}
        self.views: set[str] = set()
        # Aggregated stream views and the names of their entity columns.
        self.aggregated: dict[str, tuple[StreamFeatureView, set[str]]] = {}
        self.skipped_views: dict[str, str] = {}

    def _mine(self, name: str) -> bool:
        if name:
            self.projects.add(name)
        return name == self.project

    def _skip(self, kind: str, name: str, reason: str) -> None:
        self.out.skipped.append(Skipped(kind, name, reason))

    def read(self) -> Imported:
        reg = self.registry
        # Feast stamps every commit with version_id (4) and last_updated (5), written before
        # the feature views (6) and everything after them: a file without both is not a whole
        # Feast registry (cut short, or something else that happens to parse).
        if not (reg.has(_VERSION_ID) and reg.has(_LAST_UPDATED)):
            raise RegistryFormatError(
                "it lacks the version_id and last_updated every Feast registry has "
                "(truncated, or not a Feast registry)"
            )
        reg.text(_VERSION_ID)
        reg.timestamp(_LAST_UPDATED)
        for m in reg.msgs(_PROJECTS):
            spec = m.msg(1) or Message({}, m.base)
            if self._mine(spec.text(1)):
                self.out.objects.append(
                    Project(
                        name=spec.text(1),
                        description=spec.text(2),
                        tags=spec.map(3),
                        owner=spec.text(4),
                    )
                )
        for m in reg.msgs(_PROJECT_METADATA):
            self._mine(m.text(1))
        self._each(_ENTITIES, "entity", self._entity)
        self._each(_DATA_SOURCES, "data source", self._data_source, spec_field=None)
        self._each(_FEATURE_VIEWS, "feature view", self._feature_view)
        self._each(_STREAM_VIEWS, "stream feature view", self._stream_view)
        self._each(_LABEL_VIEWS, "label view", self._label_view)
        for m in reg.msgs(_ODFVS):
            spec = m.msg(1) or Message({}, m.base)
            if self._mine(spec.text(2)):
                self.skipped_views[spec.text(1)] = "on-demand feature view"
                self._skip("on-demand feature view", spec.text(1), _PICKLED)
        self._each(_FEATURE_SERVICES, "feature service", self._feature_service)
        self.out.other_projects = sorted(self.projects - {self.project})
        return self.out

    def _each(
        self,
        number: int,
        kind: str,
        convert: Callable[[Message], Any],
        spec_field: int | None = 1,
    ) -> None:
        for m in self.registry.msgs(number):
            spec = m if spec_field is None else (m.msg(spec_field) or Message({}, m.base))
            project = spec.text(21) if spec_field is None else spec.text(9 if number == 1 else 2)
            if not self._mine(project):
                continue
            name = spec.text(20 if spec_field is None else 1)
            try:
                made = convert(m)
            except _Skip as skip:
                self._skip(kind, name, str(skip))
                if number in (_FEATURE_VIEWS, _STREAM_VIEWS, _LABEL_VIEWS):
                    self.skipped_views[name] = kind
                continue
            except WireError:
                raise  # corrupt bytes inside the object: the whole file is refused
            except (ValueError, TypeError) as exc:  # Repast's own checks of the definition
                self._skip(kind, name, f"Repast refuses its definition: {exc}")
                if number in (_FEATURE_VIEWS, _STREAM_VIEWS, _LABEL_VIEWS):
                    self.skipped_views[name] = kind
                continue
            if made is not None:
                self.out.objects.append(made)

    # -- objects ----------------------------------------------------------------------------

    def _entity(self, m: Message) -> Entity | None:
        spec = m.msg(1) or Message({}, m.base)
        if spec.text(1) == _DUMMY_ENTITY:
            return None  # Feast's stand-in key for views without entities; Repast makes its own
        value_type = spec.number(2)
        return Entity(
            name=spec.text(1),
            join_keys=[spec.text(4)] if spec.text(4) else None,
            value_type=ValueType(value_type) if value_type else None,
            description=spec.text(3),
            tags=spec.map(8),
            owner=spec.text(10),
        )

    def _data_source(self, m: Message) -> DataSource | None:
        source = self._named(m)
        if any(o is source for o in self.out.objects):
            return None  # listed twice
        return source

    def _named(self, m: Message) -> DataSource:
        """One object per source name: a view's or push source's copy of a registered
        source is the registered one (apply refuses two definitions of one name)."""
        name = m.text(20)
        known = self.sources.get(name)
        if known is not None:
            return known
        source = self._source(m)
        if name:
            self.sources[name] = source
        return source

    def _source(self, m: Message) -> DataSource:
        kind = m.number(1)
        common: dict[str, Any] = {
            "name": m.text(20),
            "description": m.text(23),
            "tags": m.map(24),
            "owner": m.text(25),
        }
        stamps: dict[str, Any] = {
            "timestamp_field": m.text(3),
            "created_timestamp_column": m.text(5),
            "field_mapping": m.map(2),
        }
        if kind == _FILE:
            options = m.msg(11) or Message({}, m.base)
            file_format = options.msg(1)
            if file_format is not None and file_format.has(2):
                raise _Skip("a Delta Lake file source; Repast reads Parquet only")
            return FileSource(
                path=options.text(2),
                s3_endpoint_override=options.text(3) or None,
                **stamps,
                **common,
            )
        if kind == _PUSH:
            batch = m.msg(26)
            return PushSource(batch_source=None if batch is None else self._named(batch), **common)
        if kind == _REQUEST:
            options = m.msg(18) or Message({}, m.base)
            return RequestSource(schema=[_field(f) for f in options.msgs(3)], **common)
        if kind == _KAFKA:
            options = m.msg(13) or Message({}, m.base)
            batch = m.msg(26)
            return KafkaSource(
                kafka_bootstrap_servers=options.text(1),
                topic=options.text(2),
                message_format=_stream_format(options.msg(3)),
                watermark_delay_threshold=options.duration(4),
                batch_source=None if batch is None else self._named(batch),
                **stamps,
                **common,
            )
        what = _SOURCE_TYPES.get(kind, f"type {kind}")
        raise _Skip(f"a {what} source, which Repast has no counterpart for")

    def _view_source(self, m: Message | None) -> DataSource | None:
        return None if m is None else self._named(m)

    def _schema(self, spec: Message, entity_columns: int, features: int) -> list[Field]:
        # A stream view's features may repeat its entity columns; each name once.
        fields: dict[str, Field] = {}
        for f in (*spec.msgs(entity_columns), *spec.msgs(features)):
            made = _field(f)
            fields.setdefault(made.name, made)
        return list(fields.values())

    def _intervals(self, m: Message, name: str) -> None:
        meta = m.msg(2)
        if meta is None:
            return
        found = []
        for interval in meta.msgs(3):
            start, end = interval.timestamp(1), interval.timestamp(2)
            if start is not None and end is not None:
                found.append((start, end))
        if found:
            self.out.intervals[name] = found

    def _feature_view(self, m: Message) -> FeatureView:
        spec = m.msg(1) or Message({}, m.base)
        name = spec.text(1)
        if spec.texts(14) or spec.has(15):
            raise _Skip("it is computed from other views (source_views/feature_transformation)")
        stream = self._view_source(spec.msg(9))
        batch = self._view_source(spec.msg(7))
        view = FeatureView(
            name=name,
            source=stream or batch,
            schema=self._schema(spec, 12, 4),
            entities=_entities(spec.texts(3)),
            ttl=spec.duration(6) or timedelta(0),
            online=spec.flag(8),
            offline=spec.flag(13),
            description=spec.text(10),
            tags=spec.map(5),
            owner=spec.text(11),
            org=spec.text(19),
            mode=spec.text(16) or None,
            enable_validation=spec.flag(17),
            enabled=not spec.flag(20),
        )
        self._intervals(m, name)
        self.views.add(name)
        return view

    def _stream_view(self, m: Message) -> StreamFeatureView:
        spec = m.msg(1) or Message({}, m.base)
        name = spec.text(1)
        udf = spec.msg(13)
        if (udf is not None and udf.has(2)) or spec.has(17):
            raise _Skip(_PICKLED)
        source = self._view_source(spec.msg(11))
        if source is None:
            raise _Skip("it has no stream source")
        view = StreamFeatureView(
            name=name,
            source=source,
            schema=self._schema(spec, 5, 4),
            entities=_entities(spec.texts(3)),
            ttl=spec.duration(9) or timedelta(0),
            online=spec.flag(12),
            description=spec.text(6),
            tags=spec.map(7),
            owner=spec.text(8),
            org=spec.text(22),
            mode=spec.text(14) or "python",
            aggregations=[_aggregation(a) for a in spec.msgs(15)],
            timestamp_field=spec.text(16),
            enable_tiling=spec.flag(18),
            tiling_hop_size=spec.duration(19),
        )
        self._intervals(m, name)
        self.views.add(name)
        if view.aggregations:
            self.aggregated[name] = (view, {_field(f).name for f in spec.msgs(5)})
        return view

    def _label_view(self, m: Message) -> LabelView:
        spec = m.msg(1) or Message({}, m.base)
        name = spec.text(1)
        policy = spec.number(13)
        view = LabelView(
            name=name,
            source=self._view_source(spec.msg(7)),
            schema=self._schema(spec, 11, 4),
            entities=_entities(spec.texts(3)),
            ttl=spec.duration(6) or timedelta(0),
            online=spec.flag(8),
            description=spec.text(9),
            tags=spec.map(5),
            owner=spec.text(10),
            labeler_field=spec.text(12) or "labeler",
            conflict_policy=_CONFLICT_POLICIES[policy]
            if policy < len(_CONFLICT_POLICIES)
            else ConflictPolicy.LAST_WRITE_WINS,
            reference_feature_view=spec.text(15) or None,
        )
        self.views.add(name)
        return view

    def _feature_service(self, m: Message) -> FeatureService:
        spec = m.msg(1) or Message({}, m.base)
        projections = []
        for p in spec.msgs(3):
            view = p.text(1)
            if view in self.skipped_views:
                raise _Skip(f"it uses {self.skipped_views[view]} '{view}', which was skipped")
            if view not in self.views:
                raise _Skip(f"it uses '{view}', which the registry does not hold")
            features = [_field(f) for f in p.msgs(2)]
            if view in self.aggregated:
                features = _aggregated_features(*self.aggregated[view], features)
            projections.append(
                FeatureViewProjection(
                    view,
                    name_alias=p.text(3) or None,
                    features=features,
                    join_key_map=p.map(4),
                )
            )
        return FeatureService(
            name=spec.text(1),
            features=list(projections),
            tags=spec.map(4),
            description=spec.text(5),
            owner=spec.text(6),
            precompute_online=spec.flag(8),
        )


class _Skip(Exception):
    """An object Repast cannot define; the message says why."""


def _aggregated_features(
    view: StreamFeatureView, keys: set[str], named: list[Field]
) -> list[Field]:
    """A projection's features of an aggregated view. Feast lists the view's input columns
    (its `schema`), Repast serves the aggregations: all of the inputs select the whole view
    (every aggregation, as `apply` of the same service makes it), some of them select the
    aggregations over those columns."""
    names = [f.name for f in named]
    outputs = {f.name for f in view.features}
    if all(n in outputs for n in names):
        return named
    if set(names) >= {f.name for f in view.aggregation_inputs} - keys:
        return []
    return [
        field
        for agg, field in zip(view.aggregations, view.features, strict=True)
        if agg.column in names
    ]


def _entities(names: list[str]) -> list[str]:
    return [n for n in names if n != _DUMMY_ENTITY]


def _aggregation(m: Message) -> Aggregation:
    """A `feast.core.Aggregation`; Repast's own checks refuse what it cannot compute."""
    return Aggregation(
        column=m.text(1),
        function=m.text(2),
        time_window=m.duration(3),
        slide_interval=m.duration(4),
        name=m.text(5) or None,
    )


def _field(m: Message) -> Field:
    """A `FeatureSpecV2` as a Field."""
    tags = m.map(3)
    value_type = m.number(2)
    dtype: FeastType
    if value_type == ValueType.STRUCT and _STRUCT_SCHEMA_TAG in tags:
        dtype = _struct(json.loads(tags.pop(_STRUCT_SCHEMA_TAG)))
    else:
        dtype = from_value_type(ValueType(value_type))
    return Field(
        name=m.text(1),
        dtype=dtype,
        description=m.text(4),
        tags=tags,
        vector_index=m.flag(5),
        vector_length=m.number(7),
        vector_search_metric=m.text(6) or None,
    )


def _struct(schema: dict[str, Any]) -> Struct:
    """Feast's `feast:struct_schema` tag: field name -> a ValueType name, a type's string form,
    or a nested schema."""
    fields: dict[str, FeastType] = {}
    for name, kind in schema.items():
        if isinstance(kind, dict):
            fields[name] = _struct(kind)
        elif isinstance(kind, str) and kind in ValueType.__members__:
            fields[name] = from_value_type(ValueType[kind])
        else:
            fields[name] = from_string(str(kind))
    return Struct(fields)


def _stream_format(m: Message | None) -> StreamFormat:
    if m is None:
        raise _Skip("its Kafka source has no message format")
    if m.has(3):
        return JsonFormat(schema_json=(m.msg(3) or Message({}, m.base)).text(1))
    if m.has(1):
        return AvroFormat(schema_json=(m.msg(1) or Message({}, m.base)).text(1))
    if m.has(2):
        return ProtoFormat(class_path=(m.msg(2) or Message({}, m.base)).text(1))
    raise _Skip("its Kafka source has a message format Repast does not know")
