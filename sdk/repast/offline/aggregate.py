"""Windowed aggregates as of each entity row's timestamp, from the raw events of a view's batch
source (docs/aggregations.md).

This module only prepares columns: the source's needed columns (files and row groups outside
the longest window pruned), the join keys as dense ids (Arrow's dictionary encoding over both
sides), and times as int64 nanoseconds. The Rust kernel (`repast._core.aggregate_as_of`)
computes every aggregate with the GIL released; `min`, `max` and `last` come back as event rows
and are gathered with Arrow `take`, so they keep the input column's type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.errors import OfflineStoreError
from repast.offline.columns import (
    KERNEL_TYPE,
    gather,
    key_columns,
    key_kind,
    raw_column,
    raw_time_column,
    single_array,
    timestamps_ns,
    where,
)
from repast.offline.join import open_source, read_source, time_bounds
from repast.offline.view import ViewJoin

__all__ = ["AggregateJoin", "WindowedFeature", "aggregate_as_of"]

# Functions whose kernel result is an event row to gather, not a value.
_GATHERED = frozenset({"min", "max", "last"})


def _ns(delta: timedelta) -> int:
    return (delta // timedelta(microseconds=1)) * 1_000


@dataclass(frozen=True)
class WindowedFeature:
    """One aggregation: `function` of source column `column` (after `field_mapping`) over
    `window`, returned as `output`."""

    function: str
    column: str
    window: timedelta
    output: str


@dataclass(frozen=True)
class AggregateJoin:
    """An aggregated view (or projection) of a training set: its source as a `ViewJoin` (whose
    `features` are the input columns) and the aggregations asked of it."""

    view: ViewJoin
    tile: timedelta
    aggregates: Sequence[WindowedFeature]

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def entity_join_keys(self) -> Sequence[tuple[str, str]]:
        """`(entity frame column, source column)` pairs, as `ViewJoin.entity_join_keys`."""
        return self.view.entity_join_keys

    @property
    def features(self) -> list[tuple[str, str]]:
        """`(feature, output column)` pairs, as `ViewJoin.features` gives them."""
        return [(a.function, a.output) for a in self.aggregates]


def _dense_ids(entity: pa.Array, events: pa.Array, kind: str) -> tuple[pa.Array, pa.Array]:
    both = pa.concat_arrays([entity.cast(KERNEL_TYPE[kind]), events.cast(KERNEL_TYPE[kind])])
    codes = pc.dictionary_encode(both).indices.cast(pa.int64())
    return codes.slice(0, len(entity)), codes.slice(len(entity))


def _key_ids(
    join: AggregateJoin, entity: pa.Table, source: pa.Table
) -> tuple[pa.Array | None, pa.Array | None]:
    """Equal join keys get equal dense ids on both sides; a null in any key column, null."""
    if not join.view.entity_join_keys:
        return None, None
    entity_keys, source_keys = key_columns(join.view, entity, source)
    ids: tuple[pa.Array, pa.Array] | None = None
    for (_, e_col), (_, s_col) in zip(entity_keys, source_keys, strict=True):
        kind = key_kind(e_col.type) or key_kind(s_col.type) or "integer"
        codes = _dense_ids(e_col, s_col, kind)
        if ids is None:
            ids = codes
            continue
        # Pair the ids so far with this column's, then make the pairs dense again.
        width = pa.scalar(len(e_col) + len(s_col), pa.int64())
        paired = [pc.add(pc.multiply(a, width), b) for a, b in zip(ids, codes, strict=True)]
        ids = _dense_ids(paired[0], paired[1], "integer")
    assert ids is not None
    return ids


def aggregate_as_of(
    entity: pa.Table, entity_ts: pa.Array, join: AggregateJoin
) -> list[pa.Array | pa.ChunkedArray]:
    """The join's aggregates for every entity row as of `entity_ts` (int64 nanoseconds), in
    `join.aggregates` order."""
    longest = max(a.window for a in join.aggregates)
    # A read at t sees events after the tile boundary at or before t - window: reach back one
    # tile more than the longest window when pruning the source.
    view = ViewJoin(
        name=join.view.name,
        source=join.view.source,
        entity_join_keys=join.view.entity_join_keys,
        timestamp_field=join.view.timestamp_field,
        features=join.view.features,
        field_mapping=join.view.field_mapping,
        ttl=longest + join.tile,
    )
    source = read_source(view, open_source(view, time_bounds(entity_ts)))
    entity_ids, event_ids = _key_ids(join, entity, source)
    ts_name = raw_time_column(view, view.timestamp_field, source.schema)
    event_ts = timestamps_ns(source.column(ts_name), where(view, ts_name))
    columns = {
        a.column: single_array(source.column(raw_column(view, a.column, source.schema)))
        for a in join.aggregates
    }
    requests = [(a.function, a.column, columns[a.column], _ns(a.window)) for a in join.aggregates]
    try:
        results = _core.aggregate_as_of(
            entity_ids, entity_ts, event_ids, event_ts, _ns(join.tile), requests
        )
    except _core.RepastError as exc:
        raise OfflineStoreError(f"feature view '{join.name}': {exc}") from exc
    gathered = gather(
        [
            (source, raw_column(view, a.column, source.schema), rows)
            for a, rows in zip(join.aggregates, results, strict=True)
            if a.function in _GATHERED
        ]
    )
    taken = iter(gathered)
    return [
        next(taken) if a.function in _GATHERED else result
        for a, result in zip(join.aggregates, results, strict=True)
    ]
