"""Helpers for the feature-server tests: the app in-process through httpx's ASGITransport
(with its lifespan run, which ASGITransport does not do), golden-repo stores, and a real
`repast serve` process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette

from repast.feature_store import FeatureStore
from repast_server.app import create_app
from services import RedisServer, free_ports

__all__ = [
    "DEMO_FEATURES",
    "PARSERS",
    "ServerProcess",
    "client_for",
    "demo_push",
    "demo_read",
    "demo_repo",
    "error_of",
    "fresh_request",
    "push_body",
    "redis_config",
    "run",
    "serve_process",
    "server_store",
    "write_feature_store_yaml",
]

T = TypeVar("T")


def error_of(response: httpx.Response | bytes) -> dict[str, Any]:
    """The JSON document inside an error answer's body, which is a JSON *string* (Feast's
    shape, errors.py); fails when the body is not shaped so."""
    body = json.loads(response if isinstance(response, bytes) else response.content)
    assert isinstance(body, str), body
    document = json.loads(body)
    assert isinstance(document, dict), document
    assert document["module"] == "feast.errors", document
    assert document["message"] == document["detail"], document
    return document


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run one async test body on a fresh event loop."""
    return asyncio.run(main())  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def client_for(
    app_or_store: Starlette | FeatureStore, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the app in-process, inside the app's lifespan."""
    app = app_or_store if isinstance(app_or_store, Starlette) else create_app(app_or_store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client


def redis_config(server: RedisServer, layout: str = "packed") -> dict[str, Any]:
    return {"type": "redis", "connection_string": server.connection_string, "layout": layout}


class ServerProcess:
    """`repast serve` in a subprocess; `url`, `stop()` (SIGTERM, graceful), `log()`."""

    def __init__(
        self,
        repo: Path,
        port: int,
        log_path: Path,
        extra: list[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.repo = repo
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        # The console script installed next to this interpreter (the venv's `repast`).
        args = [str(Path(sys.executable).parent / "repast"), "-c", str(repo), "serve"]
        args += ["-h", "127.0.0.1", "-p", str(port), "--no-access-log", *extra]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"repast serve exited:\n{self.log()}")
            try:
                httpx.get(self.url + "/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"repast serve did not answer in {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def serve_process(
    repo: Path, log_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    port = free_ports(1)[0]
    server = ServerProcess(repo, port, log_dir / f"serve-{port}.log", list(extra), env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def write_feature_store_yaml(repo: Path, project: str, online_store: dict[str, Any]) -> None:
    """A feature_store.yaml for a repo whose registry is `repo/registry.json`."""
    lines = [f"project: {project}", f"registry: {repo / 'registry.json'}", "online_store:"]
    lines += [f"  {key}: {value}" for key, value in online_store.items()]
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n")


def server_store(tmp: Path, online_store: dict[str, Any], steps: bool = True) -> FeatureStore:
    """The golden repo (its Feast steps run), plus `hourly_push` feeding `hourly_fresh`
    (ttl 0, so pushed rows never expire) for the write endpoints."""
    from golden_repo import add_push_view, build_store, run_steps

    store = build_store(tmp, online_store)
    if steps:
        run_steps(store)
    add_push_view(store)
    return store


def push_body(
    ids: list[int], rating: list[int], ts: str = "2024-01-01T12:00:00Z"
) -> dict[str, Any]:
    n = len(ids)
    return {
        "push_source_name": "hourly_push",
        "df": {
            "driver_id": ids,
            "event_timestamp": [ts] * n,
            "created": [ts] * n,
            "conv_rate": [0.5] * n,
            "rating": rating,
        },
    }


def fresh_request(ids: list[int]) -> dict[str, Any]:
    return {
        "entities": {"driver_id": ids},
        "features": ["hourly_fresh:rating", "hourly_fresh:conv_rate"],
    }


# How the server parses Redis replies: hiredis (installed in the dev venv) or redis-py's own
# parser, forced with REPAST_REDIS_PARSER=python (redis_client.py); the parsers differ in how
# they treat edge cases, so the adversarial tests run the server both ways.
PARSERS = {"hiredis": {}, "python-parser": {"REPAST_REDIS_PARSER": "python"}}

DEMO_FEATURES = [
    "driver_hourly_stats_fresh:conv_rate",
    "driver_hourly_stats_fresh:avg_daily_trips",
]


def demo_repo(
    directory: Path, online_store: dict[str, Any], feature_server: dict[str, Any] | None = None
) -> Path:
    """`repast init`'s demo repo (its ODFV reads request data `val_to_add`), with
    `online_store` instead of SQLite, applied; the repo path."""
    from repast.scaffold import init_repo

    repo = init_repo(directory)
    path = repo / "feature_store.yaml"
    lines = path.read_text().splitlines()
    start = lines.index("online_store:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    block = ["online_store:", *(f"  {k}: {v}" for k, v in online_store.items())]
    if feature_server:
        block += ["feature_server:", *(f"  {k}: {v}" for k, v in feature_server.items())]
    path.write_text("\n".join([*lines[:start], *block, *lines[end:]]) + "\n")
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    store.online_store.close()
    return repo


def demo_read(ids: list[Any], **extra: list[Any]) -> dict[str, Any]:
    return {"entities": {"driver_id": ids, **extra}, "features": DEMO_FEATURES}


def demo_push(ids: list[Any], trips: list[Any], ts: str | None = None) -> dict[str, Any]:
    """A push to the demo's push source (event time now unless `ts`: the view's ttl is a day)."""
    n = len(ids)
    stamp = ts or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "push_source_name": "driver_stats_push_source",
        "df": {
            "driver_id": ids,
            "event_timestamp": [stamp] * n,
            "created": [stamp] * n,
            "conv_rate": [0.5] * n,
            "acc_rate": [0.25] * n,
            "avg_daily_trips": trips,
        },
    }
