"""The SQLite online store: schema, WAL, a reader process while materialize writes, tables
created on apply and dropped with their view, the registry's infra record."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from golden_repo import build_store, run_steps
from repast import FeatureStore
from repast.online import OnlineView, ReadRequest, SqliteOnlineStore, WriteBatch

SQLITE = {"type": "sqlite", "path": "data/online.db"}


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [r[0] for r in rows]


def test_apply_creates_one_table_per_view_in_wal_mode(tmp_path: Path) -> None:
    store = build_store(tmp_path, SQLITE)
    db = tmp_path / "data" / "online.db"
    assert _tables(db) == [
        "repast:golden:driver_customer_stats",
        "repast:golden:driver_hourly_stats",
        "repast:golden:driver_profile",
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = conn.execute('PRAGMA table_info("repast:golden:driver_profile")').fetchall()
    assert [(c[1], c[2]) for c in columns] == [
        ("entity_key", "BLOB"),
        ("event_ts", "INTEGER"),
        ("row", "BLOB"),
    ]
    document = store.registry.snapshot(allow_cache=False).to_document()
    assert document["projects"]["golden"]["infra"] == {
        "type": "sqlite",
        "path": str(db),
        "tables": _tables(db),
    }
    store.online_store.close()


def test_rows_hold_the_key_the_event_time_and_a_packed_row(tmp_path: Path) -> None:
    store = build_store(tmp_path, SQLITE)
    run_steps(store)
    with sqlite3.connect(tmp_path / "data" / "online.db") as conn:
        rows = conn.execute(
            'SELECT entity_key, event_ts, row FROM "repast:golden:driver_hourly_stats" '
            "ORDER BY event_ts"
        ).fetchall()
    assert len(rows) == 7
    key, event_ts, row = next(r for r in rows if r[0].endswith((1001).to_bytes(8, "little")))
    assert key.hex() == "0100000002000000090000006472697665725f69640400000008000000e903000000000000"
    assert event_ts == int(datetime(2024, 1, 1, 11, tzinfo=UTC).timestamp() * 1_000_000)
    assert row[0] == 1  # packed row format version
    store.online_store.close()


def test_deleting_a_view_drops_its_table_and_teardown_drops_all(tmp_path: Path) -> None:
    store = build_store(tmp_path, SQLITE)
    run_steps(store)
    store.apply(
        [],
        objects_to_delete=[
            store.get_feature_view("driver_profile"),
            store.get_feature_service("driver_service"),
        ],
    )
    db = tmp_path / "data" / "online.db"
    assert "repast:golden:driver_profile" not in _tables(db)
    assert "repast:golden:driver_hourly_stats" in _tables(db)
    store.teardown()
    assert _tables(db) == []
    store.online_store.close()


def _read_while_writing(path: str, rounds: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SqliteOnlineStore(Path(path), "golden")
    view = OnlineView("v", ("driver_id",), ("x",), (4,), (pa.int64(),))
    keys = pa.array([b"k0", b"k1"], pa.binary())
    found = 0
    for _ in range(rounds):
        rows = store.read([ReadRequest(view, keys, ["x"])])[0]
        found += rows.columns[0].null_count == 0
    out.put(found)
    store.close()


def test_a_reader_process_reads_while_another_writes(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    writer = SqliteOnlineStore(path, "golden")
    view = OnlineView("v", ("driver_id",), ("x",), (4,), (pa.int64(),))
    writer.update([view], [])
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    reader = ctx.Process(target=_read_while_writing, args=(str(path), 300, out))
    reader.start()
    for i in range(300):
        ts = pa.array([i, i], pa.timestamp("us", tz="UTC"))
        batch = WriteBatch(
            pa.array([b"k0", b"k1"], pa.binary()), ts, {"x": pa.array([i, i], pa.int64())}
        )
        assert writer.write_batch(view, batch) == 2
    reader.join(60)
    assert reader.exitcode == 0
    # Neither side failed with "database is locked"; the reader saw whole rows only.
    assert 0 <= out.get(timeout=5) <= 300
    writer.close()


def test_equal_and_older_rows_are_not_counted_as_written(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db", "p")
    view = OnlineView("v", ("driver_id",), ("x",), (4,), (pa.int64(),))

    def batch(ts: int, x: int) -> WriteBatch:
        return WriteBatch(
            pa.array([b"k"], pa.binary()),
            pa.array([ts], pa.timestamp("us", tz="UTC")),
            {"x": pa.array([x], pa.int64())},
        )

    assert store.write_batch(view, batch(10, 1)) == 1
    assert store.write_batch(view, batch(10, 2)) == 0
    assert store.write_batch(view, batch(9, 3)) == 0
    assert store.write_batch(view, batch(11, 4)) == 1
    rows = store.read([ReadRequest(view, pa.array([b"k", b"missing"], pa.binary()), ["x"])])[0]
    assert rows.columns[0].to_pylist() == [4, None]
    assert rows.event_timestamps.null_count == 1
    store.close()


def test_reading_a_view_never_written_is_not_found(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db", "p")
    view = OnlineView("nothing", ("driver_id",), ("x",), (4,), (pa.int64(),))
    rows = store.read([ReadRequest(view, pa.array([b"k"], pa.binary()), ["x"])])[0]
    assert rows.columns[0].to_pylist() == [None]
    store.close()


def _unused(_: FeatureStore) -> None:
    return None


def _batch(x: int) -> WriteBatch:
    return WriteBatch(
        pa.array([b"k0"], pa.binary()),
        pa.array([10], pa.timestamp("us", tz="UTC")),
        {"x": pa.array([x], pa.int64())},
    )


def _feast_table(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(
        f'CREATE TABLE "{name}" (entity_key BLOB, feature_name TEXT, value BLOB, '
        "vector_value BLOB, event_ts timestamp, created_ts timestamp, "
        "PRIMARY KEY(entity_key, feature_name))"
    )
    conn.execute(f"INSERT INTO \"{name}\" VALUES (x'01', 'x', x'02', NULL, '2024-01-01', NULL)")


@pytest.mark.parametrize("project", ["p", "p_v", "repast", "repast_p"])
def test_a_file_feast_wrote_holds_repasts_tables_beside_feasts_untouched(
    tmp_path: Path, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Feast names its tables `<project>_<view>`, one row per (entity, feature); Repast's
    # names never equal one of them, whatever the two projects and views are called.
    path = tmp_path / "online_store.db"
    conn = sqlite3.connect(path)
    feast = ["p_v", "p_v_w", "repast_p_v", "p_w"]
    for name in feast:
        _feast_table(conn, name)
    conn.commit()
    dumped = {n: conn.execute(f'SELECT * FROM "{n}"').fetchall() for n in feast}
    conn.close()
    store = SqliteOnlineStore(path, project)
    view = OnlineView("v", ("driver_id",), ("x",), (4,), (pa.int64(),))
    other = OnlineView("w", ("driver_id",), ("x",), (4,), (pa.int64(),))
    with caplog.at_level("WARNING", logger="repast.online.sqlite"):
        store.update([view, other], [])
    # Feast's tables for this project's views (`<project>_<view>`) are named, once.
    expected = {"p": "p_v, p_w", "p_v": "p_v_w", "repast_p": "repast_p_v"}.get(project)
    if expected is None:
        assert caplog.records == []
    else:
        [record] = caplog.records
        assert f"also holds Feast's tables ({expected})" in record.getMessage()
    keys = pa.array([b"k0"], pa.binary())
    assert store.write_batch(view, _batch(7)) == 1
    assert store.read([ReadRequest(view, keys, ["x"])])[0].columns[0].to_pylist() == [7]
    store.update([view], [other])  # deleting a view drops Repast's table, never Feast's
    store.teardown([view])
    store.close()
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == set(feast)
    assert {n: conn.execute(f'SELECT * FROM "{n}"').fetchall() for n in feast} == dumped
    conn.close()


def test_tables_named_by_earlier_repast_versions_are_renamed_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    view = OnlineView("v", ("driver_id",), ("x",), (4,), (pa.int64(),))
    store = SqliteOnlineStore(path, "p")
    store.write_batch(view, _batch(7))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE "repast:p:v" RENAME TO "p_v"')  # as Repast named it before
    conn.commit()
    conn.close()
    keys = pa.array([b"k0"], pa.binary())
    reader = SqliteOnlineStore(path, "p")
    assert reader.read([ReadRequest(view, keys, ["x"])])[0].columns[0].to_pylist() == [7]
    assert reader.infra()["tables"] == ["repast:p:v"]
    reader.close()
