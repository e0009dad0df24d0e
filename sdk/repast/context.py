"""What an operation needs of a feature store, and nothing else: its configuration, its registry,
the project's definitions (`Catalog`) and its online store (`StoreContext`).

`FeatureStore` (the facade with Feast's method names) holds one `StoreContext` and hands it to
the operation modules (online reads and writes, materialization, historical retrieval, offline
writes, stream ingestion), so none of them depends on the facade. A server or a test that wants
another online store in front of the configured one (a batching wrapper, say) replaces it
through `StoreContext.replace_online_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from repast.batch_feature_view import feature_view_from_dict
from repast.config import RepoConfig
from repast.data_source import data_source_from_dict
from repast.entity import Entity
from repast.errors import (
    DataSourceNotFoundError,
    EntityNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    NotFoundError,
)
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.label_view import LabelView
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.online import OnlineStore, OnlineView, online_store_from_config
from repast.registry import Kind, Registry, registry_from_config
from repast.stream_feature_view import StreamFeatureView
from repast.validate import closest

__all__ = ["Catalog", "StoreContext"]

_FROM_DICT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "entities": Entity.from_dict,
    "data_sources": data_source_from_dict,
    "feature_views": feature_view_from_dict,
    "stream_feature_views": StreamFeatureView.from_dict,
    "on_demand_feature_views": OnDemandFeatureView.from_dict,
    "feature_services": FeatureService.from_dict,
    "label_views": LabelView.from_dict,
}

_NOT_FOUND: dict[str, type[NotFoundError]] = {
    "entities": EntityNotFoundError,
    "data_sources": DataSourceNotFoundError,
    "feature_views": FeatureViewNotFoundError,
    "stream_feature_views": FeatureViewNotFoundError,
    "on_demand_feature_views": FeatureViewNotFoundError,
    "feature_services": FeatureServiceNotFoundError,
    "label_views": FeatureViewNotFoundError,
}


def _tags_match(obj: Any, tags: Mapping[str, str] | None) -> bool:
    if not tags:
        return True
    own = getattr(obj, "tags", None) or {}
    return all(own.get(k) == v for k, v in tags.items())


class Catalog:
    """One project's definitions in a registry, built from the registry's snapshot.

    `allow_cache=True` reads the snapshot the registry holds (refreshed in the background);
    `False` re-reads the stored registry first, as Feast's `allow_registry_cache=False` does.
    """

    def __init__(self, registry: Registry, project: str) -> None:
        self.registry = registry
        self.project = project

    def specs(self, kind: Kind, allow_cache: bool = False) -> Mapping[str, Mapping[str, Any]]:
        snapshot = self.registry.snapshot(allow_cache=allow_cache)
        return {
            name: record["spec"] for name, record in snapshot.records(self.project, kind).items()
        }

    def objects(
        self, kind: Kind, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[Any]:
        from_dict = _FROM_DICT[kind]
        objects = [from_dict(dict(spec)) for spec in self.specs(kind, allow_cache).values()]
        return [obj for obj in objects if _tags_match(obj, tags)]

    def get(self, kind: Kind, name: str, allow_cache: bool = False) -> Any:
        """The object named `name`; a `NotFoundError` naming the closest names otherwise."""
        specs = self.specs(kind, allow_cache)
        if name not in specs:
            label = kind.replace("_", " ")[:-1] if kind != "entities" else "entity"
            raise _NOT_FOUND[kind](
                f"{label} '{name}' does not exist in project '{self.project}'"
                f"{closest(name, list(specs))}"
            )
        return _FROM_DICT[kind](dict(specs[name]))

    def online_feature_views(self, allow_cache: bool = True) -> list[FeatureView]:
        """The views whose rows can live in the online store: batch, stream and label views."""
        return [
            *self.objects("feature_views", allow_cache),
            *self.objects("stream_feature_views", allow_cache),
            *self.objects("label_views", allow_cache),
        ]

    def online_feature_view(self, name: str) -> FeatureView:
        """A batch or stream view by name (from the cached snapshot)."""
        for view in self.online_feature_views(allow_cache=True):
            if view.name == name:
                return view
        # Raises, naming the closest batch views.
        found: FeatureView = self.get("feature_views", name, allow_cache=True)
        return found

    def online_views(self, allow_cache: bool = False) -> dict[str, OnlineView]:
        """Every online-capable view as the online store sees it."""
        return {v.name: OnlineView.of(v) for v in self.online_feature_views(allow_cache)}


class StoreContext:
    """A repo's configuration, registry, catalog and online store (created on first use)."""

    def __init__(self, config: RepoConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry if registry is not None else registry_from_config(config)
        self.catalog = Catalog(self.registry, config.project)
        self._online_store: OnlineStore | None = None

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def online_store(self) -> OnlineStore:
        if self._online_store is None:
            self._online_store = online_store_from_config(self.config)
        return self._online_store

    @property
    def open_online_store(self) -> OnlineStore | None:
        """The online store if one was created (closing must not create one)."""
        return self._online_store

    def replace_online_store(self, store: OnlineStore) -> OnlineStore:
        """Put `store` (typically a wrapper of the current one) in place of the online store;
        returns the one it replaces. Every later operation of this context uses `store`."""
        previous = self.online_store
        self._online_store = store
        return previous
