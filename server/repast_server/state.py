"""What the handlers share, created in the app's lifespan: the `FeatureStore`, the metrics,
the limits, the running materialization jobs, and a catalog of registry objects rebuilt only
when the registry snapshot changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from repast.batch_feature_view import feature_view_from_dict
from repast.config import FeatureServerConfig
from repast.data_source import PushSource
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.label_view import LabelView
from repast.registry import RegistrySnapshot
from repast.stream_feature_view import StreamFeatureView
from repast_server.jobs import JobTracker
from repast_server.metrics import Metrics

if TYPE_CHECKING:
    from starlette.requests import Request

    from repast.feature_store import FeatureStore

__all__ = ["READ_SLOTS", "Catalog", "ServerState", "server_state"]

# Concurrent store reads per worker; more connections than this only add Redis-side queueing.
READ_SLOTS = 64


@dataclass
class Catalog:
    """Definitions of one registry snapshot, parsed once: the hot path only does dict look-ups."""

    version_id: str
    views: dict[str, FeatureView]
    services: dict[str, FeatureService]
    push_targets: dict[str, list[FeatureView]]
    push_sources: list[str]
    odfv_sources: dict[str, list[str]]
    """The feature views (names to use) each on-demand view reads, from the registry record
    alone (the udf is not loaded)."""

    @classmethod
    def of(cls, snapshot: RegistrySnapshot, project: str) -> Catalog:
        views: dict[str, FeatureView] = {}
        for name, record in snapshot.records(project, "feature_views").items():
            views[name] = feature_view_from_dict(dict(record.spec))
        for name, record in snapshot.records(project, "stream_feature_views").items():
            views[name] = StreamFeatureView.from_dict(dict(record.spec))
        for name, record in snapshot.records(project, "label_views").items():
            views[name] = LabelView.from_dict(dict(record.spec))
        services = {
            name: FeatureService.from_dict(dict(record.spec))
            for name, record in snapshot.records(project, "feature_services").items()
        }
        targets: dict[str, list[FeatureView]] = {}
        for view in views.values():
            source = view.stream_source
            if isinstance(source, PushSource):
                targets.setdefault(source.name, []).append(view)
        sources = [
            name
            for name, record in snapshot.records(project, "data_sources").items()
            if record.spec.get("type") == PushSource.type_name
        ]
        odfv_sources = {
            name: [
                p.get("name_alias") or p["name"]
                for p in record.spec.get("source_feature_view_projections", [])
            ]
            for name, record in snapshot.records(project, "on_demand_feature_views").items()
        }
        return cls(
            version_id=snapshot.version_id,
            views=views,
            services=services,
            push_targets=targets,
            push_sources=sorted({*sources, *targets}),
            odfv_sources=odfv_sources,
        )

    def views_read(self, features: Sequence[str] | FeatureService) -> list[str]:
        """The feature views a read of `features` reads (on-demand views stand for their
        sources), each once, in first-appearance order, as Feast's
        `metadata.feature_view_metadata` lists them."""
        if isinstance(features, FeatureService):
            used = [p.name_to_use() for p in features.feature_view_projections]
            names = [p.name for p in features.feature_view_projections]
        else:
            names = used = [ref.split(":", 1)[0] for ref in features]
        out: dict[str, None] = {}
        for name, alias in zip(names, used, strict=True):
            for view in self.odfv_sources.get(name, [alias]):
                out.setdefault(view, None)
        return list(out)


@dataclass
class ServerState:
    store: FeatureStore
    settings: FeatureServerConfig
    metrics: Metrics
    started_at: float = field(default_factory=time.monotonic)
    read_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(READ_SLOTS))
    """Bounds concurrent online-store reads: redis-py's asyncio pool fails ("Too many
    connections") instead of waiting when more requests than its connections arrive."""
    jobs: JobTracker = field(init=False)
    """Materialization jobs of this server (one per app: each app has its own lifespan)."""
    _catalog: Catalog | None = None

    def __post_init__(self) -> None:
        self.jobs = JobTracker(self.metrics)

    def snapshot(self) -> RegistrySnapshot:
        # The cache never expires inside the server (the lifespan set its TTL to 0): this is
        # a memory read, and the RegistryRefresher task replaces the snapshot in the background.
        return self.store.registry.snapshot(allow_cache=True)

    def catalog(self) -> Catalog:
        snapshot = self.snapshot()
        catalog = self._catalog
        if catalog is None or catalog.version_id != snapshot.version_id:
            catalog = self._catalog = Catalog.of(snapshot, self.store.project)
        return catalog

    def registry_age(self) -> float:
        """Seconds since the served snapshot was read (`loaded_at` is `time.monotonic()`)."""
        return time.monotonic() - self.snapshot().loaded_at


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.repast
    return state
