"""The bounded-memory join (repast.offline.partitioned): same answers as the in-memory path."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_repos import write_template_repo
from repast import FeatureStore, _core
from repast.config import FileOfflineStoreConfig, RepoConfig, load_repo_config
from repast.errors import ConfigError
from repast.offline import (
    ColumnNotFoundError,
    KeyTypeMismatchError,
    SourceReadError,
    TimestampTypeError,
    ViewJoin,
    partitioned,
    point_in_time_join,
)
from repast.offline import budget as budget_module
from repast.offline import join as join_module
from test_pit_property import NAMES, Case, cases, key_columns, oracle

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
NS_UTC = pa.timestamp("ns", tz="UTC")


@contextlib.contextmanager
def forced_partitions(partitions: int) -> Iterator[None]:
    """The bounded path with exactly `partitions` key partitions (a 1-byte budget would ask for
    the most there can be)."""
    with mock.patch.object(partitioned, "_MAX_PARTITIONS", partitions):
        yield


def bounded(entity: pa.Table, views: list[ViewJoin], partitions: int, **kw: Any) -> pa.Table:
    with forced_partitions(partitions):
        return point_in_time_join(entity, "event_timestamp", views, memory_limit=1, **kw)


def in_memory(entity: pa.Table, views: list[ViewJoin], **kw: Any) -> pa.Table:
    """The in-memory path only: a huge budget, and no entity frame counts as small."""
    with (
        mock.patch.object(partitioned, "_STREAM_RATIO", 1 << 60),
        mock.patch.object(partitioned, "join_view", side_effect=AssertionError("streamed")),
    ):
        return point_in_time_join(entity, "event_timestamp", views, memory_limit=1 << 40, **kw)


# --- budget and config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8GiB", 8 << 30),
        ("512 MiB", 512 << 20),
        ("2GB", 2_000_000_000),
        ("4G", 4 << 30),
        ("1.5kb", 1500),
        ("1000", 1000),
        (123, 123),
    ],
)
def test_parse_byte_size(text: str | int, size: int) -> None:
    assert budget_module.parse_byte_size(text) == size


@pytest.mark.parametrize("bad", ["eight gigs", "-1GiB", "0", 0, "1PB"])
def test_parse_byte_size_errors(bad: str | int) -> None:
    with pytest.raises(ValueError, match="memory size"):
        budget_module.parse_byte_size(bad)


def test_memory_limit_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget_module.MEMORY_LIMIT_ENV, raising=False)
    assert budget_module.memory_limit(1234) == 1234
    default = budget_module.memory_limit(None)
    assert 0 < default <= budget_module.available_memory()
    monkeypatch.setenv(budget_module.MEMORY_LIMIT_ENV, "2MiB")
    assert budget_module.memory_limit(1234) == 2 << 20
    monkeypatch.setenv(budget_module.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=budget_module.MEMORY_LIMIT_ENV):
        budget_module.memory_limit(None)


def test_config_memory_limit(tmp_path: Path) -> None:
    yaml_file = tmp_path / "feature_store.yaml"
    yaml_file.write_text(
        "project: p\nregistry: r.json\noffline_store:\n  type: file\n  memory_limit: 8GiB\n"
    )
    assert file_store_limit(load_repo_config(tmp_path)) == 8 << 30
    yaml_file.write_text("project: p\nregistry: r.json\n")
    assert file_store_limit(load_repo_config(tmp_path)) is None
    yaml_file.write_text(
        "project: p\nregistry: r.json\noffline_store:\n  type: file\n  memory_limit: huge\n"
    )
    with pytest.raises(ConfigError) as info:
        load_repo_config(tmp_path)
    message = str(info.value)
    assert f"{yaml_file}:5: offline_store.memory_limit:" in message
    assert "cannot read 'huge' as a memory size" in message


# --- the partition ids ----------------------------------------------------------------------


def test_partition_ids_agree_across_sides_and_layouts() -> None:
    small = pa.array(["a", "b", None, "a", "ccc"], type=pa.string())
    large = small.cast(pa.large_string())
    ids = _core.point_in_time_partitions([("k", small)], 5)
    assert ids.type == pa.uint32()
    assert ids.equals(_core.point_in_time_partitions([("k", large)], 5))
    values = ids.to_pylist()
    assert values[2] is None
    assert values[0] == values[3]
    assert all(v is not None and 0 <= v < 5 for i, v in enumerate(values) if i != 2)
    ints = pa.array(np.arange(10_000, dtype=np.int64))
    counts = np.bincount(_core.point_in_time_partitions([("k", ints)], 4).to_numpy(), minlength=4)
    assert counts.min() > 2_000  # spread, not all in one partition
    composite = _core.point_in_time_partitions(
        [("k", ints.slice(0, 5)), ("s", small.fill_null("z"))], 3
    ).to_pylist()
    assert all(0 <= v < 3 for v in composite)


def test_partition_ids_reject_other_key_types() -> None:
    with pytest.raises(Exception, match="join key"):
        _core.point_in_time_partitions([("k", pa.array([1.5]))], 2)


# --- sources on disk ------------------------------------------------------------------------


T0_US = int(T0.timestamp()) * 1_000_000
HOUR_US = 3_600_000_000
US_UTC = pa.timestamp("us", tz="UTC")


def rich_source() -> pa.Table:
    """Composite int + string keys, created-timestamp ties, nulls everywhere."""
    rng = np.random.default_rng(7)
    m = 3_000
    event_h = rng.integers(0, 200, m)  # whole hours: many equal event times
    created_h = event_h + rng.integers(0, 3, m)
    return pa.table(
        {
            "driver": pa.array(rng.integers(0, 40, m), type=pa.int32(), mask=rng.random(m) < 0.02),
            "name": pa.array(np.array(["a", "bb", "", "é"])[rng.integers(0, 4, m)].tolist()),
            "ts": pa.array(T0_US + event_h * HOUR_US, mask=rng.random(m) < 0.01).cast(US_UTC),
            "created": pa.array(T0_US + created_h * HOUR_US, mask=rng.random(m) < 0.03).cast(
                US_UTC
            ),
            "row": pa.array(np.arange(m, dtype=np.int64)),
            "rate": pa.array(rng.random(m), mask=rng.random(m) < 0.1),
            "label": pa.array([f"l{i}" if i % 11 else None for i in range(m)]),
        }
    )


def rich_entity(source: pa.Table) -> pa.Table:
    """Rows on source rows' event times, one ttl (10 h) later (the inclusive edge), 1 µs past
    it, and at random times; keys copied from the source, some unknown or null; duplicates."""
    rng = np.random.default_rng(8)
    n = 1_500
    pick = rng.integers(0, source.num_rows, n)
    shift = np.array([0, 10 * HOUR_US, 10 * HOUR_US + 1, 0])[rng.integers(0, 4, n)]
    times = pc.fill_null(source.column("ts").cast(pa.int64()), T0_US).to_numpy()[pick] + shift
    fresh = rng.random(n) < 0.2
    times[fresh] = T0_US + rng.integers(0, 210 * HOUR_US, int(fresh.sum()))
    driver = pc.fill_null(source.column("driver").cast(pa.int64()), 7).to_numpy()[pick]
    driver[rng.random(n) < 0.05] = 1000
    entity = pa.table(
        {
            "driver": pa.array(driver, mask=rng.random(n) < 0.02),
            "name": source.column("name").take(pa.array(pick)),
            "event_timestamp": pa.array(times).cast(US_UTC).cast(NS_UTC),
            "request": pa.array(np.arange(n)),
        }
    )
    return pa.concat_tables([entity, entity.slice(0, 50)])  # exact duplicates


def write_dataset(table: pa.Table, directory: Path, *, hive: bool = False) -> Path:
    """Three files of uneven sizes and small row groups (or a hive-partitioned layout)."""
    directory.mkdir(parents=True)
    if hive:
        pq.write_to_dataset(
            table, directory, partition_cols=["name"], row_group_size=200, max_rows_per_group=200
        )
        return directory
    cuts = [0, 700, 2_100, table.num_rows]
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
        pq.write_table(
            table.slice(lo, hi - lo), directory / f"part-{i}.parquet", row_group_size=250
        )
    return directory


def rich_view(source: Any, **changes: Any) -> ViewJoin:
    spec: dict[str, Any] = {
        "name": "stats",
        "source": source,
        "entity_join_keys": [("driver", "driver"), ("name", "name")],
        "timestamp_field": "ts",
        "created_timestamp_column": "created",
        "features": [("row", "row"), ("rate", "rate"), ("label", "label")],
        "ttl": 10 * H,
    }
    spec.update(changes)
    return ViewJoin(**spec)


@pytest.mark.parametrize("partitions", [1, 3, 16])
@pytest.mark.parametrize("filter_created", [False, True])
@pytest.mark.parametrize("hive", [False, True])
def test_bounded_matches_in_memory(
    tmp_path: Path, partitions: int, filter_created: bool, hive: bool
) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src", hive=hive)
    entity = rich_entity(source)
    views = [
        rich_view(path),
        # One int key, no ttl, no created column, a renamed feature.
        rich_view(
            path,
            name="by_driver",
            entity_join_keys=[("driver", "driver")],
            created_timestamp_column=None,
            ttl=None,
            features=[("row", "by_driver__row"), ("rate", "by_driver__rate")],
        ),
    ]
    expected = in_memory(entity, views, filter_by_created_timestamp=filter_created)
    got = bounded(entity, views, partitions, filter_by_created_timestamp=filter_created)
    assert got.equals(expected)
    # The data does exercise matches, misses and duplicates.
    rows = got.column("row").to_pylist()
    assert 0.3 < sum(r is not None for r in rows) / len(rows) < 0.95
    assert rows[-50:] == rows[:50]
    assert got.column("request").to_pylist()[:3] == [0, 1, 2]
    # Check a few answers against the rule itself, straight from the source rows.
    src = source.to_pylist()
    for i in range(0, 1_500, 97):
        e = entity.slice(i, 1).to_pylist()[0]
        when = e["event_timestamp"]
        best: tuple[Any, ...] | None = None
        for r in src:
            if e["driver"] is None or r["driver"] != e["driver"] or r["name"] != e["name"]:
                continue
            if r["ts"] is None or not when - 10 * H <= r["ts"] <= when:
                continue
            if filter_created and (r["created"] is None or r["created"] > when):
                continue
            rank = (r["ts"], r["created"] or datetime.min.replace(tzinfo=UTC), r["row"])
            best = rank if best is None or rank > best else best
        assert rows[i] == (None if best is None else best[2])


def test_pass_two_reads_only_row_groups_with_chosen_rows(tmp_path: Path) -> None:
    source = pa.table(
        {
            "k": pa.array(np.arange(1_000) % 10, type=pa.int64()),
            "ts": pa.array(np.arange(1_000) * 1_000_000_000, type=pa.int64()).cast(NS_UTC),
            "x": pa.array(np.arange(1_000, dtype=np.float64)),
        }
    )
    pq.write_table(source, tmp_path / "s.parquet", row_group_size=100)
    # Entity rows see only the source's first 300 and last 100 rows.
    entity = pa.table(
        {
            "k": pa.array([3, 4, 3, 7], type=pa.int64()),
            "event_timestamp": pa.array([150, 299, 250, 995], type=pa.int64())
            .cast(pa.timestamp("s", tz="UTC"))
            .cast(NS_UTC),
        }
    )
    view = ViewJoin(
        name="v",
        source=tmp_path / "s.parquet",
        entity_join_keys=[("k", "k")],
        timestamp_field="ts",
        features=[("x", "x")],
    )
    reads: list[tuple[int, tuple[str, ...]]] = []
    real = budget_module.RowGroup.read

    def counting(self: Any, columns: Any, schema: pa.Schema) -> pa.Table:
        reads.append((self.row_group, tuple(columns)))
        return real(self, columns, schema)

    with mock.patch.object(budget_module.RowGroup, "read", counting):
        got = bounded(entity, [view], 1)
    assert got.column("x").to_pylist() == [143.0, 294.0, 243.0, 987.0]
    feature_reads = sorted(group for group, columns in reads if columns == ("x",))
    assert feature_reads == [1, 2, 9]
    # Pass 1 read every row group's keys and times, and nothing else.
    assert sorted(g for g, c in reads if c != ("x",)) == list(range(10))


def test_env_override_takes_the_bounded_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src")
    entity = rich_entity(source)
    expected = point_in_time_join(entity, "event_timestamp", [rich_view(path)])
    calls: list[int] = []
    real = partitioned.join_view

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1].partitions)
        return real(*args, **kwargs)

    monkeypatch.setenv(budget_module.MEMORY_LIMIT_ENV, "64KiB")
    with mock.patch.object(partitioned, "join_view", spy):
        got = point_in_time_join(entity, "event_timestamp", [rich_view(path)])
    assert got.equals(expected)
    assert len(calls) == 1
    assert calls[0] > 1


def test_choose_bounded_follows_the_budget(tmp_path: Path) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src")
    view = rich_view(path)
    opened = [join_module.open_source(view, (0, 2**62)), source]
    views = [view, rich_view(source, name="mem")]
    assert partitioned.choose_bounded(views, opened, 1_501, partitioned.Budget(1 << 30)) == {}
    # Within budget, an entity frame of at most half the source's rows streams all the same.
    small = partitioned.choose_bounded(views, opened, 1_500, partitioned.Budget(1 << 30))
    assert list(small) == [0]
    assert small[0].partitions == 1
    plans = partitioned.choose_bounded(views, opened, 100, partitioned.Budget(340_000))
    assert list(plans) == [0]  # an in-memory table is never streamed
    assert plans[0].partitions == 1
    assert sum(g.rows for g in plans[0].groups) == source.num_rows
    assert (
        partitioned.choose_bounded(views, opened, 100, partitioned.Budget(20_000))[0].partitions > 1
    )


def test_entity_less_view_and_mixed_paths(tmp_path: Path) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src")
    entity = rich_entity(source)
    views = [
        rich_view(path, name="global", entity_join_keys=[], features=[("row", "g_row")]),
        rich_view(source, name="mem", features=[("rate", "mem_rate")]),
        rich_view(path, features=[("label", "label")]),
    ]
    expected = in_memory(entity, views)
    got = bounded(entity, views, 4)
    assert got.equals(expected)
    assert got.column_names[-3:] == ["g_row", "mem_rate", "label"]
    assert got.column("g_row").null_count < got.num_rows


def test_empty_inputs(tmp_path: Path) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src")
    entity = rich_entity(source)
    view = rich_view(path)
    # No entity rows.
    empty = bounded(entity.slice(0, 0), [view], 3)
    assert empty.num_rows == 0
    assert empty.schema.field("rate").type == pa.float64()
    assert empty.schema.field("label").type == pa.string()
    # No entity timestamps: every row group is pruned, every row gets nulls.
    no_time = entity.set_column(2, "event_timestamp", pa.nulls(entity.num_rows, NS_UTC))
    got = bounded(no_time, [view], 3)
    assert got.column("row").null_count == entity.num_rows
    # An empty source file.
    (tmp_path / "empty").mkdir()
    pq.write_table(source.slice(0, 0), tmp_path / "empty" / "e.parquet")
    got = bounded(entity, [rich_view(tmp_path / "empty")], 2)
    assert got.column("label").null_count == entity.num_rows
    assert got.column("label").type == pa.string()


def test_bad_input_names_column_and_file(tmp_path: Path) -> None:
    source = rich_source()
    path = write_dataset(source, tmp_path / "src")
    entity = rich_entity(source)
    with pytest.raises(ColumnNotFoundError, match=r"source '.*src' of feature view 'stats' has no"):
        bounded(entity, [rich_view(path, features=[("nope", "nope")])], 2)
    bad_key = entity.set_column(0, "driver", pa.array(["x"] * entity.num_rows))
    with pytest.raises(KeyTypeMismatchError, match="entity frame column 'driver'"):
        bounded(bad_key, [rich_view(path)], 2)
    # A timestamp column that is not one, found while streaming.
    text_ts = source.set_column(2, "ts", source.column("ts").cast(pa.string()))
    text_path = write_dataset(text_ts, tmp_path / "text")
    with pytest.raises(TimestampTypeError, match=r"column 'ts' of the source '.*text'"):
        bounded(entity, [rich_view(text_path, ttl=None)], 2)
    # A file that goes bad between planning and reading.
    (path / "part-1.parquet").write_bytes(b"not parquet any more")
    with pytest.raises(SourceReadError, match="part-1.parquet|src"):
        bounded(entity, [rich_view(path)], 2)


def test_historical_features_on_the_bounded_path(tmp_path: Path) -> None:
    repo = write_template_repo(tmp_path / "proj")
    yaml_file = repo / "feature_store.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("type: file", "type: file\n  memory_limit: 1")
    )
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    assert file_store_limit(store.config) == 1
    data = pq.read_table(repo / "data" / "driver_stats.parquet")
    end = data.column("event_timestamp").to_pylist()[-1]
    entity = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 9999],
            "event_timestamp": [end, end - timedelta(hours=3), end + timedelta(days=3), end],
        }
    )
    refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
    calls: list[str] = []
    real = partitioned.join_view

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].name)
        return real(*args, **kwargs)

    with mock.patch.object(partitioned, "join_view", spy):
        got = store.get_historical_features(entity, refs).to_arrow()
    assert calls == ["driver_hourly_stats"]
    expected = in_memory(
        pa.Table.from_pandas(entity, preserve_index=False), store_joins(store, refs)
    )
    assert got.column("conv_rate").equals(expected.column("conv_rate"))
    assert got.column("conv_rate").to_pylist()[2:] == [None, None]
    assert got.column("conv_rate").null_count == 2


def store_joins(store: FeatureStore, refs: list[str]) -> list[ViewJoin]:
    from repast.offline.historical import _plan, _Resolver

    joins = list(_plan(_Resolver(store.context), refs, False).joins)
    view_joins = [join for join in joins if isinstance(join, ViewJoin)]
    assert len(view_joins) == len(joins)  # no aggregated view here
    return view_joins


def file_store_limit(config: RepoConfig) -> int | None:
    assert isinstance(config.offline_store, FileOfflineStoreConfig)
    return config.offline_store.memory_limit


# --- against the oracle ---------------------------------------------------------------------


def run_bounded(case: Case, partitions: int) -> pa.Table:
    entity = pa.table(
        {
            **key_columns(case.key_kind, case.entity_keys, pa.int64()),
            "event_timestamp": pa.array(case.entity_ts, type=pa.int64()).cast(NS_UTC),
        }
    )
    columns: dict[str, pa.Array] = {
        **key_columns(case.key_kind, case.source_keys, pa.int32()),
        "ts": pa.array(case.source_ts, type=pa.int64()).cast(NS_UTC),
        "row": pa.array(range(len(case.source_ts)), type=pa.int64()),
        "value": pa.array(case.values, type=pa.int64()),
    }
    if case.created is not None:
        columns["created"] = pa.array(case.created, type=pa.int64()).cast(NS_UTC)
    n_keys = {"int": 1, "str": 1, "composite": 2, "none": 0}[case.key_kind]
    with tempfile.TemporaryDirectory() as tmp:
        source = pa.table(columns)
        half = source.num_rows // 2
        pq.write_table(source.slice(0, half), Path(tmp) / "a.parquet", row_group_size=4)
        pq.write_table(source.slice(half), Path(tmp) / "b.parquet", row_group_size=3)
        view = ViewJoin(
            name="v",
            source=tmp,
            entity_join_keys=[(NAMES[i], NAMES[i]) for i in range(n_keys)],
            timestamp_field="ts",
            created_timestamp_column="created" if case.created is not None else None,
            ttl=timedelta(microseconds=case.ttl // 1_000) if case.ttl else None,
            features=[("row", "row"), ("value", "value")],
        )
        return bounded(
            entity, [view], partitions, filter_by_created_timestamp=case.filter_by_created
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from([1, 2, 5]))
def test_bounded_matches_oracle(case: Case, partitions: int) -> None:
    expected = oracle(case)
    got = run_bounded(case, partitions)
    assert got.column("row").to_pylist() == expected
    assert got.column("value").to_pylist() == [
        None if j is None else case.values[j] for j in expected
    ]
