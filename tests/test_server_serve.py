"""`repast serve` as a real uvicorn process on 127.0.0.1 with a real Redis: end to end, Redis
restart recovery, graceful shutdown; and the install hint when repast-server is missing."""

from __future__ import annotations

import concurrent.futures
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from repast.cli import cli
from server_helpers import (
    error_of,
    fresh_request,
    push_body,
    redis_config,
    serve_process,
    server_store,
    write_feature_store_yaml,
)
from services import RedisServer


def _repo(tmp_path: Path, redis: RedisServer) -> Path:
    config = redis_config(redis)
    store = server_store(tmp_path, config)
    store.online_store.close()
    write_feature_store_yaml(tmp_path, "golden", config)
    return tmp_path


def test_end_to_end_push_read_and_redis_restart(tmp_path: Path, redis_clean: RedisServer) -> None:
    repo = _repo(tmp_path, redis_clean)
    with (
        serve_process(repo, tmp_path, "-w", "1", "--registry-ttl-sec", "1") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/push", json=push_body([1, 2], [5, 6])).status_code == 200
        got = client.post("/get-online-features", json=fresh_request([1, 2, 3])).json()
        assert got["results"][1]["values"] == [5, 6, None]
        golden = {
            "entities": {"driver_id": [1001]},
            "features": ["driver_profile:name"],
        }
        assert client.post("/get-online-features", json=golden).json()["results"][1]["values"] == [
            "Ann B."
        ]

        redis_clean.stop()
        down = client.post("/get-online-features", json=fresh_request([1]))
        assert down.status_code == 503
        assert error_of(down)["error"] == "OnlineStoreError"
        assert client.get("/health").status_code == 503
        redis_clean.start()
        # The restarted Redis is empty (no persistence); the server answers again.
        assert client.post("/push", json=push_body([1], [9])).status_code == 200
        got = client.post("/get-online-features", json=fresh_request([1])).json()
        assert got["results"][1]["values"] == [9]
        assert client.get("/health").status_code == 200
    _stopped_gracefully(server.process.returncode, server.log())


def _stopped_gracefully(code: int, log: str) -> None:
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean exit.
    assert code in (0, -15), log
    assert "Application shutdown complete" in log, log


def _in_flight(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("repast_requests_in_flight "))
    return float(line.split()[1]) - 1  # not counting this /metrics request


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path, redis_clean: RedisServer) -> None:
    repo = _repo(tmp_path, redis_clean)
    rows = 50_000
    body = orjson.dumps(push_body(list(range(rows)), list(range(rows))))
    headers = {"content-type": "application/json"}
    with serve_process(repo, tmp_path) as server:

        def push() -> int:
            return httpx.post(
                server.url + "/push", content=body, headers=headers, timeout=60
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(push) for _ in range(3)]
            deadline = time.monotonic() + 20
            while _in_flight(server.url) < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _in_flight(server.url) == 3, "the pushes never ran at the same time"
            code = server.stop()
            statuses = [f.result() for f in futures]
    _stopped_gracefully(code, server.log())
    assert statuses == [200] * 3


def test_several_workers_serve_the_same_repo(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"})
    store.online_store.close()
    write_feature_store_yaml(tmp_path, "golden", {"type": "sqlite", "path": "data/online.db"})
    with serve_process(tmp_path, tmp_path, "-w", "2") as server:
        for _ in range(4):
            response = httpx.post(server.url + "/push", json=push_body([1], [3]), timeout=10)
            assert response.status_code == 200
            got = httpx.post(server.url + "/get-online-features", json=fresh_request([1]))
            assert got.json()["results"][1]["values"] == [3]
    _stopped_gracefully(server.process.returncode, server.log())


def test_serve_without_repast_server_prints_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "repast_server.app", None)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0
    assert "install `repast-server` to use `repast serve`" in result.output
