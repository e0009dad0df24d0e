"""The Arrow join driver: inputs, sources on disk, dtypes and every error path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import _core
from repast._core import RepastError
from repast.offline import (
    ColumnNotFoundError,
    EntityTimestampInferenceError,
    FeatureNameCollisionError,
    KeyTypeMismatchError,
    OfflineStoreError,
    RetrievalJob,
    RetrievalMetadata,
    SourceReadError,
    TimestampTypeError,
    ViewJoin,
    infer_timestamp_column,
    point_in_time_join,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def source_table() -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array([1, 1, 2, 2], type=pa.int64()),
            "event_timestamp": pa.array(
                [T0, T0 + 2 * H, T0, T0 + 5 * H], type=pa.timestamp("us", tz="UTC")
            ),
            "trips": pa.array([10, 20, None, 40], type=pa.int64()),
            "rate": pa.array([0.5, 0.25, 1.0, None], type=pa.float64()),
        }
    )


def view(source: Any, **changes: Any) -> ViewJoin:
    spec: dict[str, Any] = {
        "name": "driver_stats",
        "source": source,
        "entity_join_keys": [("driver_id", "driver_id")],
        "timestamp_field": "event_timestamp",
        "features": [("trips", "trips"), ("rate", "rate")],
        "ttl": 3 * H,
    }
    spec.update(changes)
    return ViewJoin(**spec)


NS_UTC = pa.timestamp("ns", tz="UTC")


def entity_table(ts_type: pa.DataType = NS_UTC) -> pa.Table:
    stamps = [T0 + H, T0 + 2 * H, T0 + 5 * H + timedelta(microseconds=1), T0 + 3 * H]
    if ts_type.tz is None and pa.types.is_timestamp(ts_type):
        stamps = [s.replace(tzinfo=None) for s in stamps]
    return pa.table(
        {
            "driver_id": pa.array([1, 1, 1, 2], type=pa.int64()),
            "event_timestamp": pa.array(stamps, type=ts_type),
        }
    )


EXPECTED_TRIPS = [10, 20, None, None]
EXPECTED_RATE = [0.5, 0.25, None, 1.0]


def check(table: pa.Table) -> None:
    assert table.column("trips").to_pylist() == EXPECTED_TRIPS
    assert table.column("rate").to_pylist() == EXPECTED_RATE


# --- timestamps -----------------------------------------------------------------------------


def test_infer_timestamp_column() -> None:
    assert infer_timestamp_column(pa.schema([("event_timestamp", pa.int64())])) == (
        "event_timestamp"
    )
    schema = pa.schema([("id", pa.int64()), ("when", pa.timestamp("ms", tz="UTC"))])
    assert infer_timestamp_column(schema) == "when"


@pytest.mark.parametrize(
    ("schema", "found"),
    [
        (pa.schema([("id", pa.int64())]), "none"),
        (pa.schema([("a", pa.timestamp("us")), ("b", pa.timestamp("ns"))]), "'a', 'b'"),
    ],
)
def test_infer_timestamp_column_errors(schema: pa.Schema, found: str) -> None:
    with pytest.raises(EntityTimestampInferenceError, match="event_timestamp") as info:
        infer_timestamp_column(schema)
    assert found in str(info.value)


@pytest.mark.parametrize(
    "ts_type",
    [
        pa.timestamp("s", tz="UTC"),
        pa.timestamp("ms"),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ns"),
        pa.timestamp("ns", tz="America/New_York"),
    ],
    ids=str,
)
def test_entity_timestamps_in_any_unit_and_zone(ts_type: pa.DataType) -> None:
    entity = entity_table(pa.timestamp("us", tz="UTC"))
    if ts_type.unit == "s" or ts_type.unit == "ms":
        # Drop the +1 µs row: those units cannot hold it.
        entity = entity.slice(0, 2)
    column = entity.column("event_timestamp").cast(ts_type)
    entity = entity.set_column(1, "event_timestamp", column)
    table = point_in_time_join(entity, "event_timestamp", [view(source_table())])
    n = len(entity)
    assert table.column("trips").to_pylist() == EXPECTED_TRIPS[:n]
    # The entity column is returned as given.
    assert table.column("event_timestamp").type == ts_type


def test_naive_entity_timestamps_are_utc() -> None:
    check(
        point_in_time_join(
            entity_table(pa.timestamp("ns")), "event_timestamp", [view(source_table())]
        )
    )


def test_date_entity_timestamps() -> None:
    entity = pa.table({"driver_id": [1], "day": pa.array([date(2024, 1, 2)], type=pa.date32())})
    table = point_in_time_join(entity, "day", [view(source_table(), ttl=None)])
    assert table.column("trips").to_pylist() == [20]


def test_timestamp_column_must_be_a_timestamp() -> None:
    entity = pa.table({"driver_id": [1], "event_timestamp": ["2024-01-01"]})
    with pytest.raises(TimestampTypeError, match="entity frame column 'event_timestamp'"):
        point_in_time_join(entity, "event_timestamp", [view(source_table())])


def test_out_of_range_timestamps_name_the_column() -> None:
    entity = pa.table(
        {
            "driver_id": [1],
            "event_timestamp": pa.array([datetime(3000, 1, 1)], type=pa.timestamp("us")),
        }
    )
    with pytest.raises(TimestampTypeError, match="'event_timestamp'"):
        point_in_time_join(entity, "event_timestamp", [view(source_table())])


def test_null_entity_timestamps_get_nulls() -> None:
    entity = pa.table(
        {
            "driver_id": pa.array([1, 1], type=pa.int64()),
            "event_timestamp": pa.array([None, T0 + H], type=pa.timestamp("us", tz="UTC")),
        }
    )
    table = point_in_time_join(entity, "event_timestamp", [view(source_table())])
    assert table.column("trips").to_pylist() == [None, 10]


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity_type", "source_type"),
    [(pa.int32(), pa.uint16()), (pa.int8(), pa.int64()), (pa.uint64(), pa.int32())],
    ids=str,
)
def test_int_keys_of_different_widths_join(
    entity_type: pa.DataType, source_type: pa.DataType
) -> None:
    entity = entity_table()
    entity = entity.set_column(0, "driver_id", entity.column("driver_id").cast(entity_type))
    source = source_table()
    source = source.set_column(0, "driver_id", source.column("driver_id").cast(source_type))
    check(point_in_time_join(entity, "event_timestamp", [view(source)]))


def test_string_keys_any_layout() -> None:
    entity = pa.table(
        {
            "name": pa.array(["a", "b", "a"]).dictionary_encode(),
            "event_timestamp": pa.array([T0 + H] * 3, type=pa.timestamp("us", tz="UTC")),
        }
    )
    source = pa.table(
        {
            "name": pa.array(["a", "b"], type=pa.string_view()),
            "event_timestamp": pa.array([T0, T0], type=pa.timestamp("us", tz="UTC")),
            "x": [1, 2],
        }
    )
    spec = view(source, entity_join_keys=[("name", "name")], features=[("x", "x")])
    assert point_in_time_join(entity, "event_timestamp", [spec]).column("x").to_pylist() == [
        1,
        2,
        1,
    ]


def test_key_type_mismatch_names_both_columns() -> None:
    entity = entity_table()
    entity = entity.set_column(0, "driver_id", entity.column("driver_id").cast(pa.string()))
    with pytest.raises(KeyTypeMismatchError) as info:
        point_in_time_join(entity, "event_timestamp", [view(source_table())])
    message = str(info.value)
    assert "entity frame column 'driver_id' is string" in message
    assert "driver_stats" in message
    assert "int64" in message


def test_unsupported_key_type() -> None:
    entity = entity_table()
    entity = entity.set_column(0, "driver_id", entity.column("driver_id").cast(pa.float64()))
    with pytest.raises(KeyTypeMismatchError, match="entity frame column 'driver_id'"):
        point_in_time_join(entity, "event_timestamp", [view(source_table())])


def test_all_null_entity_key_column() -> None:
    entity = entity_table().set_column(0, "driver_id", pa.nulls(4))
    table = point_in_time_join(entity, "event_timestamp", [view(source_table())])
    assert table.column("trips").to_pylist() == [None] * 4


def test_field_mapping_renames_key_and_feature() -> None:
    source = source_table().rename_columns(["id", "ts", "trips_raw", "rate"])
    spec = view(
        source,
        field_mapping={"id": "driver_id", "trips_raw": "trips"},
        timestamp_field="ts",
    )
    check(point_in_time_join(entity_table(), "event_timestamp", [spec]))


# --- missing columns ------------------------------------------------------------------------


def test_missing_entity_key_column() -> None:
    with pytest.raises(ColumnNotFoundError, match="no column 'driver_id'.*driver_stats"):
        point_in_time_join(
            entity_table().drop_columns(["driver_id"]), "event_timestamp", [view(source_table())]
        )


def test_missing_entity_timestamp_column() -> None:
    with pytest.raises(ColumnNotFoundError, match="timestamp column 'ts'"):
        point_in_time_join(entity_table(), "ts", [view(source_table())])


def test_missing_feature_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "driver_stats.parquet"
    pq.write_table(source_table(), path)
    spec = view(path, features=[("trips", "trips"), ("nope", "nope")])
    with pytest.raises(ColumnNotFoundError) as info:
        point_in_time_join(entity_table(), "event_timestamp", [spec])
    assert "'nope'" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_source_timestamp_column() -> None:
    spec = view(source_table(), timestamp_field="ts")
    with pytest.raises(
        ColumnNotFoundError,
        match="in-memory source of feature view 'driver_stats' has no column 'ts'",
    ):
        point_in_time_join(entity_table(), "event_timestamp", [spec])


def test_missing_source_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.parquet"
    with pytest.raises(SourceReadError, match="nowhere.parquet"):
        point_in_time_join(entity_table(), "event_timestamp", [view(path)])


def test_unreadable_source_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(SourceReadError, match="broken.parquet"):
        point_in_time_join(entity_table(), "event_timestamp", [view(path)])


def test_bad_source_object() -> None:
    with pytest.raises(OfflineStoreError, match="pyarrow Table or a Parquet path"):
        point_in_time_join(entity_table(), "event_timestamp", [view({"a": 1})])


def test_negative_ttl() -> None:
    with pytest.raises(OfflineStoreError, match="ttl must not be negative"):
        view(source_table(), ttl=-H)


# --- output names ---------------------------------------------------------------------------


def test_feature_name_collision_names_both_views() -> None:
    other = view(source_table(), name="other_stats", features=[("trips", "trips")])
    with pytest.raises(FeatureNameCollisionError, match="'other_stats'.*'driver_stats'"):
        point_in_time_join(entity_table(), "event_timestamp", [view(source_table()), other])


def test_feature_colliding_with_entity_column() -> None:
    spec = view(source_table(), features=[("trips", "driver_id")])
    with pytest.raises(FeatureNameCollisionError, match="entity frame"):
        point_in_time_join(entity_table(), "event_timestamp", [spec])


def test_output_order_and_full_names() -> None:
    entity = entity_table().append_column("extra", pa.array(["w", "x", "y", "z"]))
    spec_a = view(source_table(), name="a", features=[("rate", "a__rate"), ("trips", "a__trips")])
    spec_b = view(source_table(), name="b", ttl=None, features=[("trips", "b__trips")])
    table = point_in_time_join(entity, "event_timestamp", [spec_a, spec_b])
    assert table.column_names == [
        "driver_id",
        "event_timestamp",
        "extra",
        "a__rate",
        "a__trips",
        "b__trips",
    ]
    assert table.column("b__trips").to_pylist() == [10, 20, 20, None]
    assert table.select(entity.column_names).equals(entity)


# --- shapes ---------------------------------------------------------------------------------


def test_empty_entity_frame_keeps_feature_types(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(source_table(), path)
    for source in (source_table(), path):
        table = point_in_time_join(entity_table().slice(0, 0), "event_timestamp", [view(source)])
        assert table.num_rows == 0
        assert table.schema.field("trips").type == pa.int64()
        assert table.schema.field("rate").type == pa.float64()


def test_empty_source() -> None:
    table = point_in_time_join(
        entity_table(), "event_timestamp", [view(source_table().slice(0, 0))]
    )
    assert table.column("trips").to_pylist() == [None] * 4
    assert table.schema.field("trips").type == pa.int64()


def test_entity_less_view() -> None:
    source = pa.table(
        {
            "event_timestamp": pa.array([T0, T0 + 2 * H], type=pa.timestamp("us", tz="UTC")),
            "total": [100, 200],
        }
    )
    spec = view(source, entity_join_keys=[], features=[("total", "total")], ttl=None)
    table = point_in_time_join(entity_table(), "event_timestamp", [spec])
    assert table.column("total").to_pylist() == [100, 200, 200, 200]


def test_chunked_inputs() -> None:
    entity = pa.concat_tables([entity_table().slice(0, 2), entity_table().slice(2)])
    source = pa.concat_tables(
        [source_table().slice(0, 1), source_table().slice(1, 2), source_table().slice(3)]
    )
    assert entity.column(0).num_chunks == 2
    assert source.column(0).num_chunks == 3
    table = point_in_time_join(entity, "event_timestamp", [view(source)])
    check(table)
    assert table.select(entity.column_names).equals(entity)


def test_record_batch_entity() -> None:
    batch = entity_table().to_batches()[0]
    check(point_in_time_join(batch, "event_timestamp", [view(source_table())]))


# --- sources on disk ------------------------------------------------------------------------


def test_parquet_directory_of_files(tmp_path: Path) -> None:
    directory = tmp_path / "driver_stats"
    directory.mkdir()
    table = source_table()
    pq.write_table(table.slice(0, 2), directory / "part-0.parquet")
    pq.write_table(table.slice(2), directory / "part-1.parquet")
    check(point_in_time_join(entity_table(), "event_timestamp", [view(directory)]))


def test_hive_partitioned_directory(tmp_path: Path) -> None:
    table = source_table().append_column("day", pa.array(["d0", "d1", "d0", "d1"]))
    pq.write_to_dataset(table, tmp_path / "ds", partition_cols=["day"])
    assert (tmp_path / "ds" / "day=d0").is_dir()
    spec = view(tmp_path / "ds", features=[("trips", "trips"), ("rate", "rate"), ("day", "day")])
    table = point_in_time_join(entity_table(), "event_timestamp", [spec])
    check(table)
    assert table.column("day").to_pylist() == ["d0", "d1", None, "d0"]


def test_time_filter_push_down_keeps_edges(tmp_path: Path) -> None:
    # Many row groups, so the filter prunes; the ttl edge lands exactly on a row.
    n = 10_000
    stamps = pa.array(
        [T0 + i * timedelta(seconds=1) for i in range(n)], type=pa.timestamp("ms", tz="UTC")
    )
    source = pa.table(
        {"driver_id": pa.array([1] * n, type=pa.int64()), "event_timestamp": stamps, "i": range(n)}
    )
    path = tmp_path / "s.parquet"
    pq.write_table(source, path, row_group_size=500)
    entity = pa.table(
        {
            "driver_id": pa.array([1, 1, 1], type=pa.int64()),
            "event_timestamp": pa.array(
                [
                    T0 + timedelta(seconds=5000),
                    T0 + timedelta(seconds=5000, microseconds=1),
                    T0 + timedelta(seconds=20_000),
                ],
                type=pa.timestamp("ns", tz="UTC"),
            ),
        }
    )
    spec = view(path, features=[("i", "i")], ttl=timedelta(seconds=10))
    table = point_in_time_join(entity, "event_timestamp", [spec])
    assert table.column("i").to_pylist() == [5000, 5000, None]
    spec = view(path, features=[("i", "i")], ttl=timedelta(seconds=11_000))
    table = point_in_time_join(entity, "event_timestamp", [spec])
    assert table.column("i").to_pylist() == [5000, 5000, 9999]


def test_created_timestamp_and_filter(tmp_path: Path) -> None:
    source = pa.table(
        {
            "driver_id": pa.array([1, 1], type=pa.int64()),
            "event_timestamp": pa.array([T0, T0], type=pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0 + 3 * H, T0], type=pa.timestamp("us", tz="UTC")),
            "trips": [1, 2],
        }
    )
    path = tmp_path / "s.parquet"
    pq.write_table(source, path)
    spec = view(path, created_timestamp_column="created", features=[("trips", "trips")])
    entity = entity_table().slice(0, 1)  # at T0 + 1h
    assert point_in_time_join(entity, "event_timestamp", [spec]).column("trips").to_pylist() == [1]
    filtered = point_in_time_join(
        entity, "event_timestamp", [spec], filter_by_created_timestamp=True
    )
    assert filtered.column("trips").to_pylist() == [2]


# --- the kernel's own checks ----------------------------------------------------------------


def test_kernel_errors_name_the_column() -> None:
    ets = pa.array([1, 2, 3], type=pa.int64())
    views = [
        ("v", [("k", pa.array([1, 2]))], [("k", pa.array([1]))], ("ts", pa.array([1])), None, 0)
    ]
    with pytest.raises(
        RepastError, match="feature view 'v': entity column 'k' has 2 rows, expected 3"
    ):
        _core.point_in_time_indices(("event_timestamp", ets), views)
    views = [("v", [], [], ("ts", pa.array([1.0])), None, 0)]
    with pytest.raises(RepastError, match="column 'ts'"):
        _core.point_in_time_indices(("event_timestamp", ets), views)


# --- RetrievalJob ---------------------------------------------------------------------------


def test_retrieval_job_is_lazy_and_cached(tmp_path: Path) -> None:
    calls = []

    def compute() -> pa.Table:
        calls.append(1)
        return point_in_time_join(entity_table(), "event_timestamp", [view(source_table())])

    entity = entity_table()
    metadata = RetrievalMetadata.from_entity(entity, "event_timestamp", ["driver_stats:trips"])
    job = RetrievalJob(compute, full_feature_names=False, metadata=metadata)
    assert calls == []
    assert job.full_feature_names is False
    assert job.metadata is not None
    assert job.metadata.keys == ["driver_id"]
    assert job.metadata.min_event_timestamp == T0 + H
    assert job.metadata.max_event_timestamp == T0 + 5 * H + timedelta(microseconds=1)
    check(job.to_arrow())
    frame = job.to_df()
    assert str(frame["trips"].dtype) == "float64"  # Feast's dtype for an int column with nulls
    assert frame["trips"].isna().tolist() == [False, False, True, True]
    path = tmp_path / "out.parquet"
    job.to_parquet(path)
    assert pq.read_table(path).equals(job.to_arrow())
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    assert calls == [1]


def test_metadata_of_empty_entity_frame() -> None:
    metadata = RetrievalMetadata.from_entity(entity_table().slice(0, 0), "event_timestamp", [])
    assert metadata.min_event_timestamp is None
    assert metadata.max_event_timestamp is None
