"""Online stores: the latest feature values per entity, newer event time wins.

`online_store_from_config(config)` picks the store `feature_store.yaml` names; every store
implements the `OnlineStore` protocol (`online/base.py`).
"""

from __future__ import annotations

from repast.config import RedisOnlineStoreConfig, RepoConfig
from repast.online.base import (
    OnlineStore,
    OnlineStoreError,
    OnlineView,
    ReadRequest,
    ViewRows,
    WriteBatch,
)
from repast.online.sqlite import SqliteOnlineStore

__all__ = [
    "OnlineStore",
    "OnlineStoreError",
    "OnlineView",
    "ReadRequest",
    "SqliteOnlineStore",
    "ViewRows",
    "WriteBatch",
    "online_store_from_config",
]


def online_store_from_config(config: RepoConfig) -> OnlineStore:
    """The configured store; the Redis one imports redis-py only when chosen."""
    if isinstance(config.online_store, RedisOnlineStoreConfig):
        from repast.online.redis import RedisOnlineStore

        return RedisOnlineStore(config.online_store, config.project)
    return SqliteOnlineStore(
        config.online_store_path,
        config.project,
        last_write_wins=config.online_write_order == "feast",
    )
