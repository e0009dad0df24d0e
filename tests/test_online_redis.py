"""The Redis online store against a real redis-server: Feast byte identity (golden dump),
reading a Redis written by Feast, key expiry, deletion with SCAN, connection strings."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from golden_repo import build_store, load_dump, run_steps
from repast import FeatureStore
from repast.online.redis import RedisOnlineStore, parse_connection_string
from repast.online_response import OnlineResponse
from services import RedisServer, ServiceError


def _config(server: RedisServer, layout: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "redis",
        "connection_string": server.connection_string,
        "layout": layout,
        **extra,
    }


def _dump(server: RedisServer) -> dict[bytes, dict[bytes, bytes]]:
    client = redis.Redis(host=server.host, port=server.port)
    try:
        out: dict[bytes, dict[bytes, bytes]] = {}
        for key in client.scan_iter(count=1000):
            out[key] = client.hgetall(key)  # type: ignore[assignment]
        return out
    finally:
        client.close()


def _golden_keys() -> dict[bytes, dict[bytes, bytes]]:
    return {
        bytes.fromhex(k["key_hex"]): {
            bytes.fromhex(f): bytes.fromhex(v) for f, v in k["fields"].items()
        }
        for k in load_dump()["keys"]
    }


# Deliberate difference (tests/golden/README.md): Repast writes every null as an empty Value,
# where Feast wrote unix_timestamp_val INT64_MIN for the null last_login of driver 1003.
_NULL_TIMESTAMP = bytes.fromhex("4080808080808080808001")


def test_feast_layout_reproduces_the_golden_dump_byte_for_byte(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    store = build_store(tmp_path, _config(redis_clean, "feast"))
    run_steps(store)
    got, want = _dump(redis_clean), _golden_keys()
    assert set(got) == set(want)
    names = load_dump()["field_names"]
    for key, fields in want.items():
        assert set(got[key]) == set(fields), key.hex()
        for field, value in fields.items():
            expected = b"" if value == _NULL_TIMESTAMP else value
            assert got[key][field] == expected, (key.hex(), names[field.hex()])
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    assert all(client.ttl(key) == -1 for key in got)  # key_ttl_seconds unset
    client.close()


def _normalize(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-6)
    return value


def _rfc3339(ts: datetime) -> str:
    text = ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return text.replace(".000000", "").replace("000Z", "Z") if "." in text else text


def _check_against_feast(response: OnlineResponse, recorded: dict[str, Any]) -> None:
    """Compare with a recorded `feast serve` answer by tests/golden/README.md's rules."""
    names = recorded["metadata"]["feature_names"]
    assert sorted(response.feature_names) == sorted(names)
    ours = response.to_dict()
    for name, result in zip(names, recorded["results"], strict=True):
        i = response.feature_names.index(name)
        statuses = response.status_names(i)
        stamps = [_rfc3339(t) for t in response.timestamps(i).to_pylist()]
        for row, (value, status, ts) in enumerate(
            zip(result["values"], result["statuses"], result["event_timestamps"], strict=True)
        ):
            if statuses[row] == "NOT_FOUND" and ts == "1970-01-01T00:00:00Z":
                # Missing entity: Repast says NOT_FOUND with a null (Feast's Redis: PRESENT).
                assert ours[name][row] is None
                continue
            if value == -9223372036854775808:
                value = None  # Feast's null UnixTimestamp sentinel reads as null
            assert _normalize(ours[name][row]) == value, (name, row)
            assert statuses[row] == status, (name, row)
            assert stamps[row] == ts, (name, row)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Feast recorded its answers without ttl checks; at 12:00 every stored row is within ttl.
    noon = int(datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp() * 1_000_000)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: noon)


def _load_dump(server: RedisServer) -> None:
    client = redis.Redis(host=server.host, port=server.port)
    for key, fields in _golden_keys().items():
        client.hset(key, mapping=fields)  # type: ignore[arg-type]
    client.close()


@pytest.mark.parametrize("request_index", [0, 1, 2])
def test_reads_a_redis_written_by_feast(
    tmp_path: Path, redis_clean: RedisServer, request_index: int
) -> None:
    store = build_store(tmp_path, _config(redis_clean, "feast"))
    _load_dump(redis_clean)
    recorded = load_dump()["server_requests"][request_index]
    body = recorded["request"]
    if body.get("feature_service"):
        features: Any = store.get_feature_service(body["feature_service"])
    else:
        features = body["features"]
    response = store.get_online_features(
        features, body["entities"], full_feature_names=body.get("full_feature_names", False)
    )
    _check_against_feast(response, recorded["response"])


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_both_layouts_answer_like_feast_after_the_golden_steps(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    store = build_store(tmp_path, _config(redis_clean, layout))
    run_steps(store)
    for recorded in load_dump()["server_requests"][:3]:
        body = recorded["request"]
        features: Any = (
            store.get_feature_service(body["feature_service"])
            if body.get("feature_service")
            else body["features"]
        )
        response = store.get_online_features(
            features, body["entities"], full_feature_names=body.get("full_feature_names", False)
        )
        _check_against_feast(response, recorded["response"])


def test_packed_layout_keeps_one_field_per_view(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = build_store(tmp_path, _config(redis_clean, "packed"))
    run_steps(store)
    dump = _dump(redis_clean)
    assert set(dump) == set(_golden_keys())
    driver_1001 = next(
        k
        for k in dump
        if k.hex().startswith("0100000002000000090000006472697665725f69640400000008000000e903")
    )
    assert set(dump[driver_1001]) == {b"driver_hourly_stats", b"driver_profile"}
    assert dump[driver_1001][b"driver_hourly_stats"][0] == 1  # format version


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_key_ttl_seconds_expires_written_keys(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    store = build_store(tmp_path, _config(redis_clean, layout, key_ttl_seconds=3600))
    run_steps(store)
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    ttls = [client.ttl(key) for key in client.scan_iter()]
    client.close()
    assert ttls
    assert all(3500 < t <= 3600 for t in ttls)


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_apply_without_a_view_deletes_only_its_fields(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    store = build_store(tmp_path, _config(redis_clean, layout))
    run_steps(store)
    store.apply(
        [],
        objects_to_delete=[
            store.get_feature_view("driver_profile"),
            store.get_feature_service("driver_service"),
        ],
    )
    dump = _dump(redis_clean)
    assert len(dump) == 11  # every key still holds another view's fields
    for fields in dump.values():
        assert not any(b"driver_profile" in f for f in fields)
        if layout == "feast":
            profile_fields = {"1078b087", "2e0fe0ef", "67d14e0b", "6d178caf", "736c955f"}
            assert not {f.hex() for f in fields} & profile_fields
    response = store.get_online_features(["driver_hourly_stats:rating"], {"driver_id": [1001]})
    assert response.to_dict()["rating"] == [5]


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_teardown_deletes_every_key_of_the_project_only(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    other = build_store(tmp_path / "other", _config(redis_clean, layout), project="other")
    run_steps(other)
    store = build_store(tmp_path / "golden", _config(redis_clean, layout))
    run_steps(store)
    assert len(_dump(redis_clean)) == 22
    store.teardown()
    left = _dump(redis_clean)
    assert len(left) == 11
    assert all(k.endswith(b"other") for k in left)


def test_scan_deletion_handles_glob_characters_in_keys(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    # The project name and key bytes may hold * ? [ ]: the SCAN pattern escapes them.
    store = build_store(tmp_path, _config(redis_clean, "packed"), project="p_x")
    run_steps(store)
    store.teardown()
    assert _dump(redis_clean) == {}


def test_connection_string_is_parsed_as_feast_does() -> None:
    nodes, options = parse_connection_string("redis:6380, db=2,password=x,ssl=true")
    assert nodes == [("redis", 6380)]
    assert options == {"db": 2, "password": "x", "ssl": True}
    assert parse_connection_string("") == ([("localhost", 6379)], {})


def test_db_option_selects_the_database(tmp_path: Path, redis_clean: RedisServer) -> None:
    config = _config(redis_clean, "packed")
    config["connection_string"] += ",db=3"
    store = build_store(tmp_path, config)
    run_steps(store)
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port, db=3)
    assert client.dbsize() == 11
    client.close()
    assert _dump(redis_clean) == {}


def test_read_fails_clearly_when_redis_is_down(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = build_store(tmp_path, _config(redis_clean, "packed"))
    run_steps(store)
    with redis_clean.stopped(), pytest.raises(Exception, match="Redis .* failed"):
        store.get_online_features(["driver_hourly_stats:rating"], {"driver_id": [1001]})
    # The store recovers by itself once Redis is back.
    assert store.get_online_features(
        ["driver_hourly_stats:rating"], {"driver_id": [1001]}
    ).to_dict()["rating"] == [None]  # redis-server runs without persistence


def test_async_read_matches_sync_read(tmp_path: Path, redis_clean: RedisServer) -> None:
    import asyncio

    store = build_store(tmp_path, _config(redis_clean, "packed"))
    run_steps(store)
    features = ["driver_hourly_stats:conv_rate", "driver_profile:name"]
    rows = {"driver_id": [1001, 1002, 9]}
    sync = store.get_online_features(features, rows).to_dict()

    async def read() -> dict[str, Any]:
        try:
            return (await store.get_online_features_async(features, rows)).to_dict()
        finally:
            await store.online_store.close_async()

    assert asyncio.run(read()) == sync


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_async_reads_of_replies_spanning_many_socket_reads(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    """~1 MB of replies arrive in many socket reads; the async reader drains what is buffered
    and waits for the rest, and both read paths give each entity its own row."""
    import asyncio

    import pyarrow as pa

    store = build_store(tmp_path, _config(redis_clean, layout))
    n = 3000
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    store.write_to_online_store(
        "driver_profile",
        pa.table(
            {
                "driver_id": pa.array(range(n), pa.int64()),
                "event_timestamp": pa.array([stamp] * n, pa.timestamp("us", tz="UTC")),
                "name": [f"{i:06d}" * 50 for i in range(n)],
            }
        ),
    )
    ids = [*range(n - 1, -1, -1), n + 5]  # reversed, then one never written
    features = ["driver_profile:name"]

    async def read() -> tuple[list[Any], Any]:
        try:
            general = await store.get_online_features_async(features, {"driver_id": ids})
            packed = await store.read_online_packed_async(features, {"driver_id": ids})
            return general.to_dict()["name"], packed
        finally:
            await store.online_store.close_async()

    names, packed = asyncio.run(read())
    assert names == [f"{i:06d}" * 50 for i in ids[:-1]] + [None]
    if layout == "feast":
        assert packed is None  # no packed rows in this layout: the server takes the Arrow path
    else:
        rows = packed.views[0][1]
        assert len(rows) == n + 1
        assert rows[-1] is None
        assert all(row is not None and f"{ids[0]:06d}".encode() in row for row in rows[:1])


def _unused(_: FeatureStore, __: RedisOnlineStore) -> None:  # keep imports typed for mypy
    return None


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisServer]:
    """A one-node Redis Cluster (every slot on one redis-server): enough to drive redis-py's
    cluster client through the `redis_cluster` code paths."""
    from services import _wait_for_redis, free_cluster_port, start_redis_server

    for attempt in range(3):  # a free port may be taken before redis-server binds it
        work = tmp_path / f"node-{attempt}"
        cluster = ["--cluster-enabled", "yes", "--cluster-config-file", str(work / "nodes.conf")]
        try:
            server = start_redis_server(work, port=free_cluster_port(), extra_args=cluster)
            break
        except ServiceError:
            if attempt == 2:
                raise
    try:
        server.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in server.command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster never became ready"
            time.sleep(0.1)
        _wait_for_redis(server, 10)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_redis_cluster_writes_and_reads(
    tmp_path: Path, redis_cluster: RedisServer, layout: str
) -> None:
    config = _config(redis_cluster, layout)
    config["redis_type"] = "redis_cluster"
    store = build_store(tmp_path, config)
    run_steps(store)
    if layout == "feast":
        client = redis.Redis(host=redis_cluster.host, port=redis_cluster.port)
        got = {k: client.hgetall(k) for k in client.scan_iter()}
        client.close()
        assert set(got) == set(_golden_keys())
    response = store.get_online_features(
        ["driver_hourly_stats:rating", "driver_profile:name"], {"driver_id": [1001, 1002, 9]}
    )
    assert response.to_dict() == {
        "driver_id": [1001, 1002, 9],
        "rating": [5, 3, None],
        "name": ["Ann B.", "Bob", None],
    }
    store.teardown()
    store.online_store.close()


@pytest.mark.parametrize("layout", ["packed", "feast"])
@pytest.mark.parametrize("rows", [1, 5, 16, 17])
def test_small_write_payloads_match_the_column_wise_ones(
    tmp_path: Path,
    redis_clean: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    rows: int,
) -> None:
    # Up to _SMALL_BATCH rows the EVAL is joined from Python bytes: it must be the very bytes
    # of the Arrow path, for full and partial rows, nulls included.
    import pyarrow as pa

    from repast.online import redis_eval
    from repast.online import write as online_write

    store = build_store(tmp_path, _config(redis_clean, layout))
    view = store.get_feature_view("driver_hourly_stats")
    plan = online_write.write_plan(view)
    online = store.online_store
    assert isinstance(online, RedisOnlineStore)
    ts = pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * rows, pa.timestamp("us", tz="UTC"))
    for partial in (False, True):
        features = plan.features[:1] if partial else plan.features
        columns = {
            name: pa.array([None if i % 3 == 1 else i for i in range(rows)]).cast(arrow)
            for name, arrow in features
            if pa.types.is_integer(arrow) or pa.types.is_floating(arrow)
        }
        assert columns
        table = pa.table({"driver_id": list(range(1000, 1000 + rows)), "event_timestamp": ts})
        for name, column in columns.items():
            table = table.append_column(name, column)
        keys = online_write.entity_keys(view, table)
        batch = online_write.write_batch(view, table, keys)
        small = online._evals(plan.online, batch)
        monkeypatch.setattr(redis_eval, "_SMALL_BATCH", 0)
        assert online._evals(plan.online, batch) == small
        monkeypatch.setattr(redis_eval, "_SMALL_BATCH", 10**6)
        assert online._evals(plan.online, batch) == small
        monkeypatch.undo()
    assert online.write_batch(plan.online, batch) == rows


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_async_writes_store_what_sync_writes_store(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    """`commit_async` (the server's small pushes: no worker thread) leaves the same bytes in
    Redis as the sync `push_table`, keeps newer-event-time-wins, and fails clearly when Redis
    is down."""
    import asyncio

    import pyarrow as pa

    from repast.data_source import PushMode
    from repast.online import push as online_push

    store = build_store(tmp_path, _config(redis_clean, layout))
    view = store.get_feature_view("driver_hourly_stats")

    def table(ids: list[int], hour: int, rate: float) -> pa.Table:
        n = len(ids)
        stamps = pa.array(
            [datetime(2024, 1, 1, hour, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC")
        )
        return pa.table(
            {
                "driver_id": pa.array(ids, pa.int64()),
                "event_timestamp": stamps,
                "created": stamps,
                "conv_rate": pa.array([rate] * n, pa.float32()),
                "rating": pa.array([4] * n, pa.int32()),
            }
        )

    online_push.push_table(store.context, [view], table([1, 2], 10, 0.5), PushMode.ONLINE, "sync")
    expected = _dump(redis_clean)
    redis.Redis(port=redis_clean.port).flushall()

    async def write(t: pa.Table) -> int:
        try:
            prepared = online_push.prepare_push(store.context, [view], t, PushMode.ONLINE, "async")
            return await online_push.commit_async(store.context, prepared)
        finally:
            await store.online_store.close_async()

    assert asyncio.run(write(table([1, 2], 10, 0.5))) == 2
    assert _dump(redis_clean) == expected
    assert asyncio.run(write(table([1], 9, 0.9))) == 0  # older: kept as stored
    assert _dump(redis_clean) == expected
    with redis_clean.stopped(), pytest.raises(Exception, match="Redis .* failed"):
        asyncio.run(write(table([3], 11, 0.1)))


@pytest.mark.parametrize("full_scan", [True, False])
def test_a_reordered_view_drops_its_rows_or_warns_without_full_scan(
    tmp_path: Path, redis_clean: RedisServer, full_scan: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from repast import FeatureView

    store = build_store(tmp_path, _config(redis_clean, "packed", full_scan_for_deletion=full_scan))
    run_steps(store)
    before = _dump(redis_clean)
    spec = store.get_feature_view("driver_hourly_stats").to_dict()
    spec["features"] = [spec["features"][1], spec["features"][0], *spec["features"][2:]]
    with caplog.at_level("WARNING", logger="repast.online.redis"):
        store.apply([FeatureView.from_dict(spec)])
    after = _dump(redis_clean)
    field = b"driver_hourly_stats"
    if full_scan:
        # Packed rows hold features by position: the reordered view's rows are dropped.
        assert not any(field in fields for fields in after.values())
        assert "full_scan_for_deletion" not in caplog.text
    else:
        # Feast's option: nothing is scanned; the rows stay, and the log says what that means.
        assert after == before
        assert "feature view 'driver_hourly_stats' changed" in caplog.text
        assert "rematerialize the view" in caplog.text
