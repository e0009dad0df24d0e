"""`get_historical_features`: turn feature references into point-in-time joins of the views'
sources (the Rust kernel in `repast.offline`), then run on-demand transformations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from repast.batch_feature_view import AggregatedView, aggregated_view
from repast.context import StoreContext
from repast.data_source import FileSource
from repast.errors import FeatureViewNotFoundError, RepastError
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.offline import (
    FeatureNameCollisionError,
    RetrievalJob,
    RetrievalMetadata,
    ViewJoin,
    infer_timestamp_column,
    point_in_time_join,
)
from repast.offline.aggregate import AggregateJoin, WindowedFeature, aggregate_as_of
from repast.offline.columns import timestamps_ns
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.online.read import FeatureNotFoundError
from repast.spark_source import SparkSource
from repast.validate import closest

__all__ = ["get_historical_features"]


@dataclass
class _Wanted:
    """One view (or projection of it) and the features asked of it, in request order."""

    name: str
    alias: str
    join_key_map: dict[str, str]
    features: list[str] = field(default_factory=list)


def _wanted(features: Sequence[str] | FeatureService) -> list[_Wanted]:
    if isinstance(features, FeatureService):
        return [
            _Wanted(p.name, p.name_to_use(), dict(p.join_key_map), [f.name for f in p.features])
            for p in features.feature_view_projections
        ]
    if isinstance(features, str):
        raise TypeError("features must be a list of 'view:feature' strings or a FeatureService")
    wanted: dict[str, _Wanted] = {}
    for ref in features:
        view, sep, feature = ref.partition(":")
        if not sep or not view or not feature:
            raise FeatureNotFoundError(f"feature reference '{ref}' must be 'view:feature'")
        wanted.setdefault(view, _Wanted(view, view, {})).features.append(feature)
    if not wanted:
        raise FeatureNotFoundError("No features specified for retrieval")
    return list(wanted.values())


def _entity_table(entity_df: Any) -> pa.Table:
    if isinstance(entity_df, pa.Table):
        return entity_df
    if isinstance(entity_df, pa.RecordBatch):
        return pa.Table.from_batches([entity_df])
    if isinstance(entity_df, str | os.PathLike):
        path = Path(entity_df)
        if not path.exists():
            raise RepastError(f"entity frame file {path} does not exist")
        return pq.read_table(path)
    if type(entity_df).__module__.startswith("pandas"):
        return pa.Table.from_pandas(entity_df, preserve_index=False)
    raise TypeError(
        "entity_df must be a pandas DataFrame, a pyarrow Table or a Parquet path, "
        f"got {type(entity_df).__name__}"
    )


def _checked_features(view: Any, requested: list[str]) -> list[str]:
    known = [f.name for f in view.features]
    for feature in requested:
        if feature not in known:
            raise FeatureNotFoundError(
                f"feature view '{view.name}' has no feature '{feature}'{closest(feature, known)}"
            )
    return requested or known


class _Resolver:
    def __init__(self, store: StoreContext) -> None:
        self.store = store
        self.views: dict[str, FeatureView] = {
            v.name: v
            for v in [
                *store.catalog.online_feature_views(allow_cache=True),
            ]
        }
        self.odfvs = {
            v.name: v for v in store.catalog.objects("on_demand_feature_views", allow_cache=True)
        }

    def view(self, name: str) -> FeatureView:
        view = self.views.get(name)
        if view is None:
            raise FeatureViewNotFoundError(
                f"feature view '{name}' does not exist in project '{self.store.project}'"
                f"{closest(name, [*self.views, *self.odfvs])}"
            )
        return view

    def join(self, wanted: _Wanted, outputs: list[tuple[str, str]]) -> ViewJoin | AggregateJoin:
        view = self.view(wanted.name)
        source = view.batch_source
        spark = self.store.config.offline_store.type == "spark"
        location: Any
        if isinstance(source, FileSource):
            location = (
                source.path if "://" in source.path else self.store.config.resolve(source.path)
            )
            location = str(location)
        elif isinstance(source, SparkSource) and spark:
            location = source  # read by the Spark job (repast.spark.sources)
        else:
            reads = (
                "FileSources and SparkSources"
                if spark
                else "FileSources (SparkSources with offline_store type spark)"
            )
            raise RepastError(
                f"feature view '{view.name}': its batch source '{source.name}' is a "
                f"{type(source).__name__}; historical retrieval reads {reads}"
            )
        aggregated = aggregated_view(view)
        if aggregated is not None:
            return _aggregate_join(aggregated, wanted, location, outputs)
        return ViewJoin(
            name=wanted.alias,
            source=location,
            entity_join_keys=[(wanted.join_key_map.get(k, k), k) for k in view.join_keys],
            timestamp_field=source.timestamp_field,
            created_timestamp_column=source.created_timestamp_column or None,
            field_mapping=dict(source.field_mapping),
            ttl=view.ttl or None,
            features=outputs,
        )


def _aggregate_join(
    view: AggregatedView, wanted: _Wanted, location: Any, outputs: list[tuple[str, str]]
) -> AggregateJoin:
    by_name = {a.resolved_name(a.time_window): a for a in view.aggregations}
    aggregates = []
    for feature, output in outputs:
        agg = by_name[feature]
        assert agg.time_window is not None  # apply refuses aggregations without a window
        aggregates.append(WindowedFeature(agg.function, agg.column, agg.time_window, output))
    source = view.batch_source
    return AggregateJoin(
        view=ViewJoin(
            name=wanted.alias,
            source=location,
            entity_join_keys=[(wanted.join_key_map.get(k, k), k) for k in view.join_keys],
            timestamp_field=view.timestamp_field or source.timestamp_field,
            field_mapping=dict(source.field_mapping),
            features=[(a.column, a.column) for a in aggregates],
        ),
        tile=view.tile,
        aggregates=aggregates,
    )


def _naive_times_as_utc(frame: pa.Table, timestamp_column: str) -> pa.Table:
    """The entity frame's naive timestamp column, marked UTC (how the join read it), as Feast
    returns it."""
    index = frame.column_names.index(timestamp_column)
    kind = frame.schema.field(index).type
    if not pa.types.is_timestamp(kind) or kind.tz is not None:
        return frame
    utc = frame.column(index).cast(pa.timestamp(kind.unit, tz="UTC"))
    return frame.set_column(index, timestamp_column, utc)


def _output_name(wanted: _Wanted, feature: str, full_names: bool) -> str:
    return f"{wanted.alias}__{feature}" if full_names else feature


def _run_odfv(
    odfv: OnDemandFeatureView, inputs: pa.Table, outputs: list[str], full_names: bool
) -> list[tuple[str, pa.ChunkedArray]]:
    """Run `odfv`'s udf over the joined frame; the requested outputs, named as requested."""
    udf = odfv.resolve_udf()
    if odfv.mode == "python":
        result = udf(inputs.to_pydict())
        out = pa.table({name: result[name] for name in outputs if name in result})
    else:
        out = pa.Table.from_pandas(udf(inputs.to_pandas()), preserve_index=False)
    missing = [name for name in outputs if name not in out.column_names]
    if missing:
        raise RepastError(f"on-demand feature view '{odfv.name}': its udf did not return {missing}")
    return [(f"{odfv.name}__{name}" if full_names else name, out.column(name)) for name in outputs]


@dataclass
class _Plan:
    joins: list[ViewJoin | AggregateJoin] = field(default_factory=list)
    # Per requested on-demand view: the view and the outputs asked of it.
    odfvs: list[tuple[OnDemandFeatureView, list[str]]] = field(default_factory=list)
    # Joined columns that feed a udf: (column in the joined frame, name the udf reads, name in
    # the output: Feast returns an on-demand view's inputs beside the features asked for).
    inputs: list[tuple[str, str, str]] = field(default_factory=list)


def _plan(resolver: _Resolver, features: Sequence[str] | FeatureService, full_names: bool) -> _Plan:
    plan = _Plan()
    for wanted in _wanted(features):
        odfv = resolver.odfvs.get(wanted.name)
        if odfv is None:
            view = resolver.view(wanted.name)
            outputs = [
                (f, _output_name(wanted, f, full_names))
                for f in _checked_features(view, wanted.features)
            ]
            plan.joins.append(resolver.join(wanted, outputs))
            continue
        outputs_of_odfv = _checked_features(odfv, wanted.features)
        plan.odfvs.append((odfv, outputs_of_odfv))
        for projection in odfv.source_feature_view_projections.values():
            source = _Wanted(
                projection.name,
                f"{odfv.name}:{projection.name_to_use()}",
                dict(projection.join_key_map),
                [f.name for f in projection.features],
            )
            view = resolver.view(source.name)
            outputs = []
            for f in _checked_features(view, source.features):
                hidden = f"__odfv_input__{source.alias}__{f}"
                shown = f"{projection.name_to_use()}__{f}" if full_names else f
                plan.inputs.append((hidden, f, shown))
                outputs.append((f, hidden))
            plan.joins.append(resolver.join(source, outputs))
    return plan


def _join(
    entity: pa.Table,
    timestamp_column: str,
    joins: list[ViewJoin | AggregateJoin],
    filter_by_created_timestamp: bool,
    store: StoreContext,
) -> pa.Table:
    """The point-in-time joins and the aggregates, their columns in request order."""
    plain = [j for j in joins if isinstance(j, ViewJoin)]
    offline = store.config.offline_store
    frame = point_in_time_join(
        entity,
        timestamp_column,
        plain,
        filter_by_created_timestamp,
        memory_limit=offline.memory_limit if offline.type != "spark" else None,
    )
    aggregated = [j for j in joins if isinstance(j, AggregateJoin)]
    if not aggregated:
        return frame
    entity_ts = timestamps_ns(
        entity.column(timestamp_column), f"entity frame column '{timestamp_column}'"
    )
    for join in aggregated:
        for (_, name), column in zip(
            join.features, aggregate_as_of(entity, entity_ts, join), strict=True
        ):
            frame = frame.append_column(name, column)
    order = [*entity.column_names, *(name for j in joins for _, name in j.features)]
    return frame.select(order)


def get_historical_features(
    store: StoreContext,
    entity_df: Any,
    features: Sequence[str] | FeatureService,
    full_feature_names: bool = False,
    filter_by_created_timestamp: bool = False,
) -> RetrievalJob:
    """A training frame: every entity row, in order, with each feature as of its timestamp.

    The plan (names, views, sources, collisions) is checked before this returns; the join
    itself runs on the first `to_arrow()` / `to_df()`.
    """
    spark_entity = None
    if store.config.offline_store.type == "spark":
        from repast.spark.retrieval import spark_entity_frame

        # Feast's Spark store also takes a Spark DataFrame or a Spark SQL query.
        spark_entity = spark_entity_frame(store.config, entity_df)
    if spark_entity is not None:
        entity = spark_entity.schema.empty_table()
    else:
        entity = _entity_table(entity_df)
    timestamp_column = infer_timestamp_column(entity.schema)
    plan = _plan(_Resolver(store), features, full_feature_names)
    hidden = {column for column, _, _ in plan.inputs}
    visible = [(j.name, f, o) for j in plan.joins for f, o in j.features if o not in hidden]
    visible += [
        (odfv.name, f, f"{odfv.name}__{f}" if full_feature_names else f)
        for odfv, outputs in plan.odfvs
        for f in outputs
    ]
    owners = {name: "the entity frame" for name in entity.column_names}
    for view, feature, name in visible:
        if name in owners:
            raise FeatureNameCollisionError(
                f"feature '{feature}' of '{view}' would be named '{name}', which {owners[name]} "
                "already uses; request it with full_feature_names=True"
            )
        owners[name] = f"'{view}'"
    for odfv, _ in plan.odfvs:
        for request in odfv.source_request_sources.values():
            missing = [f.name for f in request.schema if f.name not in entity.column_names]
            if missing:
                raise RepastError(
                    f"on-demand feature view '{odfv.name}' needs the request data columns "
                    f"{missing} in the entity frame"
                )

    def finish(frame: pa.Table) -> pa.Table:
        """The joined frame as returned: on-demand features computed, hidden inputs dropped."""
        if plan.odfvs:
            inputs = frame
            for column, short, _ in plan.inputs:
                if short not in inputs.column_names:
                    inputs = inputs.append_column(short, frame.column(column))
            # The inputs nothing else put in the frame are returned too (as Feast does), before
            # the on-demand outputs.
            shown: dict[str, str] = {}
            for column, _, name in plan.inputs:
                if name not in frame.column_names and name not in shown.values():
                    shown[column] = name
            frame = frame.select([c for c in frame.column_names if c not in hidden or c in shown])
            frame = frame.rename_columns([shown.get(c, c) for c in frame.column_names])
            for odfv, outputs in plan.odfvs:
                for name, column in _run_odfv(odfv, inputs, outputs, full_feature_names):
                    frame = frame.append_column(name, column)
        frame = frame.select([c for c in frame.column_names if c not in hidden])
        return _naive_times_as_utc(frame, timestamp_column)

    metadata = RetrievalMetadata.from_entity(
        entity, timestamp_column, features=[f"{view}:{feature}" for view, feature, _ in visible]
    )
    if store.config.offline_store.type == "spark":
        from repast.spark.retrieval import SparkRetrievalJob

        return SparkRetrievalJob(
            store.config,
            entity,
            timestamp_column,
            plan.joins,
            filter_by_created_timestamp,
            finish,
            odfv_outputs=_odfv_fields(plan, full_feature_names),
            entity_frame=None if spark_entity is None else spark_entity.frame,
            full_feature_names=full_feature_names,
            metadata=metadata,
        )

    def compute() -> pa.Table:
        frame = _join(entity, timestamp_column, plan.joins, filter_by_created_timestamp, store)
        return finish(frame)

    return RetrievalJob(compute, full_feature_names=full_feature_names, metadata=metadata)


def _odfv_fields(plan: _Plan, full_names: bool) -> list[tuple[str, pa.DataType]]:
    """The on-demand outputs' names and declared Arrow types, in output order."""
    fields = []
    for odfv, outputs in plan.odfvs:
        declared = {f.name: f.dtype for f in odfv.features}
        for name in outputs:
            fields.append(
                (f"{odfv.name}__{name}" if full_names else name, declared[name].to_arrow_type())
            )
    return fields
