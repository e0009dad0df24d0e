"""Service fixtures: real SeaweedFS (S3), redis-server and Kafka processes on 127.0.0.1.

Each service starts once per session, on first use, and stops at the end. When one cannot
start, the tests that need it fail with the service's log tail; they are never skipped.
Tests that use a service fixture get its marker (`s3`, `redis`, `kafka`) automatically, so
`pytest -m "not s3"` deselects them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feast_venv import FEAST_DEMO_TIMES, feast_demo_repo
from kafka_fixtures import kafka_broker
from services import RedisServer, S3Server, start_redis_server, start_s3_server

__all__ = ["kafka_broker"]  # defined in kafka_fixtures.py, offered to every test here

_MARKER_FOR_FIXTURE = {
    "s3_server": "s3",
    "s3_bucket": "s3",
    "s3_env": "s3",
    "redis_server": "redis",
    "redis_clean": "redis",
    "kafka_broker": "kafka",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for marker in {m for f, m in _MARKER_FOR_FIXTURE.items() if f in fixtures}:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server: `endpoint_url`, `access_key`, `secret_key`, `region`,
    `client_kwargs()`, `env()`, `create_bucket()`."""
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket for one test (deleted with its objects afterwards)."""
    name = s3_server.create_bucket()
    yield name
    if s3_server.running():
        s3_server.delete_bucket(name)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Point the AWS credential chain and `FEAST_S3_ENDPOINT_URL` at the test server."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(scope="session")
def feast_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Feast's `feast init` template, applied and materialized by Feast 0.67 (`materialize
    START MID`, then `materialize-incremental END`, FEAST_DEMO_TIMES): its feature_repo. Tests
    copy it before changing anything."""
    return feast_demo_repo(tmp_path_factory.mktemp("feast-demo"), *FEAST_DEMO_TIMES)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server without persistence: `host`, `port`, `url`, `connection_string`,
    `stop()`, `start()`, `restart()`, `stopped()` (a context manager), `flushall()`."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_clean(redis_server: RedisServer) -> RedisServer:
    """The session's redis-server, running and emptied for this test."""
    redis_server.start()
    redis_server.flushall()
    return redis_server


@pytest.fixture
def noon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online reads judge ttl as of 2024-01-01 12:00 UTC, when Feast recorded the golden rows
    (every stored golden row is within its ttl then)."""
    micros = int(datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp() * 1_000_000)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: micros)
