"""`redis_type: redis_sentinel`: the master is asked of a real Redis Sentinel, and asked again
after a failover promotes the replica (reads and writes, sync and asyncio, and the server)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest

from golden_repo import add_push_view, build_store, run_steps
from repast import FeatureStore
from repast.online.base import OnlineStoreError
from server_helpers import client_for, fresh_request, push_body, run
from services import RedisServer, start_redis_sentinel, start_redis_server

T = TypeVar("T")
MASTER = "mymaster"
Sentinels = tuple[RedisServer, RedisServer, RedisServer]
"""(master, replica, Sentinel)."""


# The golden rows are judged against their ttl at the time Feast recorded them.
pytestmark = pytest.mark.usefixtures("noon")


def _until(what: str, check: Callable[[], T | None], seconds: float = 30) -> T:
    """Wait (bounded) for a service to reach a state; not a performance check."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.1)


def _master_port(sentinel: RedisServer) -> int:
    reply = sentinel.command("SENTINEL", "get-master-addr-by-name", MASTER)
    ports = re.findall(rb"\r\n(\d+)\r\n$", reply)
    assert ports, reply
    return int(ports[0])


def _fail_over(master: RedisServer, replica: RedisServer, sentinel: RedisServer) -> None:
    """Stop the master once the replica holds everything; wait for the Sentinel to promote
    the replica."""
    assert master.command("WAIT", "1", "5000") == b":1\r\n"
    master.stop()
    _until(
        "the Sentinel to promote the replica",
        lambda: _master_port(sentinel) == replica.port or None,
    )


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[Sentinels]:
    """(master, replica, sentinel): the replica in sync and known to the Sentinel."""
    master = start_redis_server(tmp_path / "master")
    servers = [master]
    try:
        replica = start_redis_server(
            tmp_path / "replica", extra_args=["--replicaof", master.host, str(master.port)]
        )
        servers.append(replica)
        _until(
            "the replica's link to the master",
            lambda: True if b"master_link_status:up" in replica.command("INFO") else None,
        )
        sentinel = start_redis_sentinel(tmp_path / "sentinel", master, name=MASTER)
        servers.append(sentinel)
        _until(
            "the Sentinel to learn of the replica",
            lambda: (
                True
                if str(replica.port).encode() in sentinel.command("SENTINEL", "replicas", MASTER)
                else None
            ),
        )
        yield master, replica, sentinel
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def store(sentinel_setup: Sentinels, tmp_path: Path) -> Iterator[FeatureStore]:
    """The golden repo (plus `hourly_fresh`) on the master the Sentinel names."""
    _, _, sentinel = sentinel_setup
    online = {
        "type": "redis",
        "redis_type": "redis_sentinel",
        "connection_string": sentinel.connection_string,
        "sentinel_master": MASTER,
    }
    fs = build_store(tmp_path / "repo", online)
    add_push_view(fs)
    yield fs
    fs.online_store.close()


def _ratings(store: FeatureStore, ids: list[int]) -> list[Any]:
    got = store.get_online_features(["driver_hourly_stats:rating"], {"driver_id": ids})
    return list(got.to_dict()["rating"])


def _write_rating(store: FeatureStore, driver: int, rating: int) -> None:
    stamp = pd.Timestamp("2030-01-01", tz="UTC")
    row = {
        "driver_id": [driver],
        "event_timestamp": [stamp],
        "created": [stamp],
        "conv_rate": pd.Series([0.5], dtype="float32"),
        "rating": pd.Series([rating], dtype="int32"),
    }
    store.write_to_online_store("hourly_fresh", pd.DataFrame(row))


def _fresh_ratings(store: FeatureStore, ids: list[int]) -> list[Any]:
    got = store.get_online_features(["hourly_fresh:rating"], {"driver_id": ids})
    return list(got.to_dict()["rating"])


def _packed_rows(store: FeatureStore, ids: list[int]) -> list[Any]:
    async def read() -> list[Any]:
        try:
            packed = await store.read_online_packed_async(
                ["driver_hourly_stats:rating"], {"driver_id": ids}
            )
            assert packed is not None
            return [row is not None for row in packed.views[0][1]]
        finally:
            await store.online_store.close_async()

    return asyncio.run(read())


def test_reads_and_writes_go_to_the_master_the_sentinel_names(
    sentinel_setup: Sentinels, store: FeatureStore
) -> None:
    master, _, _ = sentinel_setup
    run_steps(store)
    assert _ratings(store, [1001, 1002, 4242]) == [5, 3, None]
    assert _packed_rows(store, [1001, 4242]) == [True, False]
    # The rows are on the master itself.
    assert int(master.command("DBSIZE")[1:-2]) > 0


def test_after_a_failover_the_promoted_replica_is_used(
    sentinel_setup: Sentinels, store: FeatureStore
) -> None:
    master, replica, sentinel = sentinel_setup
    run_steps(store)
    assert _ratings(store, [1001]) == [5]
    _fail_over(master, replica, sentinel)

    def write_and_read() -> list[Any] | None:
        # The first calls may meet the connection to the old master: an OnlineStoreError
        # (503 from the server), never a wrong answer.
        try:
            _write_rating(store, 1001, 9)
            return _fresh_ratings(store, [1001, 1002])
        except OnlineStoreError:
            return None

    assert _until("a write through the new master", write_and_read) == [9, 3]
    # What was written before the failover was replicated and is still served.
    assert _ratings(store, [1001, 1002]) == [5, 3]
    assert _packed_rows(store, [1001, 1002]) == [True, True]


def test_the_server_answers_from_the_new_master(
    sentinel_setup: Sentinels, store: FeatureStore
) -> None:
    master, replica, sentinel = sentinel_setup

    async def main() -> None:
        async with client_for(store) as client:
            assert (await client.get("/health")).status_code == 200
            first = await client.post("/push", json=push_body([7], [1]))
            assert first.status_code == 200, first.text
            got = (await client.post("/get-online-features", json=fresh_request([7]))).json()
            assert got["results"][1]["values"] == [1]
            await asyncio.to_thread(_fail_over, master, replica, sentinel)
            deadline = time.monotonic() + 30
            while True:
                push = await client.post(
                    "/push", json=push_body([7], [2], ts="2024-01-01T13:00:00Z")
                )
                if push.status_code == 200:
                    break
                assert push.status_code == 503, push.text
                assert time.monotonic() < deadline, "no push through the new master in 30 s"
                await asyncio.sleep(0.1)
            got = (await client.post("/get-online-features", json=fresh_request([7]))).json()
            assert got["results"][1]["values"] == [2]
            assert (await client.get("/health")).status_code == 200

    run(main)
