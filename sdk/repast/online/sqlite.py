"""The embedded online store: one SQLite file, no server.

Schema (Repast's own, not Feast's one-row-per-feature table): one table per feature view,
named `"repast:<project>:<view>"`, holding one row per entity key:

    entity_key BLOB PRIMARY KEY   serialize_entity_key bytes (no project suffix)
    event_ts   INTEGER NOT NULL   event time, microseconds since the epoch (UTC)
    row        BLOB NOT NULL      the packed row (every feature in schema order; the same
                                  bytes as a `packed` Redis field, see docs/internals.md)
    WITHOUT ROWID

Feast's SQLite store names its tables `<project>_<view>`; a Feast project name holds only
`[A-Za-z0-9_]`, so the character after `repast` is `_` or a name character in every Feast
table and `:` in every Repast one: the two never collide, and one file can hold both (Feast's
tables are never read, changed or dropped). Repast's tables of earlier versions, named as
Feast's, are renamed when their view is next written, read or applied.

A read is one indexed look-up per entity and the values are decoded in Rust. Newer event time
wins inside SQL (`ON CONFLICT ... DO UPDATE ... WHERE excluded.event_ts > event_ts`), so an
older or equal write never replaces a row. The file is in WAL mode with a busy timeout, so a
server process can read while `materialize` writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.online.base import (
    Merge,
    OnlineStore,
    OnlineStoreError,
    OnlineView,
    PackedRows,
    PackedRowStore,
    PackedRowWriter,
    ReadRequest,
    ViewRows,
    WriteBatch,
    merge_partial_rows,
    packed_row_micros,
)

__all__ = ["SqliteOnlineStore"]

logger = logging.getLogger(__name__)

# SQLite limits bound parameters per statement (32766 since 3.32; older builds 999).
_MAX_VARS = 900
_BUSY_TIMEOUT_MS = 30_000


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteOnlineStore:
    """`online_store: {type: sqlite, path: ...}`; see the module docstring for the schema."""

    def __init__(self, path: Path, project: str, last_write_wins: bool = False) -> None:
        self.path = path
        self.project = project
        # `online_write_order: feast`: Feast's SQLite store overwrites whatever is stored.
        self.last_write_wins = last_write_wins
        self._condition = "" if last_write_wins else " WHERE excluded.event_ts > event_ts"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._adopted: set[str] = set()
        """Tables whose earlier name has been looked for (once per table and process)."""

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection shared by the SDK's threads, serialized by self._lock.
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
                isolation_level=None,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            # WAL + NORMAL survives a process crash; only an OS crash may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def table(self, view: OnlineView | str) -> str:
        name = view if isinstance(view, str) else view.name
        return f"repast:{self.project}:{name}"

    def _create(self, conn: sqlite3.Connection, view: OnlineView) -> None:
        table = self.table(view)
        if table not in self._adopted:
            self._adopt_earlier(conn, view)
            self._adopted.add(table)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_quote(table)} ("
            "entity_key BLOB PRIMARY KEY, event_ts INTEGER NOT NULL, row BLOB NOT NULL"
            ") WITHOUT ROWID"
        )

    def _adopt_earlier(self, conn: sqlite3.Connection, view: OnlineView | str) -> bool:
        """Renames this view's table from the name earlier Repast versions gave it (Feast's
        `<project>_<view>`) when that table is in Repast's layout (a Feast table, one row per
        feature, is left alone) and the new one does not exist yet; whether it did."""
        old = f"{self.project}_{view if isinstance(view, str) else view.name}"
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({_quote(old)})")]
        if columns != ["entity_key", "event_ts", "row"]:
            return False
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.table(view),)
        ).fetchone()
        if exists:
            return False
        conn.execute(f"ALTER TABLE {_quote(old)} RENAME TO {_quote(self.table(view))}")
        return True

    # -- writing -----------------------------------------------------------------------------

    def write_batch(self, view: OnlineView, batch: WriteBatch) -> int:
        if len(batch) == 0:
            return 0

        def rows(conn: sqlite3.Connection) -> Iterable[tuple[bytes, int, bytes]]:
            if batch.is_partial(view):
                stored = self._stored_rows(conn, view, batch.keys.to_pylist())
                columns = merge_partial_rows(view, batch, stored)
            else:
                columns = [batch.columns[f] for f in view.features]
            packed = _core.encode_packed_rows(
                columns, list(view.value_types), batch.event_timestamps, list(view.features)
            )
            micros = pc.cast(batch.event_timestamps, pa.int64())
            keys = batch.keys.to_pylist()
            return zip(keys, micros.to_pylist(), packed.to_pylist(), strict=True)

        return self._upsert(view, rows)

    @property
    def writes_packed_rows(self) -> bool:
        return True

    def write_packed_rows(self, view: OnlineView, keys: list[bytes], rows: list[bytes]) -> int:
        """Full packed rows, already encoded (`online/small_write.py`), merged as `write_batch`
        merges: a row replaces the stored one only when its event time is newer."""
        times = [packed_row_micros(row) for row in rows]
        return self._upsert(view, lambda conn: zip(keys, times, rows, strict=True))

    async def write_packed_rows_async(
        self, view: OnlineView, keys: list[bytes], rows: list[bytes]
    ) -> int:
        # A worker thread: the write may wait for the database lock (another writer).
        return await asyncio.to_thread(self.write_packed_rows, view, keys, rows)

    def _upsert(
        self,
        view: OnlineView,
        rows: Callable[[sqlite3.Connection], Iterable[tuple[bytes, int, bytes]]],
    ) -> int:
        """Stores `rows(conn)` — (key, event time, packed row) — in one transaction, each
        replacing a stored row only when newer; returns the rows written."""
        try:
            with self._lock:
                conn = self._connection()
                self._create(conn, view)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    before = conn.total_changes
                    conn.executemany(
                        f"INSERT INTO {_quote(self.table(view))} (entity_key, event_ts, row) "
                        "VALUES (?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET "
                        "event_ts = excluded.event_ts, row = excluded.row" + self._condition,
                        rows(conn),
                    )
                    written = conn.total_changes - before
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise OnlineStoreError(
                f"SQLite online store {self.path}: writing view '{view.name}' failed: {exc}"
            ) from exc
        return written

    def write_batches(self, view: OnlineView, batches: Iterable[WriteBatch]) -> int:
        return sum(self.write_batch(view, batch) for batch in batches)

    def update_tiles(self, view: OnlineView, keys: list[bytes], merge: Merge) -> None:
        """An aggregated view's tile sets (`online/tiles.py`), read, merged and written in one
        transaction (`BEGIN IMMEDIATE` holds off every other writer meanwhile)."""
        table = _quote(self.table(view))
        try:
            with self._lock:
                conn = self._connection()
                self._create(conn, view)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    sets, newest = merge(self._stored(conn, view, keys))
                    conn.executemany(
                        f"INSERT INTO {table} (entity_key, event_ts, row) VALUES (?, ?, ?) "
                        "ON CONFLICT(entity_key) DO UPDATE SET "
                        "event_ts = excluded.event_ts, row = excluded.row",
                        zip(keys, newest, sets, strict=True),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise OnlineStoreError(
                f"SQLite online store {self.path}: writing view '{view.name}' failed: {exc}"
            ) from exc

    def prune_tiles(self, view: OnlineView, before_micros: int) -> int:
        """Deletes the tile sets of entities without an event since `before_micros` (no read
        reaches their tiles any more); returns how many."""
        try:
            with self._lock:
                conn = self._connection()
                self._create(conn, view)
                cursor = conn.execute(
                    f"DELETE FROM {_quote(self.table(view))} WHERE event_ts < ?", (before_micros,)
                )
                conn.commit()
                return int(cursor.rowcount)
        except sqlite3.Error as exc:
            raise OnlineStoreError(
                f"SQLite online store {self.path}: pruning view '{view.name}' failed: {exc}"
            ) from exc

    def _stored_rows(
        self, conn: sqlite3.Connection, view: OnlineView, keys: list[bytes | None]
    ) -> pa.Array:
        return pa.array(self._stored(conn, view, keys), pa.binary())

    def _stored(
        self, conn: sqlite3.Connection, view: OnlineView, keys: Sequence[bytes | None]
    ) -> PackedRows:
        found: dict[bytes, bytes] = {}
        try:
            self._select(conn, view, keys, found)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            if self._adopt_earlier(conn, view):
                self._select(conn, view, keys, found)
            # else never written: not found
        return [found.get(k) for k in keys]  # type: ignore[arg-type]

    def _select(
        self,
        conn: sqlite3.Connection,
        view: OnlineView,
        keys: Sequence[bytes | None],
        found: dict[bytes, bytes],
    ) -> None:
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            found.update(
                conn.execute(
                    f"SELECT entity_key, row FROM {_quote(self.table(view))} "
                    f"WHERE entity_key IN ({marks})",
                    chunk,
                ).fetchall()
            )

    # -- reading -----------------------------------------------------------------------------

    holds_packed_rows = True

    def read_packed(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        try:
            with self._lock:
                conn = self._connection()
                return [self._stored(conn, r.view, r.key_list()) for r in requests]
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"SQLite online store {self.path}: read failed: {exc}") from exc

    async def read_packed_async(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        # Local file reads take microseconds; a thread hop would cost more than it saves.
        return self.read_packed(requests)

    def read(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        out = []
        for request, rows in zip(requests, self.read_packed(requests), strict=True):
            select = request.view.positions(request.features)
            ts, columns = _core.decode_packed_rows(
                pa.array(rows, pa.binary()), list(request.view.value_types), select
            )
            out.append(ViewRows(ts, list(columns)))
        return out

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        # Local file reads take microseconds; a thread hop would cost more than it saves.
        return self.read(requests)

    # -- apply and teardown ------------------------------------------------------------------

    def update(
        self, views_to_keep: Sequence[OnlineView], views_to_delete: Sequence[OnlineView]
    ) -> None:
        with self._lock:
            conn = self._connection()
            self._adopted.clear()
            # Dropped first: a view whose rows became unreadable is in both lists, and must end
            # up with an empty table, not none.
            for view in views_to_delete:
                self._adopt_earlier(conn, view)
                conn.execute(f"DROP TABLE IF EXISTS {_quote(self.table(view))}")
            for view in views_to_keep:
                self._create(conn, view)
            feast = self._feast_tables(conn, views_to_keep)
        if feast:
            logger.warning(
                "SQLite online store %s also holds Feast's tables (%s), one row per feature: "
                "Repast neither reads nor changes them and keeps its own beside them (%s); "
                "run `repast materialize` to load Repast's",
                self.path,
                ", ".join(feast),
                ", ".join(
                    self.table(v) for v in views_to_keep if f"{self.project}_{v.name}" in feast
                ),
            )

    def _feast_tables(self, conn: sqlite3.Connection, views: Sequence[OnlineView]) -> list[str]:
        """The names of `views`' tables in Feast's layout (they have a `feature_name` column)."""
        found = []
        for view in views:
            name = f"{self.project}_{view.name}"
            columns = {c[1] for c in conn.execute(f"PRAGMA table_info({_quote(name)})")}
            if "feature_name" in columns:
                found.append(name)
        return found

    def teardown(self, views: Sequence[OnlineView]) -> None:
        self.update([], views)

    def infra(self) -> dict[str, object]:
        with self._lock:
            names = [
                r[0]
                for r in self._connection().execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? "
                    "ESCAPE '\\' ORDER BY name",
                    (_like_prefix(self.table("")),),
                )
            ]
        return {"type": "sqlite", "path": str(self.path), "tables": names}

    async def close_async(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (ESCAPE '\\') for names that start with `prefix`, taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return escaped + "%"


def _chunks(items: Sequence[bytes | None]) -> Iterator[Sequence[bytes | None]]:
    for start in range(0, len(items), _MAX_VARS):
        yield items[start : start + _MAX_VARS]


if TYPE_CHECKING:
    # mypy checks that the store has every capability it declares (online/base.py).
    def _capabilities(
        store: SqliteOnlineStore,
    ) -> tuple[OnlineStore, PackedRowStore, PackedRowWriter]:
        return store, store, store
