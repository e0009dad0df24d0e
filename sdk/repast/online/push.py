"""Push and write-to-online-store, one path for the SDK and the feature server alike.

`push_table` checks and encodes the rows for every target first (each view's online batch,
each batch source's offline append) and writes only then, so rows that one target refuses are
written to none. The server's JSON and an SDK dict of lists become Arrow the same way
(`online/frame.py`); pandas and Arrow tables are taken as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast.context import StoreContext
from repast.data_source import PushMode, PushSource
from repast.errors import DataSourceNotFoundError, RowsError
from repast.feature_view import FeatureView
from repast.offline.write import OfflineWrite, prepare_offline_write
from repast.online.base import WriteBatch, async_batch_writer
from repast.online.frame import frame, typed_sources
from repast.online.stored_types import scalar_map_inputs, zoned_inputs
from repast.online.tiles import check_events, tile_spec, tile_store, write_events
from repast.online.write import WritePlan, prepare, to_arrow
from repast.validate import closest

if TYPE_CHECKING:
    from repast.spark.write import SparkOfflineWrite

__all__ = [
    "PreparedPush",
    "commit",
    "commit_async",
    "prepare_push",
    "push",
    "push_table",
    "push_targets",
    "rows_table",
    "write_to_online_store",
]


@dataclass
class PreparedPush:
    """Rows checked and encoded for every target of a push; nothing written yet."""

    online: list[tuple[WritePlan, WriteBatch]] = field(default_factory=list)
    offline: list[OfflineWrite | SparkOfflineWrite] = field(default_factory=list)
    tiles: list[tuple[FeatureView, pa.Table]] = field(default_factory=list)
    """Events for aggregated views (`online/tiles.py`), folded into tiles at commit."""
    rows: int = 0


def push_targets(store: StoreContext, push_source_name: str) -> list[FeatureView]:
    """The views fed by the push source; a `DataSourceNotFoundError` naming close ones if none."""
    views = [
        v
        for v in store.catalog.online_feature_views(allow_cache=True)
        if isinstance(v.stream_source, PushSource) and v.stream_source.name == push_source_name
    ]
    if not views:
        sources = [
            s.name
            for s in store.catalog.objects("data_sources", allow_cache=True)
            if isinstance(s, PushSource)
        ]
        raise DataSourceNotFoundError(
            f"push source '{push_source_name}' does not exist in project '{store.project}' "
            f"or no feature view reads it{closest(push_source_name, sources)}"
        )
    return views


def rows_table(df: Any, views: Sequence[FeatureView]) -> pa.Table:
    """The rows as Arrow: a `{column: [values]}` dict typed by the views (as the server types
    its JSON), a pandas DataFrame or an Arrow table as given."""
    if isinstance(df, Mapping) and all(isinstance(v, list) for v in df.values()):
        lengths = {name: len(values) for name, values in df.items()}
        if len(set(lengths.values())) > 1:
            raise RowsError(f"every column must have the same length, got {lengths}")
        return frame(df, next(iter(lengths.values()), 0), views)
    if isinstance(df, pa.Table | pa.RecordBatch) or not hasattr(df, "columns"):
        return to_arrow(df)
    return _pandas_table(df, views)


def _zoned_array(values: list[Any], name: str) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RowsError(f"column '{name}' mixes text with other values: {exc}") from None


def _pandas_table(df: Any, views: Sequence[FeatureView]) -> pa.Table:
    """A DataFrame as Arrow; its object columns of ScalarMap features (dicts with int keys)
    and of ZonedTimestamp features (datetimes, perhaps in several zones) converted first, as
    Arrow cannot convert them as they are."""
    maps, zoned = typed_sources(views)
    special = [
        name
        for name in df.columns
        if (name in maps or name in zoned) and str(df[name].dtype) == "object"
    ]
    if not special:
        return to_arrow(df)
    table = to_arrow(df.drop(columns=special))
    for name in special:
        values = df[name].tolist()
        array = (
            scalar_map_inputs(values, name)
            if name in maps
            else _zoned_array(zoned_inputs(values, name), name)
        )
        table = table.append_column(name, array)
    return table


def prepare_push(
    store: StoreContext,
    views: Sequence[FeatureView],
    table: pa.Table,
    to: PushMode,
    what: str,
) -> PreparedPush:
    """Check and encode `table` for every target; raises before anything is written."""
    prepared = PreparedPush(rows=len(table))
    if to in (PushMode.OFFLINE, PushMode.ONLINE_AND_OFFLINE):
        # One append per batch source (views may share one).
        by_location: dict[str, OfflineWrite | SparkOfflineWrite] = {}
        for view in views:
            write = prepare_offline_write(store, view, table, what)
            by_location.setdefault(write.location, write)
        prepared.offline = list(by_location.values())
    if to in (PushMode.ONLINE, PushMode.ONLINE_AND_OFFLINE):
        for view in views:
            if tile_spec(view) is not None:
                tile_store(store.online_store, view.name)
                check_events(view, table, what)
                prepared.tiles.append((view, table))
                continue
            encoded = prepare(store, view, table, what)
            if encoded is not None:
                prepared.online.append(encoded)
    return prepared


def commit(store: StoreContext, prepared: PreparedPush) -> int:
    """Write what `prepare_push` made: online batches, then offline appends; rows written
    online."""
    online = store.online_store
    written = sum(online.write_batch(plan.online, batch) for plan, batch in prepared.online)
    version = store.config.entity_key_serialization_version
    for view, table in prepared.tiles:
        written += write_events(online, view, table, version, "push")
    for write in prepared.offline:
        write.commit()
    return written


async def commit_async(store: StoreContext, prepared: PreparedPush) -> int:
    """`commit` from the event loop: the store's own async writes when it has them (Redis),
    else, and for offline appends (Parquet files), a worker thread."""
    online = store.online_store
    writer = async_batch_writer(online)
    written = 0
    for plan, batch in prepared.online:
        if writer is None:
            written += await asyncio.to_thread(online.write_batch, plan.online, batch)
        else:
            written += await writer.write_batch_async(plan.online, batch)
    version = store.config.entity_key_serialization_version
    for view, table in prepared.tiles:
        written += await asyncio.to_thread(write_events, online, view, table, version, "push")
    for write in prepared.offline:
        await asyncio.to_thread(write.commit)
    return written


def push_table(
    store: StoreContext, views: Sequence[FeatureView], table: pa.Table, to: PushMode, what: str
) -> int:
    """Write `table` to every view in `views` (and their batch sources for offline modes), all
    checked before any is written; rows written online."""
    return commit(store, prepare_push(store, views, table, to, what))


def push(store: StoreContext, push_source_name: str, df: Any, to: PushMode) -> int:
    """`FeatureStore.push`: the rows to every view the push source feeds."""
    views = push_targets(store, push_source_name)
    what = f"push to '{push_source_name}'"
    return push_table(store, views, rows_table(df, views), to, what)


def write_to_online_store(store: StoreContext, feature_view_name: str, df: Any) -> int:
    """`FeatureStore.write_to_online_store`: the rows to one view, online."""
    view = store.catalog.online_feature_view(feature_view_name)
    table = rows_table(df, [view])
    return push_table(store, [view], table, PushMode.ONLINE, "write_to_online_store data")
