"""Aggregated views on a real three-node Redis Cluster: tile updates go to the node holding each
entity's slot, reads equal offline at the same instant; the feast layout is refused with the
reason (docs/aggregations.md, "Online")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from repast import FeatureStore, PushMode
from repast.errors import OnlineStoreError, RepoValidationError
from server_helpers import write_feature_store_yaml
from services import (
    RedisServer,
    ServiceError,
    _wait_for_redis,
    free_cluster_port,
    start_redis_server,
)
from test_aggregation_online import (
    NOW_NS,
    assert_every_event_counted,
    online_equals_offline,
    online_repo,
    recent_events,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles are pruned and read as of NOW (as in test_aggregation_online)."""
    monkeypatch.setattr("repast.online.tiles.now_ns", lambda: NOW_NS)


def _node(work: Path) -> RedisServer:
    for attempt in range(3):  # a free port may be taken before redis-server binds it
        node = work / f"try-{attempt}"
        args = ["--cluster-enabled", "yes", "--cluster-config-file", str(node / "nodes.conf")]
        try:
            return start_redis_server(node, port=free_cluster_port(), extra_args=args)
        except ServiceError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Three masters, the 16 384 slots split between them, joined by CLUSTER MEET."""
    nodes: list[RedisServer] = []
    try:
        for i in range(3):
            nodes.append(_node(tmp_path / f"node-{i}"))
        bounds = [0, 5461, 10923, 16384]
        for i, node in enumerate(nodes):
            node.command("CLUSTER", "ADDSLOTSRANGE", str(bounds[i]), str(bounds[i + 1] - 1))
        for node in nodes[1:]:
            node.command("CLUSTER", "MEET", nodes[0].host, str(nodes[0].port))
        deadline = time.monotonic() + 30
        while not all(b"cluster_state:ok" in n.command("CLUSTER", "INFO") for n in nodes):
            assert time.monotonic() < deadline, "the cluster never became ready"
            time.sleep(0.1)
        for node in nodes:
            _wait_for_redis(node, 10)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _config(node: RedisServer, layout: str = "packed") -> dict[str, Any]:
    return {
        "type": "redis",
        "connection_string": node.connection_string,
        "redis_type": "redis_cluster",
        "layout": layout,
    }


@pytest.mark.usefixtures("clock")
def test_tiles_on_a_three_node_cluster_equal_offline(
    tmp_path: Path, cluster: list[RedisServer]
) -> None:
    store = online_repo(tmp_path, _config(cluster[1]))
    events = recent_events(600, seed=21)
    # Out of order across two pushes and a write_to_online_store: every event counts.
    store.push("trips_push", events.iloc[400:], to=PushMode.ONLINE_AND_OFFLINE)
    store.push("trips_push", events.iloc[:200], to=PushMode.ONLINE_AND_OFFLINE)
    store.write_to_online_store("driver_trips", events.iloc[200:400])
    store.write_to_offline_store("driver_trips", events.iloc[200:400])
    online_equals_offline(store)
    # The five drivers' tile sets are spread over the nodes, each in its slot's node.
    holding = 0
    for node in cluster:
        client = redis.Redis(host=node.host, port=node.port)
        keys = [k for k in client.scan_iter() if client.hexists(k, "driver_trips")]
        holding += bool(keys)
        for key in keys:
            assert client.cluster("keyslot", key) in range(*_slots(client, node))
        client.close()
    assert holding >= 2
    # A later write merges into the stored tiles (read-modify-write through the pipeline).
    more = recent_events(50, seed=22)
    store.push("trips_push", more, to=PushMode.ONLINE_AND_OFFLINE)
    online_equals_offline(store)
    store.online_store.close()


def _slots(client: redis.Redis, node: RedisServer) -> tuple[int, int]:
    for start, end, (host, port, *_) in client.execute_command("CLUSTER SLOTS"):  # type: ignore[no-untyped-call]
        if (host.decode() if isinstance(host, bytes) else host, port) == (node.host, node.port):
            return int(start), int(end) + 1
    raise AssertionError(f"{node.port} holds no slots")


@pytest.mark.usefixtures("clock")
def test_the_feast_layout_refuses_tiles_and_says_why(
    tmp_path: Path, cluster: list[RedisServer]
) -> None:
    message = (
        "feature view '(all|driver)_trips' serves windowed aggregations, which need the Redis "
        "layout: packed .*Feast has no stored form for aggregation tiles"
    )
    # apply refuses first, and leaves no registry behind.
    with pytest.raises(RepoValidationError, match=message):
        online_repo(tmp_path / "at_apply", _config(cluster[0], "feast"))
    assert not (tmp_path / "at_apply" / "repo" / "registry.json").exists()
    # A repo applied on the packed layout and then switched to feast is refused at the write.
    applied = online_repo(tmp_path / "switched", _config(cluster[0]))
    applied.online_store.close()
    repo = applied.repo_path
    write_feature_store_yaml(repo, "agg", _config(cluster[0], "feast"))
    store = FeatureStore(repo_path=repo)
    with pytest.raises(OnlineStoreError, match=message):
        store.push("trips_push", recent_events(5, seed=1), to=PushMode.ONLINE)
    store.online_store.close()


@pytest.mark.usefixtures("clock")
def test_concurrent_writers_lose_no_event_on_the_cluster(
    tmp_path: Path, cluster: list[RedisServer]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = online_repo(tmp_path, _config(cluster[2]))
    # One entity, so the writers race on one key and the compare-and-set must retry.
    batches = [recent_events(40, seed=200 + i).assign(driver_id=3) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: store.write_to_online_store("driver_trips", b), batches))
    assert_every_event_counted(store, batches, driver=3)
    store.online_store.close()
