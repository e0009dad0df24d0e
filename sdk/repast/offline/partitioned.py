"""The bounded-memory point-in-time join, for Parquet sources too large to hold in memory.

`point_in_time_join` sends a view here when its in-memory join would not fit the memory budget
(`repast.offline.budget`). The result is the same as the in-memory path's, row for row.

- Pass 1 reads only the join-key and timestamp columns, one Parquet row group at a time, and the
  Rust kernel picks the chosen source row per entity row, as a global row number (row groups
  numbered in the order the dataset lists them). When even those columns exceed the budget,
  the rows are split into P key-hash partitions (`_core.point_in_time_partitions`): one scan of
  the key and time columns per partition keeps that partition's source rows, and the kernel
  joins them with that partition's entity rows. Answers are scattered back in entity order.
- Pass 2 reads the feature columns one row group at a time, skipping row groups that hold no
  chosen row, and takes only the chosen rows of each (each distinct row once); a final `take`
  puts them in entity order, null where nothing matched. The feature columns are never all in
  memory at once.

Everything per row runs in Arrow, numpy or Rust (the kernel and the partitioning release the
GIL); two row groups are read at a time, so decoding overlaps the rest.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from repast import _core
from repast.errors import SourceReadError
from repast.offline.budget import RowGroup, column_bytes, memory_limit, row_groups
from repast.offline.columns import (
    KERNEL_TYPE,
    gather,
    key_array,
    key_columns,
    key_kind,
    needed_columns,
    raw_column,
    raw_time_column,
    timestamps_ns,
    where,
)
from repast.offline.view import ViewJoin

__all__ = ["Budget", "Plan", "choose_bounded", "join_view"]

# Bytes per row beyond the columns themselves: the kernel's 24-byte records, a timestamp cast
# to nanoseconds, the global row number kept per source row when partitioned.
_KERNEL_SOURCE_ROW = 24 + 8
_PARTITION_ROW = 8 + 4
# Per entity row: the kernel's record, its answer, the answer as a global row, the scatter.
_ENTITY_ROW = 24 + 8 + 8 + 8
_MAX_PARTITIONS = 1024
# Entity frames with at most 1/_STREAM_RATIO of the source's rows stream even within budget.
_STREAM_RATIO = 2
_READERS = 2

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Budget:
    """The bytes a join may use (see `repast.offline.budget.memory_limit`)."""

    limit: int

    @classmethod
    def of(cls, configured: int | None) -> Budget:
        return cls(memory_limit(configured))


@dataclass(frozen=True)
class Plan:
    """How one view is joined on the bounded path."""

    dataset: ds.Dataset
    groups: Sequence[RowGroup]
    partitions: int  # key-hash partitions of pass 1, each one scan of the key/time columns


@dataclass(frozen=True)
class _Sizes:
    groups: list[RowGroup]
    rows: int
    key_time: int  # Arrow bytes of the join-key and timestamp columns
    features: int  # Arrow bytes of the feature columns
    largest_group: int  # bytes of the feature columns of the largest row group


def _key_time_names(view: ViewJoin, schema: pa.Schema) -> list[str]:
    names = [raw_column(view, src, schema) for _, src in view.entity_join_keys]
    names.append(raw_time_column(view, view.timestamp_field, schema))
    if view.created_timestamp_column is not None:
        names.append(raw_time_column(view, view.created_timestamp_column, schema))
    return list(dict.fromkeys(names))


def _feature_names(view: ViewJoin, schema: pa.Schema) -> list[str]:
    return list(dict.fromkeys(raw_column(view, f, schema) for f, _ in view.features))


def _sizes(view: ViewJoin, dataset: ds.Dataset) -> _Sizes | None:
    groups = row_groups(dataset)
    if groups is None:
        return None
    schema = dataset.schema
    key_time = _key_time_names(view, schema)
    features = [name for name in needed_columns(view, schema) if name not in key_time]
    largest = max(groups, key=lambda g: g.rows, default=None)
    return _Sizes(
        groups=groups,
        rows=sum(g.rows for g in groups),
        key_time=column_bytes(groups, schema, key_time),
        features=column_bytes(groups, schema, features),
        largest_group=column_bytes([largest], schema, features) if largest else 0,
    )


def choose_bounded(
    views: Sequence[ViewJoin],
    opened: Sequence[pa.Table | ds.Dataset],
    entity_rows: int,
    budget: Budget,
) -> dict[int, Plan]:
    """The views (by position) to join on the bounded path, with their plans: every
    Parquet-backed view when the in-memory joins of all views together exceed the budget, else
    only the views whose source is large next to the entity frame."""
    sizes: dict[int, _Sizes] = {}
    for i, (view, source) in enumerate(zip(views, opened, strict=True)):
        if isinstance(source, ds.Dataset):
            found = _sizes(view, source)
            if found is not None:
                sizes[i] = found
    if not sizes:
        return {}
    in_memory = 0
    for found in sizes.values():
        # Output features: the same width per row as in the source, for every entity row.
        output = found.features * entity_rows // max(found.rows, 1)
        # Multi-chunk key and time columns are copied into one array for the kernel.
        in_memory += 2 * found.key_time + found.features + found.rows * _KERNEL_SOURCE_ROW
        in_memory += entity_rows * _ENTITY_ROW + output
    if in_memory <= budget.limit:
        # A small entity frame against a large source streams too: it decodes the features a
        # row group at a time (skipping those without a chosen row) instead of allocating the
        # whole source, measured faster up to half the source's rows and about even at as many
        # (load-tests/RESULTS.md, issue 3).
        small = {
            i: Plan(source, found.groups, 1)
            for i, found in sizes.items()
            if entity_rows * _STREAM_RATIO <= found.rows
            and len(found.groups) > 1
            and isinstance(source := opened[i], ds.Dataset)
            and _partitions(views[i], found, entity_rows, budget) == 1
        }
        return small
    return {
        i: Plan(source, found.groups, _partitions(views[i], found, entity_rows, budget))
        for i, found in sizes.items()
        if isinstance(source := opened[i], ds.Dataset)
    }


def _partitions(view: ViewJoin, sizes: _Sizes, entity_rows: int, budget: Budget) -> int:
    """How many key-hash partitions pass 1 needs for its share of the budget."""
    if not view.entity_join_keys:
        return 1  # an entity-less view has one key: it cannot be split by key
    output = sizes.features * entity_rows // max(sizes.rows, 1)
    # Pass 2 holds the gathered rows and the output at once, plus the row groups being read.
    fixed = entity_rows * _ENTITY_ROW + 2 * output + _READERS * 2 * sizes.largest_group
    room = max(budget.limit - fixed, budget.limit // 4, 1)
    # Counted twice: string keys (and, when split, every column) are concatenated from the
    # chunks as read, both alive for a moment.
    whole = 2 * sizes.key_time + sizes.rows * _KERNEL_SOURCE_ROW
    if whole <= room:
        return 1
    # Split, each scan also keeps a partition id and a global row number per row it reads.
    whole += sizes.rows * _PARTITION_ROW
    return min(max(2, math.ceil(whole / room)), _MAX_PARTITIONS)


# --- the join -------------------------------------------------------------------------------


def _ordered_map(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        yield from pool.map(fn, items)


@dataclass
class _KeyTime:
    keys: list[pa.Array]
    event: pa.Array
    created: pa.Array | None
    rows: pa.Array | None  # global row numbers, when a partition keeps only some rows


class _Pass1:
    """Reads the key and time columns, normalized the way the in-memory path normalizes them."""

    def __init__(self, view: ViewJoin, plan: Plan, entity: pa.Table) -> None:
        schema = plan.dataset.schema
        self.view, self.plan, self.schema = view, plan, schema
        self.key_names = [raw_column(view, src, schema) for _, src in view.entity_join_keys]
        self.ts_name = raw_time_column(view, view.timestamp_field, schema)
        self.created_name = (
            raw_time_column(view, view.created_timestamp_column, schema)
            if view.created_timestamp_column is not None
            else None
        )
        # Type checks (and their errors) and the key kinds against an empty source of the
        # dataset's schema: the entity keys are normalized once, each chunk's source keys alike.
        self.entity_keys, empty = key_columns(view, entity, schema.empty_table())
        self.kinds = [str(key_kind(array.type)) for _, array in empty]

    def chunk(self, group: RowGroup, partition: int | None) -> _KeyTime:
        table = group.read(_key_time_names(self.view, self.schema), self.schema)
        keys = [
            key_array(table.column(name), kind, where(self.view, name))
            for name, kind in zip(self.key_names, self.kinds, strict=True)
        ]
        event = timestamps_ns(table.column(self.ts_name), where(self.view, self.ts_name))
        created = None
        if self.created_name is not None:
            column = table.column(self.created_name)
            created = timestamps_ns(column, where(self.view, self.created_name))
        if partition is None:
            return _KeyTime(keys, event, created, None)
        ids = _core.point_in_time_partitions(
            list(zip(self.key_names, keys, strict=True)), self.plan.partitions
        )
        mask = pc.equal(ids, pa.scalar(partition, pa.uint32()))
        rows = pa.array(np.arange(group.start, group.start + group.rows, dtype=np.int64))
        return _KeyTime(
            [k.filter(mask) for k in keys],
            event.filter(mask),
            created.filter(mask) if created is not None else None,
            rows.filter(mask),
        )

    def scan(self, partition: int | None) -> _KeyTime:
        if partition is None:
            return self._scan_all()

        def read(group: RowGroup) -> _KeyTime:
            return self.chunk(group, partition)

        chunks = list(_guarded(self.view, _ordered_map(read, self.plan.groups)))
        kinds = [KERNEL_TYPE[k] for k in self.kinds]
        keys = [_concat([c.keys[j] for c in chunks], kinds[j]) for j in range(len(self.key_names))]
        event = _concat([c.event for c in chunks], pa.int64())
        created = None
        if self.created_name is not None:
            created = _concat([c.created for c in chunks if c.created is not None], pa.int64())
        rows = _concat([c.rows for c in chunks if c.rows is not None], pa.int64())
        return _KeyTime(keys, event, created, rows)

    def _scan_all(self) -> _KeyTime:
        """Every row: integer keys and timestamps are written in place as row groups arrive
        (no second copy to concatenate them); string keys are concatenated."""
        total = sum(g.rows for g in self.plan.groups)
        int_keys = {j: _Int64Sink(total) for j, k in enumerate(self.kinds) if k == "integer"}
        event = _Int64Sink(total)
        created = _Int64Sink(total) if self.created_name is not None else None

        def read(group: RowGroup) -> list[pa.Array]:
            found = self.chunk(group, None)
            event.put(group.start, found.event)
            if created is not None and found.created is not None:
                created.put(group.start, found.created)
            for j, sink in int_keys.items():
                sink.put(group.start, found.keys[j])
            return [k for j, k in enumerate(found.keys) if j not in int_keys]

        others = list(_guarded(self.view, _ordered_map(read, self.plan.groups)))
        keys: list[pa.Array] = []
        position = 0
        for j, kind in enumerate(self.kinds):
            if j in int_keys:
                keys.append(int_keys[j].array())
            else:
                keys.append(_concat([c[position] for c in others], KERNEL_TYPE[kind]))
                position += 1
        return _KeyTime(keys, event.array(), created.array() if created else None, None)


def _concat(arrays: list[pa.Array], kind: pa.DataType) -> pa.Array:
    if not arrays:
        return pa.array([], type=kind)
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


class _Int64Sink:
    """One int64 column of every row group, filled in place (row groups arrive out of order
    from two reader threads, each into its own rows)."""

    def __init__(self, rows: int) -> None:
        self.values = np.empty(rows, dtype=np.int64)
        self.valid: np.ndarray | None = None
        self.lock = threading.Lock()

    def put(self, start: int, array: pa.Array) -> None:
        n = len(array)
        if n == 0:
            return
        data = array.buffers()[1]
        self.values[start : start + n] = np.frombuffer(
            data, dtype=np.int64, count=n, offset=array.offset * 8
        )
        if array.null_count:
            with self.lock:
                if self.valid is None:
                    self.valid = np.ones(len(self.values), dtype=bool)
            self.valid[start : start + n] = array.is_valid().to_numpy(zero_copy_only=False)

    def array(self) -> pa.Array:
        if self.valid is None:
            return pa.array(self.values)
        return pa.array(self.values, mask=~self.valid)


def _guarded(view: ViewJoin, results: Iterator[T]) -> Iterator[T]:
    try:
        yield from results
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceReadError(f"cannot read the {view.describe_source()}: {exc}") from exc


def _chosen_rows(
    view: ViewJoin,
    plan: Plan,
    entity: pa.Table,
    entity_ts: tuple[str, pa.Array],
    filter_by_created_timestamp: bool,
) -> np.ndarray:
    """Pass 1: the global source row per entity row, -1 where nothing matches."""
    reader = _Pass1(view, plan, entity)
    n = entity.num_rows
    ts_name, ets = entity_ts

    def kernel(positions: np.ndarray | None, found: _KeyTime) -> pa.Array:
        entity_keys = reader.entity_keys
        stamps = ets
        if positions is not None:
            taken = pa.array(positions)
            entity_keys = [(name, array.take(taken)) for name, array in entity_keys]
            stamps = ets.take(taken)
        source_keys = list(zip(reader.key_names, found.keys, strict=True))
        created = (
            (str(reader.created_name), found.created)
            if reader.created_name is not None and found.created is not None
            else None
        )
        spec = (view.name, entity_keys, source_keys, (reader.ts_name, found.event), created)
        (indices,) = _core.point_in_time_indices(
            (ts_name, stamps), [(*spec, view.ttl_ns)], filter_by_created_timestamp
        )
        return indices

    if plan.partitions == 1:
        indices = kernel(None, reader.scan(None))
        return np.asarray(pc.fill_null(indices.cast(pa.int64()), -1).to_numpy())

    chosen = np.full(n, -1, dtype=np.int64)
    ids = _core.point_in_time_partitions(reader.entity_keys, plan.partitions)
    entity_parts = np.asarray(pc.fill_null(ids, plan.partitions).to_numpy())
    for partition in range(plan.partitions):
        positions = np.flatnonzero(entity_parts == partition)
        if len(positions) == 0:
            continue
        found = reader.scan(partition)
        assert found.rows is not None
        local = kernel(positions, found)
        global_rows = found.rows.take(local)
        chosen[positions] = pc.fill_null(global_rows, -1).to_numpy()
    return chosen


def _distinct(rows: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(rows, return_inverse=True)` for rows in `0..total`: with many rows, a mark
    per source row and a running count are linear and several times faster than sorting."""
    if len(rows) * 16 < total:
        distinct, inverse = np.unique(rows, return_inverse=True)
        return distinct, inverse
    marks = np.zeros(total, dtype=bool)
    marks[rows] = True
    distinct = np.flatnonzero(marks)
    del marks
    width = np.int32 if len(distinct) < 2**31 else np.int64
    rank = np.zeros(total, dtype=width)
    rank[distinct] = np.arange(len(distinct), dtype=width)
    return distinct, rank[rows]


def join_view(
    view: ViewJoin,
    plan: Plan,
    entity: pa.Table,
    entity_ts: tuple[str, pa.Array],
    filter_by_created_timestamp: bool,
) -> list[pa.ChunkedArray | pa.Array]:
    """The view's feature columns in `view.features` order, one per entity row."""
    chosen = _chosen_rows(view, plan, entity, entity_ts, filter_by_created_timestamp)
    schema = plan.dataset.schema
    names = _feature_names(view, schema)

    # Pass 2. Each distinct chosen row is read once, in source order.
    matched = chosen >= 0
    total = sum(g.rows for g in plan.groups)
    distinct, inverse = _distinct(chosen[matched], total)
    starts = np.array([g.start for g in plan.groups] + [total])
    cuts = np.searchsorted(distinct, starts)
    jobs = [
        (group, distinct[cuts[i] : cuts[i + 1]] - group.start)
        for i, group in enumerate(plan.groups)
        if cuts[i + 1] > cuts[i]
    ]

    def read_rows(job: tuple[RowGroup, np.ndarray]) -> pa.Table:
        group, local = job
        return group.read(names, schema).take(pa.array(local))

    pieces = list(_guarded(view, _ordered_map(read_rows, jobs)))
    empty = pa.table({name: pa.array([], type=schema.field(name).type) for name in names})
    gathered = pa.concat_tables(pieces) if pieces else empty
    positions = np.zeros(len(chosen), dtype=np.int64)
    positions[matched] = inverse
    indices = pa.array(positions, mask=~matched)
    by_name: Mapping[str, pa.ChunkedArray | pa.Array] = dict(
        zip(names, gather([(gathered, name, indices) for name in names]), strict=True)
    )
    return [by_name[raw_column(view, feature, schema)] for feature, _ in view.features]
