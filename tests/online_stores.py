"""Online store configurations for tests that run against every store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repast import FeatureStore
from repast.config import RepoConfig
from services import RedisServer

__all__ = ["STORES", "online_config", "store_on"]

STORES = ["sqlite", "redis-packed", "redis-feast"]


def online_config(kind: str, redis: RedisServer | None, **extra: Any) -> dict[str, Any]:
    if kind == "sqlite":
        return {"type": "sqlite", "path": "data/online.db", **extra}
    assert redis is not None
    layout = kind.split("-", 1)[1]
    return {
        "type": "redis",
        "connection_string": redis.connection_string,
        "layout": layout,
        **extra,
    }


def store_on(kind: str, redis: RedisServer | None, root: Path, project: str) -> FeatureStore:
    """A store under `root` (its `data/` made) on the `kind` online store; `.layout` and
    `.redis_url` (None on SQLite) tell its tests which store they run on."""
    (root / "data").mkdir()
    config = RepoConfig.model_validate(
        {
            "project": project,
            "registry": str(root / "registry.json"),
            "online_store": online_config(kind, redis),
            "repo_path": root,
        }
    )
    fs = FeatureStore(config=config)
    fs.layout = kind  # type: ignore[attr-defined]
    fs.redis_url = redis.url if redis else None  # type: ignore[attr-defined]
    return fs
