"""Every endpoint of the feature server through httpx's ASGITransport, on every online store;
the recorded `feast serve` answers of tests/golden/redis_dump.json reproduced."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from golden_repo import load_dump
from online_stores import STORES, online_config
from repast import FeatureStore
from repast.online.small_write import write_rows_async
from server_helpers import (
    client_for,
    demo_push,
    demo_read,
    demo_repo,
    error_of,
    fresh_request,
    push_body,
    redis_config,
    run,
    server_store,
)
from services import RedisServer, redis_hashes


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    redis = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    fs = server_store(tmp_path, online_config(request.param, redis))
    yield fs
    fs.online_store.close()


def _check_against_feast(got: dict[str, Any], recorded: dict[str, Any]) -> None:
    """tests/golden/README.md's rules: columns by name (our order is request order), NOT_FOUND
    with a null for a missing entity (Feast's Redis says PRESENT), Feast's null-timestamp
    sentinel is a null here; everything else exactly."""
    names = recorded["metadata"]["feature_names"]
    assert sorted(got["metadata"]["feature_names"]) == sorted(names)
    assert list(got) == ["results", "metadata"]  # Feast's key order
    ours = dict(zip(got["metadata"]["feature_names"], got["results"], strict=True))
    for name, want in zip(names, recorded["results"], strict=True):
        have = ours[name]
        rows = zip(
            want["values"],
            want["statuses"],
            want["event_timestamps"],
            have["values"],
            have["statuses"],
            have["event_timestamps"],
            strict=True,
        )
        for row, (value, status, ts, our_value, our_status, our_ts) in enumerate(rows):
            where = (name, row)
            if our_status == "NOT_FOUND" and ts == "1970-01-01T00:00:00Z":
                assert our_value is None, where
                assert our_ts == ts, where
                continue
            if value == -9223372036854775808:
                value = None
            assert (our_value, our_status, our_ts) == (value, status, ts), where


def _request_order(body: dict[str, Any], got: dict[str, Any]) -> None:
    names = got["metadata"]["feature_names"]
    keys = list(body["entities"])
    assert names[: len(keys)] == keys
    if "features" in body:
        full = body.get("full_feature_names", False)
        wanted = [f.replace(":", "__") if full else f.split(":")[1] for f in body["features"]]
        assert names[len(keys) :] == wanted


@pytest.mark.usefixtures("noon")
def test_recorded_feast_requests_are_answered_like_feast(store: FeatureStore) -> None:
    async def main() -> None:
        async with client_for(store) as client:
            for recorded in load_dump()["server_requests"]:
                response = await client.post(recorded["path"], json=recorded["request"])
                assert response.status_code == recorded["status"], recorded["name"]
                assert response.headers["content-type"] == recorded["content_type"]
                if recorded["status"] != 200:
                    continue
                got = response.json()
                _check_against_feast(got, recorded["response"])
                _request_order(recorded["request"], got)

    run(main)


@pytest.mark.usefixtures("noon")
def test_unknown_view_is_404_with_the_known_names(store: FeatureStore) -> None:
    recorded = load_dump()["server_requests"][3]

    async def main() -> None:
        async with client_for(store) as client:
            response = await client.post("/get-online-features", json=recorded["request"])
        assert response.status_code == 404
        body = error_of(response)
        assert body["error"] == "FeatureViewNotFoundError"
        assert body["class"] == "FeatureViewNotFoundException"
        assert "nope" in body["detail"]
        assert "driver_hourly_stats" in body["detail"]

    run(main)


def test_feature_view_metadata_lists_each_view_read_once_as_feast(store: FeatureStore) -> None:
    # Feast 0.67 adds `feature_view_metadata` only when asked: each view read, once, in
    # first-appearance order, `{"name"}` alone (a version of 0 is left out; Repast has none).
    features = ["hourly_fresh:rating", "driver_hourly_stats:conv_rate", "hourly_fresh:conv_rate"]

    async def main() -> None:
        async with client_for(store) as client:
            body = {
                "entities": {"driver_id": [1001]},
                "features": features,
                "full_feature_names": True,
            }
            plain = (await client.post("/get-online-features", json=body)).json()
            body["include_feature_view_version_metadata"] = True
            listed = (await client.post("/get-online-features", json=body)).json()
        assert isinstance(plain, dict), plain
        assert "feature_view_metadata" not in plain["metadata"]
        assert listed["metadata"] == {
            "feature_names": [
                "driver_id",
                "hourly_fresh__rating",
                "driver_hourly_stats__conv_rate",
                "hourly_fresh__conv_rate",
            ],
            "feature_view_metadata": [{"name": "hourly_fresh"}, {"name": "driver_hourly_stats"}],
        }
        assert listed["results"] == plain["results"]
        async with client_for(store) as client:
            body["full_feature_names"] = False
            collision = await client.post("/get-online-features", json=body)
        # Feast raises FeatureNameCollisionError for two `conv_rate`s without full names.
        assert collision.status_code == 400
        assert error_of(collision)["class"] == "FeatureNameCollisionError"
        assert "feature 'conv_rate' is requested twice" in error_of(collision)["detail"]

    run(main)


def test_push_then_read_sees_the_new_value_at_once(store: FeatureStore) -> None:
    async def main() -> None:
        async with client_for(store) as client:
            first = await client.post("/push", json=push_body([7, 8], [1, 2]))
            assert first.status_code == 200
            assert first.content == b""
            got = (await client.post("/get-online-features", json=fresh_request([7, 8, 9]))).json()
            assert got["metadata"]["feature_names"] == ["driver_id", "rating", "conv_rate"]
            assert got["results"][1]["values"] == [1, 2, None]
            assert got["results"][1]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
            assert got["results"][1]["event_timestamps"][0] == "2024-01-01T12:00:00Z"
            newer = push_body([7], [5], ts="2024-01-01T12:00:00.5Z")
            assert (await client.post("/push", json=newer)).status_code == 200
            older = push_body([7], [9], ts="2024-01-01T11:00:00")  # naive: UTC, older: skipped
            assert (await client.post("/push", json=older)).status_code == 200
            got = (await client.post("/get-online-features", json=fresh_request([7]))).json()
            assert got["results"][1]["values"] == [5]
            assert got["results"][1]["event_timestamps"] == ["2024-01-01T12:00:00.500Z"]

    run(main)


def test_pushed_json_numbers_are_stored_as_the_feature_type(store: FeatureStore) -> None:
    # float32 from JSON ints, floats and nulls; an int32 column given as whole floats.
    body = push_body([7, 8, 9], [1, 2, 3])
    body["df"]["conv_rate"] = [1, 0.1, None]
    body["df"]["rating"] = [1.0, 2.0, None]

    async def main() -> None:
        async with client_for(store) as client:
            assert (await client.post("/push", json=body)).status_code == 200
            got = (await client.post("/get-online-features", json=fresh_request([7, 8, 9]))).json()
            assert got["results"][1]["values"] == [1, 2, None]
            # Feast prints float32 widened to double.
            assert got["results"][2]["values"] == [1.0, 0.10000000149011612, None]

    run(main)


def test_write_to_online_store_answers_null(store: FeatureStore) -> None:
    body = push_body([11], [4])
    write = {"feature_view_name": "hourly_fresh", "df": body["df"]}

    async def main() -> None:
        async with client_for(store) as client:
            response = await client.post("/write-to-online-store", json=write)
            assert response.status_code == 200
            assert response.json() is None
            got = (await client.post("/get-online-features", json=fresh_request([11]))).json()
            assert got["results"][1]["values"] == [4]
            assert got["results"][2]["values"] == [0.5]

    run(main)


@pytest.mark.usefixtures("noon")
def test_materialize_and_materialize_incremental(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"}, steps=False)
    request = {"entities": {"driver_id": [1001]}, "features": ["driver_profile:name"]}

    async def main() -> None:
        async with client_for(store) as client:
            before = (await client.post("/get-online-features", json=request)).json()
            assert before["results"][1]["statuses"] == ["NOT_FOUND"]
            body = {
                "start_ts": "2024-01-01T00:00:00",
                "end_ts": "2024-01-01T12:00:00",
                "feature_views": ["driver_profile"],
            }
            response = await client.post("/materialize", json=body)
            assert response.status_code == 200
            assert response.json() is None
            after = (await client.post("/get-online-features", json=request)).json()
            assert after["results"][1]["values"] == ["Ann B."]
            # Without earlier intervals, incremental starts at now - ttl (one day here).
            bad = {"end_ts": "yesterday", "feature_views": ["driver_hourly_stats"]}
            response = await client.post("/materialize-incremental", json=bad)
            assert response.status_code == 400
            assert "'yesterday' is not an ISO 8601 timestamp" in error_of(response)["detail"]
            now = datetime.now(UTC).isoformat()
            incremental = {"end_ts": now, "feature_views": ["driver_hourly_stats"]}
            response = await client.post("/materialize-incremental", json=incremental)
            assert response.status_code == 200
            assert response.json() is None

    run(main)


def test_concurrent_requests_each_get_their_own_rows(store: FeatureStore) -> None:
    ids = list(range(100, 160))

    async def main() -> None:
        async with client_for(store) as client:
            response = await client.post("/push", json=push_body(ids, [i * 3 for i in ids]))
            assert response.status_code == 200

            async def one(i: int) -> None:
                mine = [i, i + 1, 99_999]
                got = (await client.post("/get-online-features", json=fresh_request(mine))).json()
                assert got["results"][0]["values"] == mine
                assert got["results"][1]["values"] == [i * 3, (i + 1) * 3, None]

            await asyncio.gather(*(one(i) for i in ids[:-1] for _ in range(3)))

    run(main)


def test_health_reports_the_registry(store: FeatureStore) -> None:
    async def main() -> None:
        async with client_for(store) as client:
            response = await client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["project"] == "golden"
        assert body["registry_age_seconds"] >= 0

    run(main)


def test_value_encoding_follows_feast(tmp_path: Path, noon: None) -> None:
    store = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"})
    request = {
        "entities": {"driver_id": [1001, 1003]},
        "features": [
            "driver_hourly_stats:conv_rate",
            "driver_profile:avatar",
            "driver_profile:last_login",
            "driver_profile:recent_trip_ids",
        ],
    }

    async def main() -> None:
        async with client_for(store) as client:
            response = await client.post("/get-online-features", json=request)
        raw = response.content
        # float32 widened as Python prints the double; bytes base64; timestamps as seconds.
        assert b"0.20000000298023224" in raw
        got = response.json()
        assert got["results"][2]["values"][0] == base64.b64encode(b"\x89PNG\x00").decode()
        assert got["results"][3]["values"][0] == 1704090600
        assert got["results"][4]["values"] == [[4, 5], [-1, 9223372036854775807]]
        assert got["results"][1]["event_timestamps"] == [
            "2024-01-01T11:00:00Z",
            "2024-01-01T10:30:00.250Z",
        ]

    run(main)


def test_small_pushes_store_what_the_general_path_stores(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One-row pushes and writes take online/small_write.py (the JSON lists in one Rust call);
    # with it turned off the Arrow path must leave the same bytes in Redis.
    from repast_server import endpoints

    redis = request.getfixturevalue("redis_clean")
    fs = server_store(tmp_path, online_config("redis-packed", redis), steps=False)
    taken: list[int | None] = []
    small = write_rows_async

    async def spy(*args: Any) -> int | None:
        taken.append(await small(*args))
        return taken[-1]

    def stored() -> dict[bytes, dict[bytes, bytes]]:
        return redis_hashes(redis.host, redis.port)

    push = push_body([7], [3], ts="2024-01-01T12:00:00.25+02:00")
    write = {"feature_view_name": "hourly_fresh", "df": push_body([8], [4])["df"]}

    async def post_both() -> None:
        async with client_for(fs) as client:
            assert (await client.post("/push", json=push)).status_code == 200
            assert (await client.post("/write-to-online-store", json=write)).status_code == 200

    try:
        monkeypatch.setattr(endpoints, "write_rows_async", spy)
        run(post_both)
        assert taken == [1, 1]
        fast = stored()
        assert len(fast) == 2
        redis.flushall()

        async def general(*args: Any) -> None:
            return None

        monkeypatch.setattr(endpoints, "write_rows_async", general)
        run(post_both)
        assert stored() == fast
    finally:
        fs.online_store.close()


@pytest.mark.parametrize("rows", [1, 20, 200])  # the small-write path, grouped, per column
def test_a_fraction_pushed_to_an_integer_feature_is_refused_not_truncated(
    store: FeatureStore, rows: int
) -> None:
    # pyarrow's `pa.array([2.5], pa.int32())` gives 2; Feast refuses the value, and so must we.
    ids = list(range(100, 100 + rows))
    body = push_body(ids, [7] * rows)
    body["df"]["rating"] = [2.5] + [1] * (rows - 1)

    async def main() -> None:
        async with client_for(store) as client:
            response = await client.post("/push", json=body)
            assert response.status_code == 400
            detail = error_of(response)["detail"]
            assert "column 'rating'" in detail
            assert "was truncated converting to int32" in detail
            got = (await client.post("/get-online-features", json=fresh_request(ids))).json()
            assert got["results"][1]["statuses"] == ["NOT_FOUND"] * rows
            # Whole numbers given as floats are still taken.
            body["df"]["rating"] = [2.0] * rows
            assert (await client.post("/push", json=body)).status_code == 200
            got = (await client.post("/get-online-features", json=fresh_request(ids))).json()
            assert got["results"][1]["values"] == [2] * rows

    run(main)


@pytest.fixture
def demo(tmp_path: Path, redis_clean: RedisServer) -> Iterator[FeatureStore]:
    """The `repast init` demo (an ODFV reading request data `val_to_add`) on Redis."""
    fs = FeatureStore(repo_path=demo_repo(tmp_path, redis_config(redis_clean)))
    yield fs
    fs.online_store.close()


ODFV_READ = ["transformed_conv_rate:conv_rate_plus_val1"]


@pytest.mark.parametrize(
    ("values", "row"),
    [(["x"], 0), ([1, 2.5], 1), ([True], 0), ([[1]], 0), ([{"a": 1}], 0), ([1, "1e3"], 1)],
)
def test_odfv_request_data_of_the_wrong_type_is_a_400_naming_field_row_and_type(
    demo: FeatureStore, values: list[Any], row: int
) -> None:
    # Issue 13: `"val_to_add": ["x"]` for an Int64 field was a 500 ArrowInvalid.
    n = len(values)
    bad: dict[str, Any] = {
        "entities": {"driver_id": [1001] * n, "val_to_add": values, "val_to_add_2": [1] * n},
        "features": ODFV_READ,
    }

    async def main() -> None:
        async with client_for(demo) as client:
            response = await client.post("/get-online-features", json=bad)
            assert response.status_code == 400, response.text
            detail = error_of(response)["detail"]
            assert "request data 'val_to_add'" in detail
            assert f"row {row} is" in detail
            assert "int64" in detail
            good = {**bad, "entities": {**bad["entities"], "val_to_add": list(range(n))}}
            assert (await client.post("/get-online-features", json=good)).status_code == 200

    run(main)


def test_a_fractional_integer_key_is_a_400_on_every_endpoint(demo: FeatureStore) -> None:
    # Issue 13: `{"driver_id": [1001.7]}` was read as driver 1001 and answered 200.
    write = {"feature_view_name": "driver_hourly_stats", "df": demo_push([1001.5], [1])["df"]}

    async def main() -> None:
        async with client_for(demo) as client:
            # orjson reads an integer literal outside 64 bits as the nearest float: -(2**63) - 1
            # would be read as -(2**63), another entity.
            bad = (
                ([1001.7], 0),
                ([1001, 1001.7], 1),
                ([2**70], 0),
                ([True], 0),
                ([-(2**63) - 1], 0),
                ([1000.0, True], 1),  # inferred as doubles [1000.0, 1.0]
            )
            for ids, row in bad:
                response = await client.post("/get-online-features", json=demo_read(ids))
                assert response.status_code == 400, (ids, response.text)
                detail = error_of(response)["detail"]
                assert "entity column 'driver_id'" in detail
                assert f"row {row} is" in detail
            for path, body, row in (
                ("/push", demo_push([1001.7], [1]), 0),
                ("/push", demo_push([1001], [2.5]), 0),
                ("/push", demo_push([True], [1]), 0),
                ("/push", demo_push([1001.0, True], [1, 1]), 1),
                ("/push", demo_push([-(2**63) - 1], [1]), 0),
                ("/write-to-online-store", write, 0),
                ("/push", demo_push(list(range(100)), [1.5] * 100), 0),  # the Arrow path
            ):
                response = await client.post(path, json=body)
                assert response.status_code == 400, (path, response.text)
                assert f"row {row} is" in error_of(response)["detail"]
            # Nothing of the refused writes was stored.
            got = (await client.post("/get-online-features", json=demo_read([1001]))).json()
            assert got["results"][1]["statuses"] == ["NOT_FOUND"]
            # Whole numbers as floats, and integer strings, are the integers they spell.
            assert (await client.post("/push", json=demo_push([1001.0], [7.0]))).status_code == 200
            spellings: list[list[Any]] = [[1001], [1001.0], ["1001"]]
            for spelled in spellings:
                got = (await client.post("/get-online-features", json=demo_read(spelled))).json()
                assert got["results"][2]["values"] == [7], spelled

    run(main)
