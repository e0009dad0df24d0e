"""The `OnlineStore` seam and the Arrow-shaped values that cross it.

A store sees views as `OnlineView` (name, join keys, features in schema order with their
Feast value types), entity keys as a pyarrow `BinaryArray` of `serialize_entity_key` bytes
*without* the project (each store adds what its layout needs), and values as Arrow columns.
No per-value Python objects cross this seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.errors import OnlineStoreError
from repast.online.stored_types import stored_type

if TYPE_CHECKING:
    from repast.feature_view import FeatureView

__all__ = [
    "TIMESTAMP",
    "AsyncBatchWriter",
    "Merge",
    "OnlineStore",
    "OnlineStoreError",
    "OnlineView",
    "PackedRowStore",
    "PackedRowWriter",
    "PackedRows",
    "ReadRequest",
    "ViewRows",
    "WriteBatch",
    "async_batch_writer",
    "last_rows",
    "latest_rows",
    "merge_partial_rows",
    "packed_row_micros",
    "packed_row_store",
    "packed_row_writer",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class OnlineView:
    """What an online store needs to know about a feature view."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    """Every feature of the view, in schema order (the order of a packed row)."""
    value_types: tuple[int, ...]
    """The value types the store's codec writes (`stored_types.stored_type` of each feature's
    Feast type: a MAP is held as JSON text, a set as a list)."""
    arrow_types: tuple[pa.DataType, ...] = field(compare=False, hash=False)
    logical_types: tuple[int, ...] = ()
    """The features' own Feast value types (what a read gives back); empty = `value_types`."""

    @property
    def feast_types(self) -> tuple[int, ...]:
        return self.logical_types or self.value_types

    @classmethod
    def of(cls, view: FeatureView) -> OnlineView:
        logical = tuple(int(f.dtype.to_value_type()) for f in view.features)
        return cls(
            name=view.name,
            join_keys=tuple(view.join_keys) or ("__dummy_id",),
            features=tuple(f.name for f in view.features),
            value_types=tuple(stored_type(vt) for vt in logical),
            arrow_types=tuple(f.dtype.to_arrow_type() for f in view.features),
            logical_types=logical,
        )

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {f: i for i, f in enumerate(self.features)}

    def index(self, feature: str) -> int:
        return self._positions[feature]

    def positions(self, features: Sequence[str]) -> list[int]:
        """Schema positions of `features` (what `decode_packed_rows` selects)."""
        positions = self._positions
        return [positions[f] for f in features]


@dataclass
class WriteBatch:
    """Rows for one view: one entity key per row (unique within the batch), its event time
    (`timestamp[us, UTC]`) and feature columns. Fewer columns than the view has features is a
    partial write: only those features change."""

    keys: pa.Array
    event_timestamps: pa.Array
    columns: dict[str, pa.Array]

    def __len__(self) -> int:
        return len(self.keys)

    def is_partial(self, view: OnlineView) -> bool:
        return any(f not in self.columns for f in view.features)

    def take(self, indices: pa.Array) -> WriteBatch:
        return WriteBatch(
            keys=self.keys.take(indices),
            event_timestamps=self.event_timestamps.take(indices),
            columns={name: col.take(indices) for name, col in self.columns.items()},
        )


@dataclass
class ReadRequest:
    """Read `features` of `view` for `keys` (a key may repeat: each row gets its own answer).
    Requests whose `keys` is the same object share entity keys, so a store may read them
    together (one Redis hash per key)."""

    view: OnlineView
    keys: pa.Array | list[bytes]
    """Binary Arrow array, or for a few entity rows the keys as Python bytes (no Arrow
    round trip: `_core.small_entity_keys`); `key_list` reads either."""
    features: Sequence[str]

    def key_list(self) -> list[bytes]:
        keys = self.keys
        if isinstance(keys, list):
            return keys
        values: list[bytes] = keys.to_pylist()
        return values


@dataclass
class ViewRows:
    """What a store read for one request: the stored event time per key (null = not found)
    and one Arrow column per requested feature, aligned with the request's keys."""

    event_timestamps: pa.Array
    columns: list[pa.Array]


PackedRows = list[bytes | None]
"""One request's stored packed rows (docs/internals.md), aligned with its keys; None = not found."""

Merge = Callable[[PackedRows], tuple[list[bytes], list[int]]]
"""An aggregated view's update (`online/tiles.py`): the stored tile sets of some keys (None =
none yet) to their new sets and each one's newest event time in microseconds."""


class OnlineStore(Protocol):
    """An online store: the latest feature values per entity key, newer event time wins."""

    def write_batch(self, view: OnlineView, batch: WriteBatch) -> int:
        """Write rows whose event time is newer than the stored one; returns how many were."""
        ...

    def write_batches(self, view: OnlineView, batches: Iterable[WriteBatch]) -> int:
        """`write_batch` over a stream; a store may overlap encoding and I/O."""
        ...

    def read(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        """One result per request, in order."""
        ...

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]: ...

    def update(
        self, views_to_keep: Sequence[OnlineView], views_to_delete: Sequence[OnlineView]
    ) -> None:
        """At apply: prepare storage for kept views, delete the data of removed ones."""
        ...

    def teardown(self, views: Sequence[OnlineView]) -> None:
        """Delete every view's data (and tables)."""
        ...

    def infra(self) -> dict[str, object]:
        """What the store created, for the registry's `infra` section."""
        ...

    def close(self) -> None: ...

    async def close_async(self) -> None:
        """Close what `read_async` opened, on the event loop that ran it."""
        ...


# --- capabilities beyond `OnlineStore` ---------------------------------------------------------
# A store declares each one by having its members; the resolver functions below are how callers
# ask for one (an attribute look-up, not a runtime-checkable `isinstance`, which costs ~10 us on
# the hot path). Each store module has mypy check that it satisfies what it claims
# (docs/online-stores.md lists them for whoever writes the next store).


class PackedRowStore(Protocol):
    """A store that keeps a view's features as one packed row per entity and can hand those
    bytes over undecoded (the feature server writes its JSON straight from them)."""

    @property
    def holds_packed_rows(self) -> bool:
        """False when this instance's configuration stores other bytes (Redis `layout: feast`)."""
        ...

    def read_packed(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        """One list of stored rows per request, in order (`features` is not looked at)."""
        ...

    async def read_packed_async(self, requests: Sequence[ReadRequest]) -> list[PackedRows]: ...


class PackedRowWriter(Protocol):
    """A store that writes packed rows encoded elsewhere (in Rust, from a push's JSON) as they
    are, newer event time winning."""

    @property
    def writes_packed_rows(self) -> bool:
        """False when this instance's configuration cannot (another layout, a cluster)."""
        ...

    async def write_packed_rows_async(
        self, view: OnlineView, keys: list[bytes], rows: list[bytes]
    ) -> int:
        """Write full packed rows (every feature) for `keys` (no suffix); rows written."""
        ...


class AsyncBatchWriter(Protocol):
    """A store whose `write_batch` has an asyncio twin (so small writes need no worker thread)."""

    async def write_batch_async(self, view: OnlineView, batch: WriteBatch) -> int: ...


def packed_row_store(store: object) -> PackedRowStore | None:
    """`store` when it serves packed rows now (a Redis store in the `feast` layout does not)."""
    if getattr(store, "holds_packed_rows", False):
        return cast("PackedRowStore", store)
    return None


def packed_row_writer(store: object) -> PackedRowWriter | None:
    """`store` when it can write packed rows encoded elsewhere now."""
    if getattr(store, "writes_packed_rows", False):
        return cast("PackedRowWriter", store)
    return None


def async_batch_writer(store: object) -> AsyncBatchWriter | None:
    """`store` when its `write_batch` has an asyncio twin."""
    if getattr(store, "write_batch_async", None) is not None:
        return cast("AsyncBatchWriter", store)
    return None


def packed_row_micros(row: bytes) -> int:
    """The event time of a packed row (docs/internals.md, "Packed rows"): bytes 1..9 hold it
    big-endian with the sign bit flipped, so subtracting 2^63 undoes both."""
    return int.from_bytes(row[1:9], "big") - (1 << 63)


def latest_rows(keys: pa.Array, event_timestamps: pa.Array) -> pa.Array | None:
    """Indices of the row to keep per key: the latest event time, and among equal event
    times the *first* row (an equal event time never overwrites). None when keys are unique
    already and nothing needs dropping."""
    n = len(keys)
    if n < 2:
        return None
    # latest_per_key keeps the *last* row on a tie; feeding it the rows reversed keeps the first.
    reverse = pa.array(np.arange(n - 1, -1, -1, dtype=np.int64))
    picked = _core.latest_per_key(keys.take(reverse), event_timestamps.take(reverse))
    if len(picked) == n:
        return None
    original = pc.subtract(pa.scalar(n - 1, pa.int64()), pc.cast(picked, pa.int64()))
    # Ascending, so the kept rows stay in input order.
    return pc.take(original, pc.sort_indices(original))


def last_rows(keys: pa.Array) -> pa.Array | None:
    """Indices of the *last* row per key (ascending); None when keys are unique already.
    Feast's SQLite store upserts a batch's rows in order, so the last one stays."""
    if len(keys) < 2:
        return None
    # With every event time equal, latest_per_key keeps the last row of each key.
    same = pa.repeat(pa.scalar(0, pa.timestamp("us", tz="UTC")), len(keys))
    picked = _core.latest_per_key(keys, same)
    return None if len(picked) == len(keys) else picked


def merge_partial_rows(
    view: OnlineView,
    batch: WriteBatch,
    stored_rows: pa.Array,
) -> list[pa.Array]:
    """Every feature column of `view` for a partial write: the batch's columns where given,
    else the values decoded from `stored_rows` (packed rows aligned with the batch, null where
    nothing is stored)."""
    missing = [i for i, f in enumerate(view.features) if f not in batch.columns]
    _, decoded = _core.decode_packed_rows(stored_rows, list(view.value_types), missing)
    from_store: Mapping[str, pa.Array] = {
        view.features[i]: col for i, col in zip(missing, decoded, strict=True)
    }
    return [batch.columns[f] if f in batch.columns else from_store[f] for f in view.features]
