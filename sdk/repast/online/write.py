"""Rows → online store: the encoder that materialization, stream ingestion and every push
(`online/push.py`) share. A table (pandas or Arrow) gets the source's `field_mapping`, typed
columns, entity keys built in Rust, and one row per key (the latest event time; the first of
equal ones).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.config import SqliteOnlineStoreConfig
from repast.context import StoreContext
from repast.conversion import BAD_VALUES, exact_cast, has_hidden_bools
from repast.errors import MissingColumnError, RepastError, RowsError
from repast.feature_view import FeatureView
from repast.online.base import (
    TIMESTAMP,
    OnlineView,
    WriteBatch,
    last_rows,
    latest_rows,
)
from repast.online.stored_types import (
    CHECKED_TEXT,
    JSON_TEXT,
    SETS,
    ZONED,
    check_text,
    to_json_text,
    to_zoned_text,
    unique_sets,
)
from repast.validate import closest

__all__ = [
    "MissingColumnError",
    "RowsError",
    "WritePlan",
    "epoch_nanos",
    "entity_keys",
    "prepare",
    "to_arrow",
    "write_batch",
    "write_plan",
    "write_table",
]


logger = logging.getLogger(__name__)


def to_arrow(df: Any) -> pa.Table:
    """A pyarrow Table from a Table, a pandas DataFrame or a `{column: [values]}` dict."""
    if isinstance(df, pa.Table):
        return df
    if isinstance(df, pa.RecordBatch):
        return pa.Table.from_batches([df])
    if isinstance(df, dict):
        try:
            table = pa.table(df)
        except BAD_VALUES as exc:
            # Ragged columns, mixed or nested values: about the rows given, like every other
            # refusal of them (a typed error, not pyarrow's).
            raise RowsError(f"the rows to write are not a table of columns: {exc}") from None
        for name, values in df.items():
            if has_hidden_bools(values, table.column(name)):
                raise RowsError(f"column '{name}' mixes booleans with numbers")
        return table
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (TypeError, AttributeError) as exc:
        raise TypeError(f"expected a pandas DataFrame or a pyarrow Table, got {type(df)}") from exc
    except BAD_VALUES as exc:
        raise RowsError(f"the DataFrame's columns cannot become Arrow columns: {exc}") from None


def _require(names: list[str], columns: list[str], view: FeatureView, what: str) -> None:
    """`names`: the table's column names (`table.schema.names`, several times cheaper than
    `table.column_names`)."""
    have = set(names)
    for column in columns:
        if column not in have:
            raise MissingColumnError(
                f"{what} for feature view '{view.name}' has no column '{column}'"
                f"{closest(column, names)}"
            )


def _columns_of(table: pa.Table) -> dict[str, pa.ChunkedArray | pa.Array]:
    """Column name → column in one pass: `table.column(name)` searches the schema per call.
    A one-chunk table (what the server makes) gives its batch's arrays, which saves `_cast`
    a `chunk(0)` wrapper per column."""
    names = table.schema.names
    batches = table.to_batches()
    columns = batches[0].columns if len(batches) == 1 else table.columns
    given = dict(zip(names, columns, strict=True))
    if len(given) != len(names):
        # A repeated name: Arrow refuses to pick one, as `table.column(name)` always did here.
        table.column(next(name for name in given if names.count(name) > 1))
    return given


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        # One chunk (what the server and most writers make): its array, without a copy.
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _cast_feature(column: pa.ChunkedArray | pa.Array, target: pa.DataType, name: str) -> pa.Array:
    array = _array(column)
    if pa.types.is_timestamp(target) and pa.types.is_integer(array.type):
        # A UnixTimestamp feature given as a number is epoch seconds: what its Feast Value
        # holds and what reads return (an Arrow cast would take it as microseconds).
        try:
            micros = pc.multiply_checked(array.cast(pa.int64()), 1_000_000)
        except pa.ArrowInvalid as exc:
            raise RepastError(f"column '{name}': {exc} (epoch seconds expected)") from None
        return micros.cast(target)
    return _cast(array, target, name)


def epoch_nanos(array: pa.Array) -> pa.Array:
    """Integer event times as Feast reads them: pandas takes an integer as nanoseconds since
    the epoch (`1893456000` is 1970-01-01T00:00:01.893456, not 2030; observed with Feast 0.67's
    push and /push)."""
    return array.cast(pa.int64()).cast(pa.timestamp("ns", tz="UTC"))


def _event_times(column: pa.ChunkedArray | pa.Array, name: str) -> pa.Array:
    array = _array(column)
    if pa.types.is_integer(array.type):
        array = epoch_nanos(array)
    return _cast(array, TIMESTAMP, name)


def _cast(column: pa.ChunkedArray | pa.Array, target: pa.DataType, name: str) -> pa.Array:
    array = _array(column)
    if array.type == target:
        return array
    # Timestamps may lose sub-microsecond digits; anything else must convert exactly (no
    # fraction or boolean becomes an integer).
    return exact_cast(array, target, f"column '{name}' ({array.type})", RepastError)


@dataclass(frozen=True)
class WritePlan:
    """What writing rows of one view needs that does not depend on the rows: Arrow and
    Feast types per column, the store's `OnlineView`. Built once per view object (the server's
    catalog and the stream processor hold one per registry version), not per write."""

    view: FeatureView
    online: OnlineView
    mapping: dict[str, str]
    join_keys: list[str]
    key_arrow: list[pa.DataType]
    key_types: list[int]
    timestamp_field: str
    required: list[str]
    features: list[tuple[str, pa.DataType]]
    timestamp_sources: frozenset[str]
    """Source column names (before `field_mapping`) that hold timestamps."""
    numeric_sources: dict[str, pa.DataType]
    """Source column name → Arrow type of the numeric features, so JSON values can be built
    as that type at once (no cast afterwards)."""
    json_text: dict[str, tuple[int, pa.DataType]] = field(default_factory=dict)
    """Features stored as JSON text (`stored_types.JSON_TEXT`) → their Feast value type and
    declared Arrow type (what a STRUCT's values are checked against)."""
    checked_text: dict[str, int] = field(default_factory=dict)
    """UUID/decimal features (`stored_types.CHECKED_TEXT`) → their Feast value type."""
    sets: dict[str, int] = field(default_factory=dict)
    """Set features (`stored_types.SETS`) → their Feast value type."""
    zoned: frozenset[str] = frozenset()
    """ZONED_TIMESTAMP features (stored as `<isoformat>[<zone>]` text)."""


_NUMERIC = frozenset([pa.int32(), pa.int64(), pa.float32(), pa.float64()])
_PLANS: dict[int, WritePlan] = {}
_MAX_PLANS = 256


def write_plan(view: FeatureView) -> WritePlan:
    """The view's `WritePlan`, cached by object identity (the plan holds the view, so the id
    is not reused while cached)."""
    plan = _PLANS.get(id(view))
    if plan is not None and plan.view is view:
        return plan
    plan = _build_plan(view)
    if len(_PLANS) >= _MAX_PLANS:
        # Views parsed per call (SDK writes) only churn the cache; drop the oldest.
        del _PLANS[next(iter(_PLANS))]
    _PLANS[id(view)] = plan
    return plan


def _build_plan(view: FeatureView) -> WritePlan:
    if getattr(view, "aggregations", None):
        # Its events go into tiles (online/tiles.py); rows stored under its feature names
        # would serve wrong values.
        raise RepastError(
            f"feature view '{view.name}' serves windowed aggregations: its events are written "
            "through repast.online.tiles.write_events, not as rows"
        )
    source = view.batch_source
    by_name = {f.name: f for f in view.entity_columns}
    join_keys = list(view.join_keys)
    required = [*join_keys, source.timestamp_field]
    if source.created_timestamp_column:
        required.append(source.created_timestamp_column)
    online = OnlineView.of(view)
    json_text = {
        f.name: (vt, f.dtype.to_arrow_type())
        for f, vt in zip(view.features, online.logical_types, strict=True)
        if vt in JSON_TEXT
    }
    checked_text = {
        name: vt
        for name, vt in zip(online.features, online.logical_types, strict=True)
        if vt in CHECKED_TEXT
    }
    sets = {
        name: vt
        for name, vt in zip(online.features, online.logical_types, strict=True)
        if vt in SETS
    }
    zoned = frozenset(
        name for name, vt in zip(online.features, online.logical_types, strict=True) if vt in ZONED
    )
    # A feature held as text is written from what it is given (struct, map, timestamp in a
    # zone, text), converted in Rust; a push body's values stay as they came (not parsed as
    # UTC timestamps, which would lose a zone).
    features = [
        (
            f.name,
            pa.string() if f.name in json_text or f.name in zoned else f.dtype.to_arrow_type(),
        )
        for f in view.features
    ]
    mapping = dict(source.field_mapping or {})
    reverse = {v: k for k, v in mapping.items()}
    stamps = [source.timestamp_field, source.created_timestamp_column]
    stamps += [name for name, arrow in features if pa.types.is_timestamp(arrow)]
    return WritePlan(
        view=view,
        online=online,
        mapping=mapping,
        join_keys=join_keys,
        key_arrow=[by_name[k].dtype.to_arrow_type() for k in join_keys],
        key_types=[int(by_name[k].dtype.to_value_type()) for k in join_keys],
        timestamp_field=source.timestamp_field,
        required=required,
        features=features,
        timestamp_sources=frozenset(reverse.get(n, n) for n in stamps if n),
        numeric_sources={
            reverse.get(name, name): arrow for name, arrow in features if arrow in _NUMERIC
        },
        json_text=json_text,
        checked_text=checked_text,
        sets=sets,
        zoned=zoned,
    )


def entity_keys(view: FeatureView, table: pa.Table, version: int = 3) -> pa.Array:
    """Serialized entity keys (no project suffix) for every row, built in Rust."""
    plan = write_plan(view)
    if not plan.join_keys:
        return _dummy_keys(len(table), version)
    return _entity_keys(plan, {k: table.column(k) for k in plan.join_keys}, version)


def _entity_keys(
    plan: WritePlan, given: dict[str, pa.ChunkedArray | pa.Array], version: int
) -> pa.Array:
    if not plan.join_keys:
        return _dummy_keys(len(next(iter(given.values()))), version)
    arrays = [
        _cast(given[k], arrow, k) for k, arrow in zip(plan.join_keys, plan.key_arrow, strict=True)
    ]
    return _core.serialize_entity_keys(plan.join_keys, arrays, plan.key_types, version)


def _dummy_keys(n: int, version: int) -> pa.Array:
    return _core.serialize_entity_keys(["__dummy_id"], [pa.array([""] * n)], [2], version)


def write_batch(view: FeatureView, table: pa.Table, keys: pa.Array) -> WriteBatch:
    """A `WriteBatch` of the view's features present in `table` (view column names)."""
    return _write_batch(write_plan(view), _columns_of(table), keys)


def _write_batch(
    plan: WritePlan, given: dict[str, pa.ChunkedArray | pa.Array], keys: pa.Array
) -> WriteBatch:
    json_text = plan.json_text
    columns = {
        name: to_json_text(given[name], json_text[name][0], name, json_text[name][1])
        if name in json_text
        else to_zoned_text(given[name], name)
        if name in plan.zoned
        else _cast_feature(given[name], arrow, name)
        for name, arrow in plan.features
        if name in given
    }
    for name, vt in plan.checked_text.items():
        if name in columns:
            check_text(columns[name], vt, name)
    for name, vt in plan.sets.items():
        if name in columns:
            columns[name] = unique_sets(columns[name], vt, name)
    ts = plan.timestamp_field
    return WriteBatch(keys, _event_times(given[ts], ts), columns)


def _mapped(plan: WritePlan, table: pa.Table) -> pa.Table:
    mapping = plan.mapping
    if not mapping:
        return table
    return table.rename_columns([mapping.get(c, c) for c in table.column_names])


def prepare(
    store: StoreContext, view: FeatureView, table: pa.Table, what: str
) -> tuple[WritePlan, WriteBatch] | None:
    """The checked, encoded batch `write_table` writes; None when there is nothing to write."""
    plan = write_plan(view)
    table = _mapped(plan, table)
    names = table.schema.names
    _require(names, plan.required, view, what)
    have = set(names)
    present = [name for name, _ in plan.features if name in have]
    if not present:
        _require(names, [name for name, _ in plan.features], view, what)
    rows = len(table)
    if rows == 0:
        return None
    given = _columns_of(table)
    if all(given[name].null_count == rows for name in present):
        # As Feast: rows without a single value would only overwrite stored values with nulls.
        logger.warning("%s for feature view '%s': every feature is null; skipped", what, view.name)
        return None
    keys = _entity_keys(plan, given, store.config.entity_key_serialization_version)
    batch = _write_batch(plan, given, keys)
    # Feast's SQLite store upserts every row in order; its Redis store keeps the newest.
    last_wins = store.config.online_write_order == "feast" and isinstance(
        store.config.online_store, SqliteOnlineStoreConfig
    )
    keep = last_rows(batch.keys) if last_wins else latest_rows(batch.keys, batch.event_timestamps)
    if keep is not None:
        batch = batch.take(keep)
    return plan, batch


def write_table(store: StoreContext, view: FeatureView, table: pa.Table, what: str) -> int:
    """Write source rows of `view` (before `field_mapping`) online; returns rows written.

    Required: every join key and the timestamp field. Feature columns that are absent are
    left as stored (a partial write, a Repast extension); at least one must be present.
    """
    if getattr(view, "aggregations", None):
        from repast.online.tiles import write_events

        version = store.config.entity_key_serialization_version
        return write_events(store.online_store, view, table, version, what)
    prepared = prepare(store, view, table, what)
    if prepared is None:
        return 0
    plan, batch = prepared
    return store.online_store.write_batch(plan.online, batch)
