"""write_to_offline_store and push to the offline store: new Parquet files appended to the batch
source's directory, schema checks that write nothing, atomic files under concurrent readers."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from feature_repos import write_template_repo
from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from repast.config import RepoConfig
from repast.data_source import PushMode
from repast.offline.write import OfflineWriteError, SingleFileSourceError
from repast.types import Float32, Int64

T = datetime(2024, 1, 1, 12, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_timestamp", TS),
        ("created", TS),
        ("conv_rate", pa.float32()),
        ("trips", pa.int64()),
    ]
)


def rows(*items: tuple[int, datetime, float, int]) -> pa.Table:
    return pa.table(
        {
            "driver_id": [i[0] for i in items],
            "event_timestamp": pa.array([i[1] for i in items], TS),
            "created": pa.array([i[1] for i in items], TS),
            "conv_rate": pa.array([i[2] for i in items], pa.float32()),
            "trips": [i[3] for i in items],
        },
        schema=SCHEMA,
    )


def build(tmp_path: Path, field_mapping: dict[str, str] | None = None) -> FeatureStore:
    data = tmp_path / "data" / "stats"
    data.mkdir(parents=True)
    first = rows((1, T, 0.1, 10), (2, T, 0.2, 20))
    if field_mapping:
        first = first.rename_columns(
            [{v: k for k, v in field_mapping.items()}.get(c, c) for c in first.column_names]
        )
    pq.write_table(first, data / "part-0.parquet")
    config = RepoConfig.model_validate(
        {
            "project": "w",
            "registry": str(tmp_path / "registry.json"),
            "online_store": {"type": "sqlite", "path": "data/online.db"},
            "repo_path": tmp_path,
        }
    )
    store = FeatureStore(config=config)
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(
        name="stats_source",
        path="data/stats",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        field_mapping=field_mapping,
    )
    push = PushSource(name="stats_push", batch_source=source)
    view = FeatureView(
        name="stats",
        entities=[driver],
        ttl=timedelta(days=1),
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=source,
    )
    pushed = FeatureView(
        name="stats_pushed",
        entities=[driver],
        ttl=timedelta(0),  # unbounded: online reads of 2024 rows are not past the ttl
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=push,
    )
    store.apply([driver, source, push, view, pushed])
    return store


def training(store: FeatureStore, ids: list[int], when: datetime, view: str = "stats") -> Any:
    entity = pd.DataFrame({"driver_id": ids, "event_timestamp": [when] * len(ids)})
    frame = store.get_historical_features(entity, [f"{view}:trips", f"{view}:conv_rate"])
    return frame.to_arrow().column("trips").to_pylist()


def files(store: FeatureStore) -> list[str]:
    return sorted(os.listdir(store.repo_path / "data" / "stats"))


def test_append_is_a_new_file_and_training_sees_it(tmp_path: Path) -> None:
    store = build(tmp_path)
    later = T + timedelta(hours=1)
    assert training(store, [1, 2, 3], later) == [10, 20, None]
    store.write_to_offline_store("stats", rows((1, later, 0.5, 11), (3, later, 0.7, 30)))
    names = files(store)
    assert len(names) == 2
    assert names[0] == "part-0.parquet"
    assert names[1].startswith("part-")
    assert names[1].endswith(".parquet")
    # the original file is untouched; the new one holds exactly the new rows
    assert pq.read_table(store.repo_path / "data" / "stats" / "part-0.parquet").num_rows == 2
    assert training(store, [1, 2, 3], later) == [11, 20, 30]
    # pandas input, columns in another order, naive timestamps (UTC), int-valued floats
    df = pd.DataFrame(
        {
            "trips": [12.0],
            "conv_rate": [0.9],
            "driver_id": [1],
            "event_timestamp": [(later + timedelta(minutes=5)).replace(tzinfo=None)],
            "created": [later.replace(tzinfo=None)],
        }
    )
    store.write_to_offline_store("stats", df)
    assert training(store, [1], later + timedelta(minutes=10)) == [12]
    assert ds.dataset(store.repo_path / "data" / "stats").schema == SCHEMA


def test_schema_mismatch_names_columns_and_writes_nothing(tmp_path: Path) -> None:
    store = build(tmp_path)
    before = files(store)
    good = rows((1, T, 0.5, 11))
    with pytest.raises(OfflineWriteError, match=r"missing \['trips'\], extra \[\]") as info:
        store.write_to_offline_store("stats", good.drop_columns(["trips"]))
    assert "feature view 'stats'" in str(info.value)
    assert str(store.repo_path / "data" / "stats") in str(info.value)
    with pytest.raises(OfflineWriteError, match=r"missing \[\], extra \['label'\]"):
        store.write_to_offline_store("stats", good.append_column("label", pa.array(["x"])))
    with pytest.raises(OfflineWriteError, match=r"missing \['trips'\], extra \['trip'\]"):
        store.write_to_offline_store("stats", good.rename_columns([*good.column_names[:4], "trip"]))
    bad = pa.table(
        {**{c: good.column(c) for c in good.column_names}, "trips": pa.array(["7", "x"][:1])}
    )
    bad = pa.concat_tables([bad, bad]).set_column(
        4, "trips", pa.chunked_array([pa.array(["7", "oops"])])
    )
    with pytest.raises(OfflineWriteError, match=r"column 'trips'.*row 1 holds 'oops'"):
        store.write_to_offline_store("stats", bad)
    with pytest.raises(OfflineWriteError, match=r"column 'conv_rate'.*cannot be stored"):
        store.write_to_offline_store(
            "stats", good.set_column(3, "conv_rate", pa.array([[1.0]], pa.list_(pa.float64())))
        )
    with pytest.raises(OfflineWriteError, match="reorder_columns=True"):
        store.write_to_offline_store(
            "stats", good.select(good.column_names[::-1]), reorder_columns=False
        )
    assert files(store) == before


def test_field_mapping_accepts_source_or_mapped_names(tmp_path: Path) -> None:
    store = build(tmp_path, field_mapping={"id": "driver_id"})
    later = T + timedelta(hours=1)
    raw = rows((1, later, 0.5, 11)).rename_columns(["id", *SCHEMA.names[1:]])
    store.write_to_offline_store("stats", raw)
    store.write_to_offline_store("stats", rows((2, later, 0.6, 21)))  # mapped name
    assert training(store, [1, 2], later) == [11, 21]
    assert pq.read_schema(store.repo_path / "data" / "stats" / files(store)[-1]).names[0] == "id"


def test_push_offline_and_online_and_offline(tmp_path: Path) -> None:
    store = build(tmp_path)
    later = T + timedelta(hours=1)
    store.push("stats_push", rows((1, later, 0.5, 11)), to=PushMode.OFFLINE)
    assert training(store, [1], later, "stats_pushed") == [11]
    online = store.get_online_features(["stats_pushed:trips"], {"driver_id": [1]}).to_dict()
    assert online["trips"] == [None]  # offline only
    store.push("stats_push", rows((2, later, 0.6, 22)), to=PushMode.ONLINE_AND_OFFLINE)
    assert training(store, [1, 2], later, "stats_pushed") == [11, 22]
    online = store.get_online_features(["stats_pushed:trips"], {"driver_id": [2]}).to_dict()
    assert online["trips"] == [22]
    assert len(files(store)) == 3
    # a bad push writes nothing, online or offline
    with pytest.raises(OfflineWriteError, match="missing"):
        store.push(
            "stats_push",
            rows((3, later, 0.6, 33)).drop_columns(["created"]),
            to=PushMode.ONLINE_AND_OFFLINE,
        )
    online = store.get_online_features(["stats_pushed:trips"], {"driver_id": [3]}).to_dict()
    assert online["trips"] == [None]
    assert len(files(store)) == 3


def test_single_file_source_gets_rows_appended(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_template_repo(tmp_path / "proj"))
    store.apply_repo()
    path = store.repo_path / "data" / "driver_stats.parquet"
    before = pq.read_table(path)
    rows_ = before.slice(0, 2)
    store.write_to_offline_store("driver_hourly_stats", rows_)
    store.push("driver_stats_push_source", rows_.slice(1, 1), to=PushMode.OFFLINE)
    after = pq.read_table(path)
    # The old rows first, unchanged, then the new ones in the order they were written.
    assert after.schema == before.schema
    assert after.slice(0, before.num_rows).equals(before)
    assert after.slice(before.num_rows).equals(pa.concat_tables([rows_, rows_.slice(1, 1)]))
    # Nothing but the file and its lock is left in the folder.
    leftovers = sorted(p.name for p in path.parent.iterdir() if p.name.startswith("."))
    assert leftovers == [".driver_stats.parquet.lock"]


def _append_in_process(repo: str, driver_id: int, count: int) -> None:
    store = FeatureStore(repo_path=repo)
    base = pq.read_table(Path(repo) / "data" / "driver_stats.parquet").slice(0, 1)
    for i in range(count):
        row = base.set_column(
            base.schema.get_field_index("driver_id"),
            "driver_id",
            pa.array([driver_id * 1000 + i], pa.int64()),
        )
        store.write_to_offline_store("driver_hourly_stats", row)


@pytest.mark.timeout(120)
def test_concurrent_appends_to_a_single_file_lose_nothing(tmp_path: Path) -> None:
    import multiprocessing

    repo = write_template_repo(tmp_path / "proj")
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    path = store.repo_path / "data" / "driver_stats.parquet"
    original = pq.read_table(path).num_rows
    # Two processes and two threads of this one append at once: each queues on the lock.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_in_process, args=(str(repo), 7, 5)),
        context.Process(target=_append_in_process, args=(str(repo), 8, 5)),
    ]
    threads = [threading.Thread(target=_append_in_process, args=(str(repo), n, 5)) for n in (5, 6)]
    for process in processes:
        process.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    ids = pq.read_table(path).column("driver_id").to_pylist()
    assert len(ids) == original + 20
    assert sorted(ids[original:]) == sorted(n * 1000 + i for n in (5, 6, 7, 8) for i in range(5))


def test_hive_partitioned_source_gets_a_file_per_partition(tmp_path: Path) -> None:
    store = build(tmp_path)
    data = store.repo_path / "data" / "stats"
    table = pq.read_table(data / "part-0.parquet")
    (data / "part-0.parquet").unlink()
    ds.write_dataset(
        table.append_column("region", pa.array(["eu", "us"])),
        data,
        format="parquet",
        partitioning=["region"],
        partitioning_flavor="hive",
    )
    new = rows((1, T + timedelta(hours=1), 0.5, 11), (3, T, 0.7, 30))
    store.write_to_offline_store("stats", new.append_column("region", pa.array(["eu", "ap"])))
    got = ds.dataset(data, format="parquet", partitioning="hive").to_table()
    assert sorted(
        zip(got.column("region").to_pylist(), got.column("trips").to_pylist(), strict=False)
    ) == [
        ("ap", 30),
        ("eu", 10),
        ("eu", 11),
        ("us", 20),
    ]


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    store = build(tmp_path)
    directory = store.repo_path / "data" / "stats"
    batch = 20_000
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                n = ds.dataset(directory, format="parquet").to_table().num_rows
            except BaseException as exc:
                errors.append(exc)
                return
            seen.append(n)

    # What a reader meets while a write is in flight: a dot-prefixed temporary file, which
    # pyarrow datasets skip (the garbage below would fail any Parquet read).
    garbage = directory / ".part-in-flight.parquet.0000.tmp"
    garbage.write_bytes(b"PAR1 half a file")
    assert ds.dataset(directory, format="parquet").count_rows() == 2
    garbage.unlink()
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(15):
            ids = pa.array(range(i * batch, (i + 1) * batch), pa.int64())
            table = pa.table(
                {
                    "driver_id": ids,
                    "event_timestamp": pa.array([T] * batch, TS),
                    "created": pa.array([T] * batch, TS),
                    "conv_rate": pa.array([0.5] * batch, pa.float32()),
                    "trips": ids,
                }
            )
            store.write_to_offline_store("stats", table)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen
    # Every read saw the first file plus whole appended files, nothing in between.
    assert all((n - 2) % batch == 0 for n in seen), sorted(set(seen))
    assert not [f for f in os.listdir(directory) if f.startswith(".")]
    assert ds.dataset(directory, format="parquet").count_rows() == 2 + 15 * batch


def _s3(s3_env: Any) -> Any:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        endpoint_override=s3_env.endpoint_url,
        access_key=s3_env.access_key,
        secret_key=s3_env.secret_key,
        region=s3_env.region,
    )


def _apply_s3_view(store: FeatureStore, s3_env: Any, name: str, path: str) -> None:
    """A view like `stats` whose batch source is `path` on the test's S3 server."""
    view = store.get_feature_view("stats")
    source = FileSource(
        name=name,
        path=path,
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        s3_endpoint_override=s3_env.endpoint_url,
    )
    s3_view = FeatureView(
        name=name,
        entities=[store.get_entity("driver")],
        ttl=view.ttl,
        schema=view.schema,
        source=source,
    )
    store.apply([source, s3_view], skip_source_validation=True)


def test_s3_source_gets_a_new_object(tmp_path: Path, s3_env: Any, s3_bucket: str) -> None:
    import pyarrow.fs as pafs

    store = build(tmp_path)
    fs = _s3(s3_env)
    pq.write_table(rows((1, T, 0.1, 10)), f"{s3_bucket}/stats/part-0.parquet", filesystem=fs)
    _apply_s3_view(store, s3_env, "s3_stats", f"s3://{s3_bucket}/stats")
    store.write_to_offline_store("s3_stats", rows((2, T, 0.2, 20)))
    names = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(f"{s3_bucket}/stats")))
    assert len(names) == 2
    got = ds.dataset(f"{s3_bucket}/stats", filesystem=fs, format="parquet").to_table()
    assert sorted(got.column("trips").to_pylist()) == [10, 20]
    with pytest.raises(OfflineWriteError, match="missing"):
        store.write_to_offline_store("s3_stats", rows((2, T, 0.2, 20)).drop_columns(["trips"]))


def test_single_file_source_on_s3_is_refused(tmp_path: Path, s3_env: Any, s3_bucket: str) -> None:
    import pyarrow.fs as pafs

    store = build(tmp_path)
    fs = _s3(s3_env)
    key = f"{s3_bucket}/one/stats.parquet"
    pq.write_table(rows((1, T, 0.1, 10)), key, filesystem=fs)
    _apply_s3_view(store, s3_env, "s3_one", f"s3://{key}")
    with pytest.raises(SingleFileSourceError, match=r"s3_one.*single Parquet object on S3"):
        store.write_to_offline_store("s3_one", rows((2, T, 0.2, 20)))
    assert fs.get_file_info(pafs.FileSelector(f"{s3_bucket}/one"))[0].path == key
