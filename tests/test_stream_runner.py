"""StreamRunner and `repast stream`: which views run, one group per view, restart after an
unexpected failure, clean stop on SIGTERM, and a broker that stops answering for a while."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kafka_service import running_kafka_broker
from repast import Entity, FeatureStore, FeatureView, Field, KafkaSource, StreamFeatureView
from repast.config import RepoConfig
from repast.data_format import JsonFormat
from repast.errors import FeatureViewNotFoundError, RepastError
from repast.stream import StreamRunner, stream_views
from repast.types import Int64
from repast.value_type import ValueType
from services import RedisServer, free_ports
from stream_helpers import (
    FAST_BACKOFF,
    VIEW,
    committed,
    eventually,
    fresh_metrics,
    produce,
    read_online,
    stream_store,
    unique,
)

T0 = 1_704_067_200


def event(driver: int, trips: int, second: int = 0) -> dict[str, Any]:
    return {"driver_id": driver, "event_timestamp": T0 + second, "trips": trips}


def add_plain_view(store: FeatureStore, bootstrap: str, topic: str) -> None:
    """A FeatureView (not a StreamFeatureView) whose source is a KafkaSource."""
    live = store.get_stream_feature_view(VIEW)
    source = KafkaSource(
        name="rides",
        kafka_bootstrap_servers=bootstrap,
        topic=topic,
        timestamp_field="event_timestamp",
        batch_source=live.batch_source,
        message_format=JsonFormat("driver_id bigint, event_timestamp timestamp, trips bigint"),
    )
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="rides",
        entities=[driver],
        ttl=timedelta(0),
        schema=[Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64)],
        source=source,
    )
    store.apply([source, view])


def test_views_to_consume(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = stream_store(tmp_path, redis_clean, "127.0.0.1:1", "t")
    add_plain_view(store, "127.0.0.1:1", "t2")
    assert sorted(v.name for v in stream_views(store.context)) == [VIEW, "rides"]
    assert [v.name for v in stream_views(store.context, ["rides"])] == ["rides"]
    with pytest.raises(FeatureViewNotFoundError, match="did you mean 'driver_live'"):
        stream_views(store.context, ["driver_lve"])
    runner = StreamRunner(store.context, group_id="team", metrics=fresh_metrics())
    assert sorted(runner.group_id(v) for v in runner.views) == ["team.driver_live", "team.rides"]
    default = StreamRunner(store.context, [VIEW], metrics=fresh_metrics())
    assert default.group_id(default.views[0]) == f"repast.{store.project}.{VIEW}"
    with pytest.raises(ValueError, match="must contain"):
        StreamRunner(store.context, dead_letter_topic="dlq", metrics=fresh_metrics())
    store.online_store.close()


def double_trips(df: Any) -> Any:
    df["trips"] = df["trips"] * 2
    return df


def test_views_with_a_udf_are_refused(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = stream_store(tmp_path, redis_clean, "127.0.0.1:1", "t")
    source = store.get_stream_feature_view(VIEW).stream_source
    assert source is not None
    doubled = StreamFeatureView(
        name="doubled",
        entities=[Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)],
        schema=[Field(name="driver_id", dtype=Int64), Field(name="trips", dtype=Int64)],
        source=source,
        udf=double_trips,
    )
    store.apply([doubled])
    with pytest.raises(RepastError, match="StreamFeatureView 'doubled' has a udf"):
        stream_views(store.context)
    assert [v.name for v in stream_views(store.context, [VIEW])] == [VIEW]
    store.online_store.close()


def test_views_without_kafka_are_refused(tmp_path: Path, redis_clean: RedisServer) -> None:
    config = RepoConfig.model_validate(
        {"project": "empty", "registry": str(tmp_path / "registry.json"), "repo_path": tmp_path}
    )
    store = FeatureStore(config=config)
    store.apply([])
    with pytest.raises(RepastError, match="no feature view in project 'empty' reads a KafkaSource"):
        stream_views(store.context)


def test_runner_consumes_every_view_until_stopped(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str
) -> None:
    topic, rides = unique("drivers"), unique("rides")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    add_plain_view(store, kafka_broker, rides)
    runner = StreamRunner(
        store.context, group_id=unique("g"), from_beginning=True, metrics=fresh_metrics(),
        backoff=FAST_BACKOFF,
    )  # fmt: skip

    async def main() -> None:
        await produce(kafka_broker, topic, [event(1, 10), event(2, 20)])
        await produce(kafka_broker, rides, [event(1, 100)])
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))

        def rides_online() -> bool:
            out = store.get_online_features(["rides:trips"], {"driver_id": [1]}).to_dict()
            return bool(out["trips"] == [100])

        await eventually(lambda: read_online(store, [1, 2])["trips"] == [10, 20], "driver_live")
        await eventually(rides_online, "rides")
        stop.set()
        await asyncio.wait_for(task, 30)
        assert runner.consumers == []
        live_group = runner.group_id(store.get_stream_feature_view(VIEW))
        assert await committed(kafka_broker, live_group, topic) == 2

    asyncio.run(main())
    store.online_store.close()


class Crash(Exception):
    pass


def test_a_failed_consumer_restarts_from_committed_offsets(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = unique("drivers")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    online = store.online_store
    real_write = online.write_batch
    calls = {"n": 0}

    def crashes_once(view: Any, batch: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash("a bug")
        return real_write(view, batch)

    monkeypatch.setattr(online, "write_batch", crashes_once)
    metrics = fresh_metrics()
    runner = StreamRunner(
        store.context,
        group_id=unique("g"),
        from_beginning=True,
        metrics=metrics,
        backoff=FAST_BACKOFF,
    )

    async def main() -> None:
        await produce(kafka_broker, topic, [event(d, d) for d in range(1, 6)])
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await eventually(
            lambda: read_online(store, [1, 5])["trips"] == [1, 5], "rows after restart"
        )
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert calls["n"] >= 2
    consumed = metrics.registry.get_sample_value(
        "repast_stream_messages_consumed_total", {"view": VIEW}
    )
    assert consumed == 10  # read twice: the crashed batch was never committed
    online.close()


def write_yaml(repo: Path, store: FeatureStore, redis: RedisServer) -> None:
    (repo / "feature_store.yaml").write_text(
        f"project: {store.project}\n"
        f"registry: {repo / 'registry.json'}\n"
        "provider: local\n"
        "online_store:\n"
        "  type: redis\n"
        f"  connection_string: {redis.connection_string}\n"
    )


def test_cli_streams_until_sigterm_and_commits(
    tmp_path: Path, redis_clean: RedisServer, kafka_broker: str
) -> None:
    topic = unique("drivers")
    store = stream_store(tmp_path, redis_clean, kafka_broker, topic)
    write_yaml(tmp_path, store, redis_clean)
    [port] = free_ports(1)
    repast = Path(sys.executable).parent / "repast"
    group = unique("cli")
    proc = subprocess.Popen(
        [str(repast), "-c", str(tmp_path), "--log-level", "info", "stream", "-v", VIEW,
         "--group-id", group, "--from-beginning", "--metrics-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        async def main() -> None:
            await produce(kafka_broker, topic, [event(d, d * 10) for d in range(1, 4)])
            await eventually(lambda: read_online(store, [3])["trips"] == [30], "rows via the CLI")
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            assert b'repast_stream_messages_consumed_total{view="driver_live"} 3.0' in body
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
            assert await committed(kafka_broker, f"{group}.{VIEW}", topic) == 3

        asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0].decode()
    assert proc.returncode == 0, output
    assert "streaming driver_live" in output
    store.online_store.close()


def test_cli_names_an_unknown_view(tmp_path: Path, redis_clean: RedisServer) -> None:
    store = stream_store(tmp_path, redis_clean, "127.0.0.1:1", "t")
    write_yaml(tmp_path, store, redis_clean)
    repast = Path(sys.executable).parent / "repast"
    result = subprocess.run(
        [str(repast), "-c", str(tmp_path), "stream", "-v", "nope"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert b"feature view 'nope' does not exist" in result.stderr
    store.online_store.close()


def test_a_broker_that_stops_answering_delays_but_loses_nothing(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    # Its own broker: it is frozen (SIGSTOP) for a while, which the shared one must not be.
    with running_kafka_broker() as broker:
        bootstrap = broker.bootstrap_servers
        topic = unique("drivers")
        store = stream_store(tmp_path, redis_clean, bootstrap, topic)
        group = unique("g")
        runner = StreamRunner(
            store.context, group_id=group, from_beginning=True, metrics=fresh_metrics(),
            backoff=FAST_BACKOFF,
            consumer_options={"request_timeout_ms": 3000, "session_timeout_ms": 6000,
                              "heartbeat_interval_ms": 1000},
        )  # fmt: skip

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            await produce(bootstrap, topic, [event(d, 1) for d in range(1, 51)])
            await eventually(lambda: read_online(store, [50])["trips"] == [1], "before")
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(8)  # longer than the session and request timeouts
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await produce(bootstrap, topic, [event(d, 2, second=5) for d in range(1, 51)])
            await eventually(
                lambda: read_online(store, list(range(1, 51)))["trips"] == [2] * 50,
                "after",
                timeout=90,
            )
            group_id = runner.group_id(runner.views[0])

            async def all_committed() -> bool:
                return await committed(bootstrap, group_id, topic) == 100

            await eventually(all_committed, "commit", timeout=90)
            stop.set()
            await asyncio.wait_for(task, 30)

        started = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - started < 150
        store.online_store.close()
