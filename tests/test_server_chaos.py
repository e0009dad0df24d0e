"""Chaos against a real `repast serve` on a real Redis: Redis killed and restarted under
concurrent reads and pushes, `kill -9` of the server during pushes, 200 slow clients holding
half-sent bodies, SIGTERM under load. The assertions are about answers (statuses, rows
readable afterwards); time appears only as generous "answered at all" bounds.
"""

from __future__ import annotations

import itertools
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from server_helpers import demo_push, demo_read, demo_repo, redis_config, serve_process
from services import RedisServer, start_redis_server

# Generous bounds on "answered at all"; a passing run is far below them.
ANSWER_WITHIN = 30.0
RECOVERED_WITHIN = 10.0


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that fsyncs every write before acknowledging it, so a kill loses nothing the
    server was told is stored (the online store's durability is Redis'; see operations.md)."""
    server = start_redis_server(
        tmp_path / "redis", extra_args=["--appendonly", "yes", "--appendfsync", "always"]
    )
    yield server
    server.stop()


@dataclass
class Load:
    """Threads pushing unique driver ids and reading back acknowledged ones until `stop`."""

    url: str
    threads: int = 4
    statuses: list[tuple[str, int]] = field(default_factory=list)
    acked: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(10_000))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(ANSWER_WITHIN * 2)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=ANSWER_WITHIN) as client:
            while not self._stop.is_set():
                with self._lock:
                    driver = next(self._ids)
                    known = list(self.acked)[-3:]
                trips = driver % 1000
                self._call(client, "/push", demo_push([driver], [trips]), driver, trips)
                if known:
                    self._call(client, "/get-online-features", demo_read(known))

    def _call(
        self,
        client: httpx.Client,
        path: str,
        body: dict[str, object],
        driver: int | None = None,
        trips: int = 0,
    ) -> None:
        try:
            status = client.post(path, json=body).status_code
        except httpx.TransportError as exc:  # the server went away (kill -9, SIGTERM)
            with self._lock:
                self.errors.append(f"{path}: {type(exc).__name__}")
            time.sleep(0.05)
            return
        with self._lock:
            self.statuses.append((path, status))
            if driver is not None and status == 200:
                self.acked[driver] = trips

    def bad(self, allowed: Callable[[int], bool]) -> list[tuple[str, int]]:
        with self._lock:
            return [(p, s) for p, s in self.statuses if not allowed(s)]


def _wait_for(pushes: Load, count: int) -> None:
    deadline = time.monotonic() + ANSWER_WITHIN
    while len(pushes.acked) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(pushes.acked) >= count, (pushes.statuses[-10:], pushes.errors[-10:])


def _all_readable(url: str, acked: dict[int, int]) -> None:
    ids = sorted(acked)
    with httpx.Client(base_url=url, timeout=ANSWER_WITHIN) as client:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            got = client.post("/get-online-features", json=demo_read(chunk))
            assert got.status_code == 200, got.text
            results = got.json()["results"]
            trips = dict(zip(chunk, results[2]["values"], strict=True))
            missing = [i for i in chunk if trips[i] != acked[i]]
            assert missing == [], f"acknowledged pushes not readable: {missing[:20]}"


def test_redis_killed_and_restarted_under_reads_and_pushes(
    tmp_path: Path, durable_redis: RedisServer
) -> None:
    repo = demo_repo(tmp_path, redis_config(durable_redis))
    with serve_process(repo, tmp_path) as server:
        with Load(server.url) as load:
            _wait_for(load, 20)
            _kill_and_restart(durable_redis, server.url)
            before = len(load.acked)
            _wait_for(load, before + 20)
        # While Redis was down: 503 and nothing else; otherwise 200.
        assert load.bad(lambda s: s in (200, 503)) == []
        assert load.bad(lambda s: s != 503), "no request ran while Redis was down"
        assert load.errors == []
        _all_readable(server.url, load.acked)


def _kill_and_restart(redis: RedisServer, url: str) -> None:
    redis.kill()
    time.sleep(1.0)
    redis.start()
    # Answers resume soon after Redis is back (bounded generously; no latency claim).
    deadline = time.monotonic() + RECOVERED_WITHIN
    with httpx.Client(base_url=url, timeout=ANSWER_WITHIN) as client:
        while True:
            read = client.post("/get-online-features", json=demo_read([1]))
            if read.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert read.status_code == 200, read.text


def test_kill_9_of_the_server_loses_no_acknowledged_push(
    tmp_path: Path, durable_redis: RedisServer
) -> None:
    repo = demo_repo(tmp_path, redis_config(durable_redis))
    with serve_process(repo, tmp_path) as server:
        with Load(server.url) as load:
            _wait_for(load, 50)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(ANSWER_WITHIN)
        assert load.bad(lambda s: s == 200) == []
    with serve_process(repo, tmp_path) as again:
        _all_readable(again.url, load.acked)


def _half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN)
    sock.sendall(
        b"POST /push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"push_source_name": '
    )
    return sock


def test_200_slow_clients_do_not_stop_reads_and_time_out_themselves(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    repo = demo_repo(
        tmp_path, redis_config(redis_clean), feature_server={"request_timeout_seconds": 3}
    )
    with serve_process(repo, tmp_path) as server:
        assert httpx.post(server.url + "/push", json=demo_push([7], [70])).status_code == 200
        slow = [_half_sent(server.port) for _ in range(200)]
        try:
            with httpx.Client(base_url=server.url, timeout=ANSWER_WITHIN) as client:
                for _ in range(20):
                    read = client.post("/get-online-features", json=demo_read([7]))
                    assert read.status_code == 200
                    assert read.json()["results"][2]["values"] == [70]
            # Each half-sent request reaches its own deadline: a 504, not a held slot.
            for sock in slow:
                assert sock.recv(4096).startswith(b"HTTP/1.1 504 ")
        finally:
            for sock in slow:
                sock.close()


def test_sigterm_under_load_exits_in_the_grace_period_and_answers_no_5xx(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    repo = demo_repo(tmp_path, redis_config(redis_clean))
    with serve_process(repo, tmp_path, "--graceful-timeout", "5") as server:
        with Load(server.url, threads=6) as load:
            _wait_for(load, 30)
            server.process.send_signal(signal.SIGTERM)
            # Exits within its grace period (plus slack for a loaded 2-core machine).
            code = server.process.wait(5 + ANSWER_WITHIN)
        assert code in (0, -signal.SIGTERM), server.log()
        assert "Application shutdown complete" in server.log()
    assert load.bad(lambda s: s < 500) == []
    with serve_process(repo, tmp_path) as again:
        _all_readable(again.url, load.acked)
