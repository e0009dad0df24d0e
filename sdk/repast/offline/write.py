"""`write_to_offline_store` and push to the offline store: append rows to a view's batch source.

Rows are checked against the source's Parquet schema (docs/feast-compatibility.md §12.1: the
column *set* must be the source's, else an error listing the missing and extra columns),
reordered to the source's column order, cast to its types, and **appended as a new Parquet
file** in the source's directory; existing data is never rewritten. A local file is written
under a dot-prefixed name in the same directory and then renamed (`os.replace`) to
`part-<UTC time>-<uuid>.parquet`, so a concurrent reader (pyarrow datasets skip names that
start with `.` or `_`) sees the whole file or nothing. An S3 object only appears once its
upload completed, so S3 writes go straight to the final key. Hive-partitioned directories get
one new file per partition they touch.

A FileSource that is one local Parquet *file* (Feast's template uses one) is rewritten instead:
under an exclusive lock on a sidecar file (`.<name>.lock`, `fcntl.flock`), the file is re-read,
the new rows are appended after the old ones, and the result is written to a hidden temporary
file that replaces the original with one `os.replace`. Concurrent appends (threads or
processes) therefore each see the previous one's rows and lose nothing, and a reader sees the
old file or the new one, never a partial one. Each append costs a read and a write of the whole
file, so a source that grows by pushes belongs in a directory. Feast's file store also rewrites
the file but puts the new rows first and takes no lock. A single-file source on S3 is refused
(S3 has no rename to make the rewrite atomic): point it at a prefix.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from repast.context import StoreContext
from repast.data_source import FileSource
from repast.errors import (
    OfflineWriteError,
    SingleFileSourceError,
    SourceReadError,
)
from repast.feature_view import FeatureView
from repast.offline.checks import cast_to, check_columns, unmapped
from repast.online.write import to_arrow
from repast.spark_source import SparkSource

if TYPE_CHECKING:
    from repast.spark.write import SparkOfflineWrite

__all__ = [
    "OfflineWrite",
    "OfflineWriteError",
    "SingleFileSourceError",
    "prepare_offline_write",
    "write_to_offline_store",
]


@dataclass(frozen=True)
class _Target:
    """Where a source's files live: a filesystem and a directory on it."""

    filesystem: pafs.FileSystem
    directory: str
    location: str  # as the user wrote it, resolved (for messages)
    remote: bool
    single_file: bool = False  # `directory` is then the Parquet file itself


@dataclass(frozen=True)
class OfflineWrite:
    """Checked, cast rows ready to be appended; `commit()` writes them."""

    view: str
    target: _Target
    table: pa.Table
    partitioning: ds.Partitioning | None

    @property
    def location(self) -> str:
        return self.target.location

    def commit(self) -> list[str]:
        """Append the rows as new file(s); returns the paths written (none for no rows)."""
        if self.table.num_rows == 0:
            return []
        if self.target.single_file:
            return [_append_to_file(self.target.directory, self.table)]
        if self.partitioning is not None:
            return _write_partitioned(self.target, self.table, self.partitioning)
        return [_write_file(self.target, self.target.directory, self.table)]


# --- locating the source ------------------------------------------------------------------


def _file_source(view: FeatureView) -> FileSource:
    source = view.batch_source
    if not isinstance(source, FileSource):
        raise OfflineWriteError(
            f"feature view '{view.name}': its batch source '{source.name}' is a "
            f"{type(source).__name__}; the offline store writes FileSources and SparkSources"
        )
    return source


def _target(store: StoreContext, view: FeatureView, source: FileSource) -> _Target:
    location = store.config.resolve_location(source.path)
    if location.startswith("s3://"):
        try:
            filesystem = (
                pafs.S3FileSystem(endpoint_override=source.s3_endpoint_override)
                if source.s3_endpoint_override
                else pafs.FileSystem.from_uri(location)[0]
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise OfflineWriteError(
                f"feature view '{view.name}': cannot open the S3 location '{location}': {exc}"
            ) from exc
        directory = location[len("s3://") :].rstrip("/")
        return _Target(filesystem, directory, location, remote=True)
    if "://" in location:
        raise OfflineWriteError(
            f"feature view '{view.name}': writing to '{location}' is not supported yet "
            "(local directories and s3:// only)"
        )
    return _Target(pafs.LocalFileSystem(), location, location, remote=False)


def _check_directory(view: FeatureView, target: _Target) -> _Target:
    """The target, marked `single_file` when it is one local Parquet file."""
    try:
        info = target.filesystem.get_file_info(target.directory)
    except OSError as exc:
        raise SourceReadError(
            f"feature view '{view.name}': cannot reach its batch source '{target.location}': {exc}"
        ) from exc
    if info.type == pafs.FileType.File and not target.remote:
        return _Target(target.filesystem, target.directory, target.location, False, True)
    if info.type == pafs.FileType.File:
        raise SingleFileSourceError(
            f"feature view '{view.name}': its batch source '{target.location}' is a single "
            "Parquet object on S3, which cannot be rewritten atomically to append rows. Point "
            "the FileSource's path at a prefix (move the object under it, e.g. "
            f"'{_suggested_directory(target.location)}/'): new rows are then added as new "
            "objects beside the existing ones"
        )
    if info.type == pafs.FileType.NotFound and target.directory.endswith(".parquet"):
        raise SourceReadError(
            f"feature view '{view.name}': its batch source file '{target.location}' does not "
            "exist; create it (its schema defines the source's columns) or point the "
            "FileSource at a directory of Parquet files"
        )
    if info.type == pafs.FileType.NotFound:
        raise SourceReadError(
            f"feature view '{view.name}': its batch source directory '{target.location}' does "
            "not exist; create it with at least one Parquet file (its schema defines the "
            "source's columns)"
        )
    return target


def _suggested_directory(location: str) -> str:
    return location[: -len(".parquet")] if location.endswith(".parquet") else location + "_dir"


def _dataset(view: FeatureView, target: _Target) -> ds.FileSystemDataset:
    try:
        dataset = ds.dataset(
            target.directory, filesystem=target.filesystem, format="parquet", partitioning="hive"
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceReadError(
            f"feature view '{view.name}': cannot read its batch source '{target.location}': {exc}"
        ) from exc
    if not isinstance(dataset, ds.FileSystemDataset) or not dataset.files:
        raise SourceReadError(
            f"feature view '{view.name}': its batch source directory '{target.location}' holds "
            "no Parquet file to take the columns from; write the first file yourself (its "
            "schema defines the source's columns)"
        )
    return dataset


def _partitioning(dataset: ds.FileSystemDataset) -> ds.Partitioning | None:
    """Hive partitioning of the columns that live in directory names, not in the files."""
    fragment = next(iter(dataset.get_fragments()))
    physical = fragment.physical_schema.names
    keys = [f for f in dataset.schema if f.name not in physical]
    if not keys:
        return None
    return ds.partitioning(pa.schema(keys), flavor="hive")


# --- writing ------------------------------------------------------------------------------


def _file_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"part-{stamp}-{uuid.uuid4().hex}.parquet"


def _write_file(target: _Target, directory: str, table: pa.Table) -> str:
    final = f"{directory}/{_file_name()}"
    if target.remote:
        # An S3 object becomes visible only when its upload completes: no rename needed.
        pq.write_table(table, final, filesystem=target.filesystem)
        return final
    Path(directory).mkdir(parents=True, exist_ok=True)
    _replace_atomically(Path(final), table)
    return final


def _replace_atomically(file: Path, table: pa.Table) -> None:
    """Write `table` to a hidden file beside `file`, synced, then rename it over `file`:
    readers see the old file or the new one, never half of one."""
    temp = file.with_name(f".{file.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "wb") as out:
            pq.write_table(table, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, file)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _append_to_file(path: str, table: pa.Table) -> str:
    """Rewrite the Parquet file `path` with `table`'s rows after its own, atomically, under an
    exclusive lock that concurrent appenders (threads or processes) queue on."""
    file = Path(path)
    lock_path = file.with_name(f".{file.name}.lock")
    with open(lock_path, "a+b") as lock:
        # flock is per open file description, so two threads of one process exclude each other too.
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            existing = pq.read_table(file)
            # Columns were cast to the dataset's schema; the file's own metadata is kept.
            rows = table.select(existing.column_names).cast(existing.schema)
            _replace_atomically(file, pa.concat_tables([existing, rows]))
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return str(file)


def _write_partitioned(
    target: _Target, table: pa.Table, partitioning: ds.Partitioning
) -> list[str]:
    """One new file per partition directory the rows fall in (hive layout, same encoding)."""
    keys = partitioning.schema.names
    data_columns = [c for c in table.column_names if c not in keys]
    groups = table.group_by(keys, use_threads=False).aggregate([])
    written = []
    for i in range(groups.num_rows):
        mask: Any = None
        expression: Any = None
        for key in keys:
            value = groups.column(key)[i]
            if value.is_valid:
                test = pc.fill_null(pc.equal(table.column(key), value), False)
                term = ds.field(key) == value
            else:
                test, term = table.column(key).is_null(), ds.field(key).is_null()
            mask = test if mask is None else pc.and_(mask, test)
            expression = term if expression is None else expression & term
        directory, _ = partitioning.format(expression)
        sub = f"{target.directory}/{directory}".rstrip("/")
        written.append(_write_file(target, sub, table.filter(mask).select(data_columns)))
    return written


# --- entry points -------------------------------------------------------------------------


def prepare_offline_write(
    store: StoreContext,
    view: FeatureView,
    df: Any,
    what: str = "write_to_offline_store data",
    reorder_columns: bool = True,
) -> OfflineWrite | SparkOfflineWrite:
    """Check and cast `df` for `view`'s batch source without writing anything."""
    if isinstance(view.batch_source, SparkSource):
        from repast.spark.write import prepare_spark_write

        return prepare_spark_write(store, view, df, what, reorder_columns)
    source = _file_source(view)
    target = _check_directory(view, _target(store, view, source))
    dataset = _dataset(view, target)
    schema = dataset.schema
    table = unmapped(to_arrow(df), source, schema)
    table = check_columns(table, schema, view.name, target.location, reorder_columns, what)
    table = cast_to(table, schema, view.name, target.location, what)
    return OfflineWrite(view.name, target, table, _partitioning(dataset))


def write_to_offline_store(
    store: StoreContext, feature_view_name: str, df: Any, reorder_columns: bool = True
) -> int:
    """Append `df`'s rows to the view's batch source; returns the number of rows written."""
    view = store.catalog.online_feature_view(feature_view_name)
    write = prepare_offline_write(store, view, df, reorder_columns=reorder_columns)
    write.commit()
    return int(write.table.num_rows)
