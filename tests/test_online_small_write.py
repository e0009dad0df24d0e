"""online/small_write.py: a few rows from JSON lists store the same bytes as the Arrow path, and
anything the shortcut does not take plainly is left to that path with nothing written."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis as redis_py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, _core
from repast.config import RedisOnlineStoreConfig
from repast.online.redis_client import parse_connection_string
from repast.online.small_write import SMALL_WRITE_ROWS, small_write_plan, write_rows_async
from repast.online.sqlite import SqliteOnlineStore
from repast.online.write import write_table
from repast.types import Bool, Float32, Float64, Int32, Int64, String
from services import RedisServer, redis_hashes

FEATURES = [
    ("f_i64", Int64, pa.int64()),
    ("f_i32", Int32, pa.int32()),
    ("f_f64", Float64, pa.float64()),
    ("f_f32", Float32, pa.float32()),
    ("f_bool", Bool, pa.bool_()),
    ("f_str", String, pa.string()),
]
COLUMNS = {"driver_id", "city", "event_timestamp", *(name for name, _, _ in FEATURES)}


def _repo(path: Path, online: dict[str, Any], *, created: str | None = None) -> FeatureStore:
    path.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"  {k}: {v}\n" for k, v in online.items())
    (path / "feature_store.yaml").write_text(
        f"project: small\nregistry: {path / 'registry.json'}\nonline_store:\n{lines}"
    )
    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("city", pa.string()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            *([(created, pa.timestamp("us", tz="UTC"))] if created else []),
            *((name, arrow) for name, _, arrow in FEATURES),
        ]
    )
    pq.write_table(schema.empty_table(), path / "src.parquet")
    store = FeatureStore(repo_path=path)
    driver = Entity(name="driver", join_keys=["driver_id"])
    city = Entity(name="city", join_keys=["city"])
    source = FileSource(
        name="src",
        path=str(path / "src.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column=created or "",
    )
    push = PushSource(name="pushed", batch_source=source)
    fields = [
        Field(name="driver_id", dtype=Int64),
        Field(name="city", dtype=String),
        *(Field(name=name, dtype=dtype) for name, dtype, _ in FEATURES),
    ]
    view = FeatureView(name="stats", entities=[driver, city], schema=fields, source=push)
    store.apply([driver, city, source, push, view])
    return store


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=["redis", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> Iterator[FeatureStore]:
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_clean")
        online = {"type": "redis", "connection_string": redis.connection_string}
    else:
        online = {"type": "sqlite", "path": str(tmp_path / "online.db")}
    fs = _repo(tmp_path / "repo", online)
    yield fs
    close_async = getattr(fs.online_store, "close_async", None)
    if close_async is not None:
        loop.run_until_complete(close_async())
    fs.online_store.close()


def _view(store: FeatureStore) -> FeatureView:
    return store.get_feature_view("stats")


def _stored(store: FeatureStore) -> dict[bytes, Any]:
    """Everything the online store holds, as stored bytes."""
    online = store.online_store
    if isinstance(online, SqliteOnlineStore):
        with sqlite3.connect(online.path) as conn:
            try:
                found = conn.execute(f'SELECT * FROM "{online.table("stats")}"').fetchall()
            except sqlite3.OperationalError:  # never written
                return {}
        return {key: (micros, row) for key, micros, row in found}
    return redis_hashes(*_redis_address(store))


def _redis_address(store: FeatureStore) -> tuple[str, int]:
    online = store.config.online_store
    assert isinstance(online, RedisOnlineStoreConfig)
    nodes, _ = parse_connection_string(online.connection_string)
    return nodes[0]


def _reset(store: FeatureStore) -> None:
    online = store.online_store
    if isinstance(online, SqliteOnlineStore):
        with sqlite3.connect(online.path) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{online.table("stats")}"')
        return
    host, port = _redis_address(store)
    client = redis_py.Redis(host=host, port=port)
    try:
        client.flushall()
    finally:
        client.close()


def _arrow_table(columns: dict[str, list[Any]]) -> pa.Table:
    """The rows as the server's general path builds them (typed arrays, parsed times)."""
    stamps = pa.array(columns["event_timestamp"], pa.string())
    try:
        times = stamps.cast(pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        times = pc.assume_timezone(stamps.cast(pa.timestamp("us")), "UTC")
    arrays = {
        "driver_id": pa.array(columns["driver_id"], pa.int64()),
        "city": pa.array(columns["city"], pa.string()),
        "event_timestamp": times,
        **{name: pa.array(columns[name], arrow) for name, _, arrow in FEATURES},
    }
    return pa.table(arrays)


def _write(
    loop: asyncio.AbstractEventLoop, store: FeatureStore, columns: dict[str, list[Any]]
) -> int | None:
    rows = len(columns["event_timestamp"])
    return loop.run_until_complete(write_rows_async(store.context, _view(store), columns, rows))


def _one_row(**overrides: list[Any]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        "driver_id": [7],
        "city": ["Paris"],
        "event_timestamp": ["2025-01-01T00:00:00Z"],
        "f_i64": [10],
        "f_i32": [-3],
        "f_f64": [1.5],
        "f_f32": [0.1],
        "f_bool": [True],
        "f_str": ["x"],
    }
    columns.update(overrides)
    return columns


# -- the same bytes as the Arrow path ----------------------------------------------------------


@st.composite
def _timestamp_strings(draw: st.DrawFn, rows: int) -> list[str]:
    """ISO strings in every form the shortcut parses; one column is all zoned or all naive."""
    zoned = draw(st.booleans())
    out = []
    for _ in range(rows):
        moment = draw(
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
        ).replace(tzinfo=UTC)
        digits = draw(st.integers(0, 6))
        separator = draw(st.sampled_from("T "))
        if zoned:
            minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
            local = moment + timedelta(minutes=minutes)
            sign = "+" if minutes >= 0 else "-"
            zone = f"{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"
            if minutes == 0 and draw(st.booleans()):
                zone = "Z"
        else:
            local, zone = moment, ""
        # strftime does not pad years below 1000.
        text = f"{local.year:04}-{local.month:02}-{local.day:02}{separator}"
        text += f"{local.hour:02}:{local.minute:02}:{local.second:02}"
        if digits:
            text += "." + f"{local.microsecond:06}"[:digits]
        out.append(text + zone)
    return out


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "f_i64": _maybe(st.integers(-(2**63), 2**63 - 1)),
    "f_i32": _maybe(st.integers(-(2**31), 2**31 - 1)),
    "f_f64": _maybe(st.one_of(st.floats(), st.integers(-(2**53), 2**53))),
    "f_f32": _maybe(st.one_of(st.floats(), st.integers(-(2**24), 2**24))),
    "f_bool": _maybe(st.booleans()),
    # Surrogates are not valid UTF-8: no path stores them.
    "f_str": _maybe(st.text(st.characters(exclude_categories=["Cs"]), max_size=40)),
}


@st.composite
def _pushes(draw: st.DrawFn) -> dict[str, list[Any]]:
    rows = draw(st.integers(1, SMALL_WRITE_ROWS))
    columns: dict[str, list[Any]] = {
        "driver_id": draw(st.lists(st.integers(0, 30), min_size=rows, max_size=rows)),
        "city": draw(
            st.lists(st.sampled_from(["Paris", "Oslo", "é"]), min_size=rows, max_size=rows)
        ),
        "event_timestamp": draw(_timestamp_strings(rows)),
    }
    for name, values in _VALUES.items():
        columns[name] = draw(st.lists(values, min_size=rows, max_size=rows))
    return columns


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(columns=_pushes())
def test_stores_the_bytes_the_arrow_path_stores(
    store: FeatureStore, loop: asyncio.AbstractEventLoop, columns: dict[str, list[Any]]
) -> None:
    _reset(store)
    written = _write(loop, store, columns)
    keys = list(zip(columns["driver_id"], columns["city"], strict=True))
    all_null = all(v is None for name, _, _ in FEATURES for v in columns[name])
    if len(set(keys)) < len(keys) or all_null:
        assert written is None
        assert _stored(store) == {}
        return
    assert written == len(keys), columns
    fast = _stored(store)
    _reset(store)
    write_table(store.context, _view(store), _arrow_table(columns), "push")
    assert fast == _stored(store)


def test_merges_with_stored_rows_as_the_arrow_path(
    store: FeatureStore, loop: asyncio.AbstractEventLoop
) -> None:
    assert _write(loop, store, _one_row(f_i64=[1], event_timestamp=["2025-01-01T00:00:01Z"])) == 1
    # Older than what is stored: not written (0 rows), the stored row stays.
    assert _write(loop, store, _one_row(f_i64=[2])) == 0
    got = store.get_online_features(["stats:f_i64"], {"driver_id": [7], "city": ["Paris"]})
    assert got.to_dict()["f_i64"] == [1]
    assert _write(loop, store, _one_row(f_i64=[3], event_timestamp=["2025-01-01T00:00:02Z"])) == 1
    got = store.get_online_features(
        ["stats:f_i64", "stats:f_str"], {"driver_id": [7], "city": ["Paris"]}
    )
    assert got.to_dict() == {"driver_id": [7], "city": ["Paris"], "f_i64": [3], "f_str": ["x"]}


# -- what the shortcut leaves to the general path ------------------------------------------------

_DECLINED = {
    "bool where an int belongs": _one_row(f_i64=[True]),
    "a float in an int column": _one_row(f_i64=[0.5]),
    "int32 out of range": _one_row(f_i32=[2**31]),
    "int64 out of range": _one_row(f_i64=[2**63]),
    "an int a double cannot hold": _one_row(f_f64=[2**53 + 1]),
    "an int a float32 cannot hold": _one_row(f_f32=[2**24 + 1]),
    "a string where a number belongs": _one_row(f_f64=["1.5"]),
    "a number where a string belongs": _one_row(f_str=[1]),
    "an int where a bool belongs": _one_row(f_bool=[1]),
    "a null key": _one_row(driver_id=[None]),
    "a string key where an int belongs": _one_row(driver_id=["7"]),
    "a null event time": _one_row(event_timestamp=[None]),
    "a numeric event time": _one_row(event_timestamp=[1735689600]),
    "nanosecond digits": _one_row(event_timestamp=["2025-01-01T00:00:00.1234567Z"]),
    "an offset without a colon": _one_row(event_timestamp=["2025-01-01T00:00:00+0200"]),
    "a date only": _one_row(event_timestamp=["2025-01-01"]),
    "not a date": _one_row(event_timestamp=["2025-02-30T00:00:00Z"]),
    "zoned and naive times mixed": {
        **_one_row(),
        "driver_id": [1, 2],
        "city": ["a", "b"],
        "event_timestamp": ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00"],
        **{name: [None, None] for name, _, _ in FEATURES[1:]},
        "f_i64": [1, 2],
    },
    "a repeated key": {
        **_one_row(),
        "driver_id": [1, 1],
        "city": ["a", "a"],
        "event_timestamp": ["2025-01-01T00:00:00Z"] * 2,
        **{name: [1, 2] if name == "f_i64" else [None, None] for name, _, _ in FEATURES},
    },
    "no feature value": _one_row(**{name: [None] for name, _, _ in FEATURES}),
    "an extra column": {**_one_row(), "extra": [1]},
    "a missing feature column": {k: v for k, v in _one_row().items() if k != "f_str"},
    "a missing key column": {k: v for k, v in _one_row().items() if k != "city"},
    "a tuple instead of a list": {**_one_row(), "f_i64": (1,)},
}


@pytest.mark.parametrize("columns", list(_DECLINED.values()), ids=list(_DECLINED))
def test_declines_and_writes_nothing(
    store: FeatureStore, loop: asyncio.AbstractEventLoop, columns: dict[str, Any]
) -> None:
    assert _write(loop, store, columns) is None
    assert _stored(store) == {}


def test_declines_more_rows_than_the_shortcut_takes(
    store: FeatureStore, loop: asyncio.AbstractEventLoop
) -> None:
    n = SMALL_WRITE_ROWS + 1
    columns: dict[str, list[Any]] = {
        "driver_id": list(range(n)),
        "city": ["a"] * n,
        "event_timestamp": ["2025-01-01T00:00:00Z"] * n,
        **{name: [None] * n for name, _, _ in FEATURES},
        "f_i64": list(range(n)),
    }
    assert _write(loop, store, columns) is None
    assert _stored(store) == {}


@pytest.mark.parametrize(
    "online",
    [
        pytest.param({"layout": "feast"}, id="redis-feast"),
        pytest.param({"redis_type": "redis_cluster"}, id="redis-cluster"),
    ],
)
def test_declines_stores_without_packed_row_writes(
    online: dict[str, Any],
    redis_clean: RedisServer,
    tmp_path: Path,
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Feast's layout stores no packed rows; a cluster needs one key per EVAL. Nothing is
    # sent: the layout or type alone decides (this server is not a cluster node).
    online = {"type": "redis", "connection_string": redis_clean.connection_string, **online}
    store = _repo(tmp_path / "repo", online)
    try:
        assert _write(loop, store, _one_row()) is None
        assert _stored(store) == {}
    finally:
        store.online_store.close()


@pytest.mark.parametrize(
    ("created", "taken"),
    [
        (["2025-01-01T00:00:00Z"], True),
        ([None], True),
        (["2025-01-01T00:00:00"], True),
        (["not a time"], False),
        ([1735689600], False),
        (None, False),  # the column is missing
    ],
)
def test_a_created_timestamp_must_be_valid_though_it_is_not_stored(
    redis_clean: RedisServer,
    tmp_path: Path,
    loop: asyncio.AbstractEventLoop,
    created: list[Any] | None,
    taken: bool,
) -> None:
    online = {"type": "redis", "connection_string": redis_clean.connection_string}
    store = _repo(tmp_path / "repo", online, created="created")
    try:
        plan = small_write_plan(_view(store))
        assert plan is not None
        assert plan.other_timestamp_sources == ["created"]
        columns = _one_row() if created is None else {**_one_row(), "created": created}
        written = _write(loop, store, columns)
        assert written == (1 if taken else None)
        if taken:
            fast = _stored(store)
            _reset(store)
            table = _arrow_table(_one_row())
            table = table.append_column("created", pa.array([None], table["event_timestamp"].type))
            write_table(store.context, _view(store), table, "push")
            assert fast == _stored(store)
        else:
            assert _stored(store) == {}
    finally:
        loop.run_until_complete(store.online_store.close_async())
        store.online_store.close()


def test_the_kernel_checks_its_arguments() -> None:
    with pytest.raises(_core.RepastError, match="one of each per key and per feature"):
        _core.encode_small_write(["driver_id"], [4], [], [5], [[1.0]], ["2025-01-01T00:00:00Z"])
    with pytest.raises(_core.RepastError, match="version 4 is not supported"):
        _core.encode_small_write(["k"], [4], [[1]], [5], [[1.0]], ["2025-01-01T00:00:00Z"], 4)


# The pipelined connection, and redis-py's pool (an option the pipe does not handle), whose
# parser words the NOSCRIPT error differently.
@pytest.mark.parametrize("options", ["", ",client_name=repast"], ids=["pipelined", "pooled"])
def test_the_script_is_sent_once_then_called_by_its_sha(
    redis_clean: RedisServer, tmp_path: Path, loop: asyncio.AbstractEventLoop, options: str
) -> None:
    import hashlib

    online = {"type": "redis", "connection_string": redis_clean.connection_string + options}
    store = _repo(tmp_path / "repo", online)

    script = (Path(_core.__file__).parent / "online" / "packed_merge.lua").read_bytes()
    sha = hashlib.sha1(script).hexdigest()
    assert redis_clean.command("SCRIPT", "FLUSH").startswith(b"+OK")
    assert redis_clean.command("SCRIPT", "EXISTS", sha) == b"*1\r\n:0\r\n"
    # NOSCRIPT, then EVAL: written, and the script is cached for the pushes after it.
    assert _write(loop, store, _one_row()) == 1
    assert redis_clean.command("SCRIPT", "EXISTS", sha) == b"*1\r\n:1\r\n"
    assert _write(loop, store, _one_row(event_timestamp=["2025-01-02T00:00:00Z"])) == 1
    got = store.get_online_features(["stats:f_i64"], {"driver_id": [7], "city": ["Paris"]})
    assert got.to_dict(include_event_timestamps=True)["f_i64__ts"] == [1735776000]
    loop.run_until_complete(store.online_store.close_async())
    store.online_store.close()
