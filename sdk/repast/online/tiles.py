"""Aggregated views online: raw events into per-entity tiles, tiles read as packed rows
(docs/aggregations.md, "Online").

An aggregated view stores, per entity, one value where other views store their packed row:
its tile set (`core-rs/src/aggregate/tiles.rs`). A write turns a batch of events into entity
keys, reads the stored tile sets of those entities, folds the events in (Rust), and writes the
sets back through the store's `TileStore.update_tiles`, which makes the read-modify-write safe
against concurrent writers. A read turns each stored set into the view's packed row as of now
(Rust), so every read path — the SDK's Arrow decode and the server's packed-row JSON — serves
aggregates as it serves any view.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.conversion import exact_cast
from repast.errors import MissingColumnError, OnlineStoreError, RepastError
from repast.online.base import Merge, OnlineView, PackedRows
from repast.types import Bytes, Float32, Float64, Int32, Int64, String

if TYPE_CHECKING:
    from repast.batch_feature_view import AggregatedView
    from repast.feature_view import FeatureView

__all__ = [
    "TileSpec",
    "TileStore",
    "check_events",
    "now_ns",
    "tile_spec",
    "tile_store",
    "write_events",
]

logger = logging.getLogger("repast.online.tiles")

_INTS = (Int32, Int64)
_FLOATS = (Float32, Float64)


def now_ns() -> int:
    """The clock tiles are pruned and read by (tests replace it)."""
    return time.time_ns()


class TileStore(Protocol):
    """A store that keeps aggregated views' tile sets and updates them atomically."""

    def update_tiles(self, view: OnlineView, keys: list[bytes], merge: Merge) -> None:
        """Read the stored sets of `keys` (no suffix), call `merge`, and store its result,
        so that no concurrent update of the same key is lost."""
        ...

    def read_packed(self, requests: Sequence[Any]) -> list[PackedRows]: ...

    async def read_packed_async(self, requests: Sequence[Any]) -> list[PackedRows]: ...


def tile_store(store: object, view_name: str) -> TileStore:
    """`store` as a `TileStore`, or an error naming what it lacks."""
    if getattr(store, "layout", None) == "feast":
        from repast.online.redis import tiles_need_packed

        raise OnlineStoreError(tiles_need_packed(view_name))
    if getattr(store, "update_tiles", None) is None or not getattr(
        store, "holds_packed_rows", False
    ):
        raise OnlineStoreError(
            f"feature view '{view_name}' serves windowed aggregations, which need an online "
            "store that keeps packed rows (SQLite, or Redis with layout: packed)"
        )
    return cast("TileStore", store)


@dataclass(frozen=True)
class TileSpec:
    """What the Rust tile kernels need of an aggregated view."""

    view: str
    specs: list[tuple[str, str, int]]
    """(function, input kind, window ns) per aggregation, in feature order."""
    columns: list[str]
    """Each aggregation's input column (after field_mapping)."""
    tile_ns: int
    timestamp_field: str
    lateness_ns: int | None = None
    """The stream source's `watermark_delay_threshold` (`repast stream` applies it)."""

    def read(self, stored: PackedRows, at_ns: int | None = None) -> PackedRows:
        """The view's packed rows as of `at_ns` (default: now), None where nothing is stored."""
        when = now_ns() if at_ns is None else at_ns
        return list(_core.tiles_read(self.specs, self.tile_ns, stored, when))


def _ns(delta: Any) -> int:
    return int(delta.total_seconds() * 1_000_000) * 1_000


def _input_kind(function: str, dtype: Any) -> str:
    if function in ("count", "count_distinct"):
        return "other"
    if dtype in _INTS and function in ("sum", "min", "max", "last", "mean", "avg"):
        return "int"
    if dtype in _INTS or dtype in _FLOATS:
        return "float"
    if function == "last" and dtype in (String, Bytes):
        return "text" if dtype == String else "binary"
    # Refused at apply for online views (docs/aggregations.md): kept so a spec always exists.
    return "other"


_SPECS: dict[int, tuple[Any, TileSpec]] = {}


def tile_spec(view: FeatureView) -> TileSpec | None:
    """The view's `TileSpec`, None for a view without aggregations (cached per view object)."""
    aggregations = getattr(view, "aggregations", None)
    if not aggregations:
        return None
    cached = _SPECS.get(id(view))
    if cached is not None and cached[0] is view:
        return cached[1]
    sfv = cast("AggregatedView", view)
    threshold = getattr(view.stream_source, "watermark_delay_threshold", None)
    types = sfv.input_types()
    spec = TileSpec(
        view=view.name,
        specs=[
            (a.function, _input_kind(a.function, types.get(a.column)), _ns(a.time_window))
            for a in aggregations
        ],
        columns=[a.column for a in aggregations],
        tile_ns=_ns(sfv.tile),
        timestamp_field=sfv.timestamp_field or view.batch_source.timestamp_field,
        lateness_ns=None if threshold is None else _ns(threshold),
    )
    if len(_SPECS) >= 256:
        del _SPECS[next(iter(_SPECS))]
    _SPECS[id(view)] = (view, spec)
    return spec


def _timestamps_ns(column: pa.ChunkedArray | pa.Array, name: str) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if not pa.types.is_timestamp(kind):
        raise RepastError(f"column '{name}' is {kind}, not a timestamp")
    return column.cast(pa.timestamp("ns", kind.tz)).cast(pa.int64())


def _entity_keys(view: FeatureView, table: pa.Table, version: int) -> pa.Array:
    n = table.num_rows
    if not view.join_keys:
        return _core.serialize_entity_keys(["__dummy_id"], [pa.array([""] * n)], [2], version)
    by_name = {f.name: f for f in view.entity_columns}
    arrays = []
    types = []
    for key in view.join_keys:
        target = by_name[key].dtype.to_arrow_type()
        column = table.column(key).combine_chunks()
        if column.type != target:
            column = exact_cast(column, target, f"column '{key}' ({column.type})", RepastError)
        arrays.append(column)
        types.append(int(by_name[key].dtype.to_value_type()))
    return _core.serialize_entity_keys(list(view.join_keys), arrays, types, version)


_sequence = 0


def _next_sequence(rows: int) -> int:
    """A base for the batch's arrival numbers: later batches number after earlier ones (ties
    of `last` go to the later arrival)."""
    global _sequence
    base = max(_sequence, time.time_ns())
    _sequence = base + rows
    return base


def _input(table: pa.Table, name: str, dtype: Any) -> pa.Array:
    """An input column as its declared type (JSON and pandas give ints as floats or nulls);
    a value that does not convert exactly is an error naming the column."""
    column = table.column(name).combine_chunks()
    if dtype is None or dtype not in (*_INTS, *_FLOATS):
        return column
    target = dtype.to_arrow_type()
    if column.type == target:
        return column
    return exact_cast(column, target, f"column '{name}' ({column.type})", RepastError)


def _mapped(view: FeatureView, table: pa.Table) -> pa.Table:
    mapping = dict(view.batch_source.field_mapping or {})
    if mapping:
        return table.rename_columns([mapping.get(c, c) for c in table.column_names])
    return table


def check_events(view: FeatureView, table: pa.Table, what: str) -> pa.Table:
    """`table` with the view's column names, or an error naming the columns it lacks."""
    spec = tile_spec(view)
    assert spec is not None
    table = _mapped(view, table)
    needed = [*view.join_keys, spec.timestamp_field, *dict.fromkeys(spec.columns)]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise MissingColumnError(
            f"{what} for feature view '{view.name}' lacks the columns {missing} "
            f"(it has {table.column_names})"
        )
    kind = table.schema.field(spec.timestamp_field).type
    if not pa.types.is_timestamp(kind):
        raise RepastError(
            f"{what} for feature view '{view.name}': column '{spec.timestamp_field}' is "
            f"{kind}, not a timestamp"
        )
    return table


def write_events(
    online: object,
    view: FeatureView,
    table: pa.Table,
    version: int,
    what: str,
    watermark: bool = False,
) -> int:
    """Folds `table`'s events (rows of the source's columns, after field_mapping names) into
    the view's tiles in `online`; returns the number of events taken. With `watermark` (the
    stream consumer's writes), events later than the source's `watermark_delay_threshold`
    behind their entity's newest stored event are dropped (docs/aggregations.md)."""
    spec = tile_spec(view)
    assert spec is not None
    store = tile_store(online, view.name)
    types = cast("AggregatedView", view).input_types()
    table = check_events(view, table, what)
    if table.num_rows == 0:
        return 0
    keys = _entity_keys(view, table, version)
    encoded = pc.dictionary_encode(keys)
    unique: list[bytes] = encoded.dictionary.to_pylist()
    entities = encoded.indices
    stamps = _timestamps_ns(table.column(spec.timestamp_field), spec.timestamp_field)
    columns = [(c, _input(table, c, types.get(c))) for c in spec.columns]
    seq = _next_sequence(table.num_rows)
    dropped = late = 0
    lateness = spec.lateness_ns if watermark else None

    def merge(stored: PackedRows) -> tuple[list[bytes], list[int]]:
        nonlocal dropped, late
        sets, newest, dropped, late = _core.tiles_update(
            spec.specs, spec.tile_ns, stored, entities, stamps, columns, seq, now_ns(), lateness
        )
        return sets, newest

    online_view = _online_view(view)
    store.update_tiles(online_view, unique, merge)
    _prune(online, online_view, spec)
    if dropped:
        logger.warning(
            "%s for feature view '%s': %d events older than the longest window were dropped",
            what,
            view.name,
            dropped,
        )
    if late:
        logger.warning(
            "%s for feature view '%s': %d events later than the watermark "
            "(watermark_delay_threshold behind their entity's newest event) were dropped",
            what,
            view.name,
            late,
        )
    return int(table.num_rows - dropped - late)


_PRUNE_EVERY_NS = 60 * 1_000_000_000
_pruned: dict[str, int] = {}


def _prune(online: object, view: OnlineView, spec: TileSpec) -> None:
    """At most once a minute per view, drop the sets of entities with no event in any window
    a read can still see (a store that can: SQLite; Redis prunes each set when it is written)."""
    prune = getattr(online, "prune_tiles", None)
    if prune is None:
        return
    now = now_ns()
    if now - _pruned.get(view.name, -_PRUNE_EVERY_NS) < _PRUNE_EVERY_NS:
        return
    _pruned[view.name] = now
    longest = max(window for _, _, window in spec.specs)
    prune(view, (now - longest - spec.tile_ns) // 1_000)


def _online_view(view: FeatureView) -> OnlineView:
    return OnlineView.of(view)
