"""The latest row per entity key of a stream of record batches, and what the materialization
engines (the local one in `repast.materialize`, Spark's in `repast.spark.materialize`) share:
the source columns a view reads and the size of the write batches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from repast import _core
from repast.config import RepoConfig
from repast.feature_view import FeatureView
from repast.online.tiles import tile_spec
from repast.online.write import entity_keys

__all__ = [
    "KEY",
    "READ_BATCH_ROWS",
    "latest_of",
    "materialized_columns",
    "source_columns",
    "write_rows",
]

READ_BATCH_ROWS = 65_536
WRITE_BATCH_ROWS = 10_000
KEY = "__repast_entity_key"


def source_columns(view: FeatureView) -> dict[str, str]:
    """view column name → source column name, for every column materialization reads."""
    source = view.batch_source
    inverse = {v: k for k, v in source.field_mapping.items()}
    names = [*view.join_keys, *(f.name for f in view.features), source.timestamp_field]
    if source.created_timestamp_column:
        names.append(source.created_timestamp_column)
    return {n: inverse.get(n, n) for n in dict.fromkeys(names)}


def materialized_columns(view: FeatureView) -> dict[str, str]:
    """view column name → source column name, for every column materialization reads: an
    aggregated view reads its aggregations' inputs, not its (aggregated) features."""
    aggregated = tile_spec(view)
    if aggregated is None:
        return source_columns(view)
    source = view.batch_source
    inverse = {v: k for k, v in source.field_mapping.items()}
    names = [*view.join_keys, *aggregated.columns, aggregated.timestamp_field]
    names.append(source.timestamp_field)
    if source.created_timestamp_column:
        names.append(source.created_timestamp_column)
    return {n: inverse.get(n, n) for n in dict.fromkeys(names)}


def latest_of(
    view: FeatureView,
    batches: Iterable[pa.RecordBatch],
    version: int,
    on_rows: Any = None,
    stats: dict[str, int] | None = None,
) -> pa.Table:
    """The latest row per entity key of `batches` (columns named as the view names them), with
    the key in `__repast_entity_key`; memory about 1.5 times the distinct keys."""
    source = view.batch_source
    state = _core.LatestState()
    winners: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if on_rows is not None:
            on_rows(batch.num_rows)
        if batch.num_rows == 0:
            continue
        keys = entity_keys(view, pa.Table.from_batches([batch]), version)
        created = (
            batch.column(source.created_timestamp_column)
            if source.created_timestamp_column
            else None
        )
        rows = state.update(keys, batch.column(source.timestamp_field), created)
        if len(rows):
            if len(rows) == batch.num_rows:  # every row a new winner: no copy needed
                kept = batch.append_column(KEY, keys)
            else:
                kept = batch.take(rows).append_column(KEY, keys.take(rows))
            winners.append(kept)
            held += kept.num_rows
        if stats is not None:
            stats["max_held"] = max(stats.get("max_held", 0), held)
        if held > len(state) + max(len(state) // 2, READ_BATCH_ROWS):
            # Drop superseded candidates: the table shrinks to one row per key.
            winners = _take(winners, state.compact())
            held = sum(b.num_rows for b in winners)
    if not winners:
        return pa.table({})
    return pa.Table.from_batches(_take(winners, state.winners()))


def _take(batches: list[pa.RecordBatch], ids: pa.Array) -> list[pa.RecordBatch]:
    """Rows `ids` (ascending, numbered across the batches) of the batches, batch by batch,
    dropping each source batch once taken from: memory peaks at the table plus its result
    so far, never two copies of it."""
    wanted = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=np.int64)
    ends = np.cumsum([b.num_rows for b in batches])
    cuts = np.searchsorted(wanted, ends)
    out: list[pa.RecordBatch] = []
    first, base = 0, 0
    for i, end in enumerate(ends.tolist()):
        batch, cut = batches[i], int(cuts[i])
        if cut > first:
            out.append(batch.take(pa.array(wanted[first:cut] - base)))
        batches[i] = batch.slice(0, 0)  # release the rows as soon as possible
        first, base = cut, end
    batches.clear()
    return out


def write_rows(config: RepoConfig) -> int:
    """Rows per online write batch (`materialization.online_write_batch_size`)."""
    return config.materialization.online_write_batch_size or WRITE_BATCH_ROWS
