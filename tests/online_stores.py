"""Online store configurations for tests that run against every store."""

from __future__ import annotations

from typing import Any

from services import RedisServer

__all__ = ["STORES", "online_config"]

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
