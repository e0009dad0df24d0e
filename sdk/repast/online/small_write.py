"""Writes of a few rows straight from their JSON lists (the feature server's one-row `/push`).

The general path (`online/write.py`) builds an Arrow array per column, then exports each to
Rust: for a 50-feature row that is ~150 pyarrow calls and most of a millisecond. Here one
Rust call (`_core.encode_small_write`) takes the lists as they came out of the JSON and
returns each row's entity key and packed row, which the store writes as they are (Redis: one
`EVALSHA`; SQLite: one transaction).

It is only a shortcut: whenever the rows are not plainly valid — a column missing or extra,
a value of another type, a repeated key, an unusual timestamp form — it answers None and
the caller takes the general path, which writes or rejects them with its usual messages.
The bytes stored are the same either way (tests/test_online_small_write.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repast import _core
from repast.context import StoreContext
from repast.feature_view import FeatureView
from repast.online.base import OnlineView, PackedRowWriter, packed_row_writer
from repast.online.write import WritePlan, write_plan
from repast.value_type import ValueType

__all__ = [
    "SMALL_WRITE_ROWS",
    "PackedRowWriter",
    "SmallWritePlan",
    "small_write_plan",
    "write_rows_async",
]

SMALL_WRITE_ROWS = 16
"""Up to this many rows a push may take the shortcut (above it, Arrow's per-call costs are
amortized and the general path is as fast)."""

_FEATURE_TYPES = frozenset(
    int(t)
    for t in (
        ValueType.STRING,
        ValueType.INT32,
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.FLOAT,
        ValueType.BOOL,
    )
)
_KEY_TYPES = frozenset(int(t) for t in (ValueType.STRING, ValueType.INT32, ValueType.INT64))


@dataclass(frozen=True)
class SmallWritePlan:
    """The shortcut's view of one feature view, by source column name (before
    `field_mapping`)."""

    online: OnlineView
    columns: frozenset[str]
    """Exactly the columns a push must have: join keys, event (and created) timestamp, every
    feature."""
    key_names: list[str]
    key_types: list[int]
    key_sources: list[str]
    feature_types: list[int]
    feature_sources: list[str]
    timestamp_source: str
    other_timestamp_sources: list[str]
    """The created-timestamp column, if any: not stored, but its values must be valid."""


_PLANS: dict[int, tuple[WritePlan, SmallWritePlan | None]] = {}
_MAX_PLANS = 256


def small_write_plan(view: FeatureView) -> SmallWritePlan | None:
    """The view's plan, or None when its types or columns never take the shortcut. Cached
    with the view's `WritePlan` (one per view object; the server's catalog keeps one view
    object per registry version)."""
    if getattr(view, "aggregations", None):
        return None  # events go into tiles (online/tiles.py)
    plan = write_plan(view)
    cached = _PLANS.get(id(plan))
    if cached is not None and cached[0] is plan:
        return cached[1]
    small = _build(view, plan)
    if len(_PLANS) >= _MAX_PLANS:
        del _PLANS[next(iter(_PLANS))]
    _PLANS[id(plan)] = (plan, small)
    return small


def _build(view: FeatureView, plan: WritePlan) -> SmallWritePlan | None:
    if not plan.join_keys:
        return None
    if not set(plan.key_types) <= _KEY_TYPES:
        return None
    feature_types = list(plan.online.value_types)
    if not set(feature_types) <= _FEATURE_TYPES or plan.json_text or plan.checked_text or plan.sets:
        # Nested values (stored as JSON text), UUID/decimal text (checked) and sets (made
        # unique) are written by the Arrow path.
        return None
    reverse = {v: k for k, v in plan.mapping.items()}
    key_sources = [reverse.get(k, k) for k in plan.join_keys]
    feature_sources = [reverse.get(f, f) for f in plan.online.features]
    timestamp_source = reverse.get(plan.timestamp_field, plan.timestamp_field)
    created = view.batch_source.created_timestamp_column
    other_sources = [reverse.get(created, created)] if created else []
    names = [*key_sources, timestamp_source, *other_sources, *feature_sources]
    if len(set(names)) != len(names):
        return None
    return SmallWritePlan(
        online=plan.online,
        columns=frozenset(names),
        key_names=list(plan.join_keys),
        key_types=list(plan.key_types),
        key_sources=key_sources,
        feature_types=feature_types,
        feature_sources=feature_sources,
        timestamp_source=timestamp_source,
        other_timestamp_sources=other_sources,
    )


async def write_rows_async(
    store: StoreContext, view: FeatureView, columns: Mapping[str, list[Any]], rows: int
) -> int | None:
    """Write `rows` source rows given as `{column: [values]}` (lists of equal length `rows`);
    the rows written, or None when the general path must take them (nothing written)."""
    if rows > SMALL_WRITE_ROWS:
        return None
    writer = packed_row_writer(store.online_store)
    if writer is None:
        return None
    plan = small_write_plan(view)
    if plan is None or columns.keys() != plan.columns:
        return None
    encoded = _core.encode_small_write(
        plan.key_names,
        plan.key_types,
        [columns[c] for c in plan.key_sources],
        plan.feature_types,
        [columns[c] for c in plan.feature_sources],
        columns[plan.timestamp_source],
        store.config.entity_key_serialization_version,
        [columns[c] for c in plan.other_timestamp_sources],
    )
    if encoded is None:
        return None
    keys, packed = encoded
    return await writer.write_packed_rows_async(plan.online, keys, packed)
