"""`repast serve`: run the app under uvicorn with Feast's flags.

One worker runs the app object in this process. Several workers need an import string, so
the settings travel to the worker processes in an environment variable and each worker
builds its app with `app_from_env` (uvicorn's `factory=True`). uvicorn shuts down gracefully
on SIGTERM/SIGINT: it stops accepting, lets in-flight requests finish (up to
`graceful_timeout` seconds), then runs the lifespan shutdown, which waits for materialization
jobs for what is left of that time and cancels those still running (shutdown.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from repast_server.app import ServerSettings, create_app
from repast_server.shutdown import DEFAULT_GRACEFUL_TIMEOUT

__all__ = ["app_from_env", "serve"]

_ENV = "REPAST_SERVER_SETTINGS"


def app_from_env() -> Starlette:
    """The app factory for uvicorn's worker processes."""
    raw = json.loads(os.environ[_ENV])
    return create_app(
        ServerSettings(
            repo_path=Path(raw["repo_path"]),
            fs_yaml_file=Path(raw["fs_yaml_file"]) if raw["fs_yaml_file"] else None,
            registry_ttl_sec=float(raw["registry_ttl_sec"]),
            graceful_timeout=raw.get("graceful_timeout"),
        )
    )


def serve(
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 6566,
    workers: int = 1,
    access_log: bool = True,
    keep_alive_timeout: int = 30,
    max_requests: int | None = None,
    ssl_keyfile: str | None = None,
    ssl_certfile: str | None = None,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    log_level: str = "info",
) -> None:
    import uvicorn

    # The app counts the same grace period for the materialization jobs it waits for.
    settings = dataclasses.replace(settings, graceful_timeout=graceful_timeout)

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "timeout_keep_alive": keep_alive_timeout,
        "limit_max_requests": max_requests,
        "ssl_keyfile": ssl_keyfile,
        "ssl_certfile": ssl_certfile,
        # uvicorn's own bound on the wait for in-flight requests after SIGTERM.
        "timeout_graceful_shutdown": max(1, round(graceful_timeout)),
        "log_level": log_level,
        "lifespan": "on",
    }
    if workers > 1:
        os.environ[_ENV] = json.dumps(
            {
                "repo_path": str(Path(settings.repo_path).absolute()),
                "fs_yaml_file": str(settings.fs_yaml_file) if settings.fs_yaml_file else None,
                "registry_ttl_sec": settings.registry_ttl_sec,
                "graceful_timeout": settings.graceful_timeout,
            }
        )
        uvicorn.run("repast_server.serve:app_from_env", factory=True, workers=workers, **options)
        return
    # Read the configuration before binding, so a bad feature_store.yaml fails fast.
    uvicorn.run(create_app(settings), **options)
