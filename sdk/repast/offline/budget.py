"""How much memory a point-in-time join may use, and how much a view's join would take.

The budget is, in order: the `REPAST_OFFLINE_MEMORY_LIMIT` environment variable, the
`offline_store.memory_limit` setting of `feature_store.yaml`, or half of the memory available
when the join starts (so the training job's own frames and the OS page cache keep the rest).
Estimates come from Parquet metadata, before anything is read: row counts times the Arrow width
of fixed-width columns, the uncompressed size for variable-width ones.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

__all__ = [
    "MEMORY_LIMIT_ENV",
    "RowGroup",
    "available_memory",
    "column_bytes",
    "memory_limit",
    "parse_byte_size",
    "row_groups",
]

MEMORY_LIMIT_ENV = "REPAST_OFFLINE_MEMORY_LIMIT"
DEFAULT_FRACTION = 0.5

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", re.IGNORECASE)
_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_byte_size(value: int | str) -> int:
    """Bytes from `8GiB`, `512 MiB`, `2GB` (powers of 1000), `4G` (powers of 1024) or an int.

    >>> [parse_byte_size(v) for v in ("8GiB", "1.5 kb", "2M", 7)]
    [8589934592, 1500, 2097152, 7]
    """
    if isinstance(value, bool):
        raise ValueError(f"a memory size must be a number of bytes or like '8GiB', not {value}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(str(value))
        if match is None:
            raise ValueError(
                f"cannot read '{value}' as a memory size; write e.g. 8GiB, 512MiB, 2GB or 1000000"
            )
        number, unit, binary, byte = match.groups()
        # '2GB' is decimal as disk makers mean it; '2G' and '2GiB' are binary as `free` means it.
        base = 1024 if binary or not byte else 1000
        size = int(float(number) * base ** _POWER[unit.lower()])
    if size <= 0:
        raise ValueError(f"a memory size must be positive, not {value!r}")
    return size


def _cgroup_limit() -> int | None:
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int:
    """Memory this process can take now: MemAvailable, capped by a cgroup limit if any."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            available = 4 << 30
    limit = _cgroup_limit()
    return min(available, limit) if limit is not None else available


def memory_limit(configured: int | None = None) -> int:
    """The join's budget in bytes: the environment variable, else `configured`, else half of
    the available memory."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        try:
            return parse_byte_size(env)
        except ValueError as exc:
            raise ValueError(f"environment variable {MEMORY_LIMIT_ENV}: {exc}") from None
    if configured is not None:
        return configured
    return int(available_memory() * DEFAULT_FRACTION)


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a source, and the global number of its first row."""

    fragment: ds.ParquetFileFragment
    row_group: int
    start: int
    rows: int

    def read(self, columns: Sequence[str], schema: pa.Schema) -> pa.Table:
        # The dataset's schema fills hive partition columns and unifies types across files.
        part = self.fragment.subset(row_group_ids=[self.row_group])
        return part.to_table(columns=list(columns), schema=schema, use_threads=True)


def row_groups(dataset: ds.Dataset) -> list[RowGroup] | None:
    """Every row group of a Parquet dataset, in the order `to_table` reads them (None when a
    fragment is not a Parquet file, so the caller cannot stream it row group by row group)."""
    if not isinstance(dataset, ds.FileSystemDataset):
        return None
    out: list[RowGroup] = []
    start = 0
    for fragment in dataset.get_fragments():
        if not isinstance(fragment, ds.ParquetFileFragment):
            return None
        for info in fragment.row_groups:
            out.append(RowGroup(fragment, info.id, start, info.num_rows))
            start += info.num_rows
    return out


def _fixed_width(kind: pa.DataType) -> float | None:
    try:
        bits = int(kind.bit_width)
    except ValueError:
        return None
    return bits / 8 + 1 / 8  # values and the validity bitmap


def column_bytes(groups: Iterable[RowGroup], schema: pa.Schema, names: Sequence[str]) -> int:
    """Arrow bytes of the `names` columns of `groups` once read: fixed widths times rows, the
    Parquet uncompressed size plus 8-byte offsets for anything else."""
    total = 0.0
    for group in groups:
        metadata = group.fragment.metadata.row_group(group.row_group)
        sizes = {
            metadata.column(j).path_in_schema: metadata.column(j).total_uncompressed_size
            for j in range(metadata.num_columns)
        }
        for name in names:
            width = _fixed_width(schema.field(name).type)
            if width is None:
                width = 8 + 1 / 8
                total += sizes.get(name, 0)
            total += width * group.rows
    return math.ceil(total)
