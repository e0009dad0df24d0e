"""The service fixtures themselves: they start, answer, and (Redis) survive a restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services import RedisServer, S3Server, ServiceError, free_ports, start_redis_server


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8


def test_s3_server_answers(s3_server: S3Server, s3_bucket: str) -> None:
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    client = s3_server.client()
    try:
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"v")
        assert client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"v"
        assert s3_bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        client.close()


def test_redis_server_stop_and_restart(redis_clean: RedisServer) -> None:
    assert redis_clean.host == "127.0.0.1"
    assert redis_clean.url == f"redis://127.0.0.1:{redis_clean.port}"
    assert redis_clean.command("SET", "k", "v") == b"+OK\r\n"
    with redis_clean.stopped():
        assert not redis_clean.running()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((redis_clean.host, redis_clean.port), timeout=1),
        ):
            pass
    assert redis_clean.running()
    assert redis_clean.command("GET", "k") == b"$-1\r\n"  # no persistence: restarted empty
    redis_clean.restart()
    assert redis_clean.command("PING") == b"+PONG\r\n"


def test_redis_clean_empties_the_server(redis_clean: RedisServer) -> None:
    assert redis_clean.command("DBSIZE") == b":0\r\n"


def test_a_service_that_cannot_start_fails_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'cannot bind: address in use' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    with pytest.raises(ServiceError) as info:
        start_redis_server(tmp_path / "redis")
    message = str(info.value)
    assert "redis-server exited while starting (exit code 3)" in message
    assert "cannot bind: address in use" in message
