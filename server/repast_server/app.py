"""`create_app(store_or_settings) -> Starlette`: the feature server as an ASGI app.

The hot endpoints' POSTs are answered by the fast path (fast_path.py) before the middleware
stack; every other request goes through Starlette's middleware and routes.

The lifespan opens what the handlers share (the `FeatureStore` with its online store clients,
the metrics) and starts the registry refresher; at exit it waits for running materialization
jobs (bounded) before closing the store. Nothing lives in module globals, so several apps can
run in one process (as the tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from repast.config import FeatureServerConfig, RepoConfig, load_repo_config
from repast.feature_store import FeatureStore
from repast.registry import RegistryRefresher
from repast_server.batching import STUCK_READ_SECONDS, batch_reads
from repast_server.errors import exception_handlers
from repast_server.fast_path import FastPath
from repast_server.gates import Gates
from repast_server.metrics import Metrics
from repast_server.routes import FAST_ROUTES, routes
from repast_server.shutdown import ShutdownClock
from repast_server.state import ServerState

__all__ = ["ServerSettings", "create_app"]

# Reads and writes get the request timeout; materialization is a long job by nature.
_TIMED_PATHS = frozenset(FAST_ROUTES)


@dataclass(frozen=True)
class ServerSettings:
    """Where the feature repo is and how often to re-read the registry (`repast serve`)."""

    repo_path: Path = Path()
    fs_yaml_file: Path | None = None
    registry_ttl_sec: float = 60.0
    graceful_timeout: float | None = None
    """Seconds from SIGTERM for in-flight requests and then materialization jobs; jobs still
    running at the end are cancelled (not recorded). None: jobs get `SHUTDOWN_WAIT_SECONDS`."""

    def load_config(self) -> RepoConfig:
        return load_repo_config(Path(self.repo_path), self.fs_yaml_file)


class _FeatureServer(Starlette):
    """Starlette, with the requests `fast` takes answered before the middleware stack."""

    def __init__(self, fast: FastPath, **options: Any) -> None:
        super().__init__(**options)
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.fast.route(scope)
        if route is not None:
            await self.fast.serve(route, scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        answered = False

        async def tracking_send(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True

        try:
            await super().__call__(scope, receive, tracking_send)
        except Exception:
            # Starlette's ServerErrorMiddleware answered the 500 (logged with its request id by
            # `handle_exception`), then re-raised: a whole answer leaves the connection good
            # for the client's next request, so it stops here.
            if not answered:
                raise


def create_app(
    store_or_settings: FeatureStore | ServerSettings, registry_ttl_sec: float | None = None
) -> Starlette:
    """The app for an open `FeatureStore`, or for a repo described by `ServerSettings`.

    The configuration is read here (the middleware needs `feature_server` settings); the
    store itself, with its connections, is opened in the lifespan.
    """
    grace = None
    if isinstance(store_or_settings, FeatureStore):
        given: FeatureStore | None = store_or_settings
        config = store_or_settings.config
        ttl = registry_ttl_sec if registry_ttl_sec is not None else 60.0
    else:
        given = None
        grace = store_or_settings.graceful_timeout
        config = store_or_settings.load_config()
        ttl = (
            registry_ttl_sec if registry_ttl_sec is not None else store_or_settings.registry_ttl_sec
        )
    settings = config.feature_server
    metrics = Metrics()
    gates = Gates.of(settings, metrics, _TIMED_PATHS)
    fast = FastPath(FAST_ROUTES, gates)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = given if given is not None else FeatureStore(config=config)
        registry = store.registry
        # Inside the server the snapshot never expires on read: the refresher task re-reads
        # the registry in a worker thread every `ttl` seconds, so a request never waits on
        # registry I/O and a failed refresh keeps serving the last good snapshot.
        registry.cache_ttl_seconds = 0
        await asyncio.to_thread(registry.refresh)
        state = ServerState(store=store, settings=settings, metrics=metrics)
        metrics.registry_age.set_function(state.registry_age)
        app.state.repast = state
        app.state.metrics = metrics
        fast.state = state
        clock = None if grace is None else ShutdownClock(grace)
        restore_signals = None if clock is None else clock.install()
        try:
            with batch_reads(store, _stuck_read_seconds(settings)) as batcher:
                app.state.batcher = batcher
                async with RegistryRefresher(registry, ttl) as refresher:
                    app.state.refresher = refresher
                    # Everything loaded so far (modules, the registry snapshot, the store)
                    # lives as long as the server: keep it out of the collector's full
                    # passes, which otherwise stall every request in flight for milliseconds.
                    gc.collect()
                    gc.freeze()
                    try:
                        yield
                    finally:
                        # Materialization jobs run in threads: wait (bounded, by what is left
                        # of the grace period) before closing the store they write to, so a
                        # job answered 202 completes its writes; past it they are cancelled.
                        await state.jobs.drain(None if clock is None else clock.remaining())
        finally:
            if restore_signals is not None:
                restore_signals()
            await _close_async_clients(store)
            if given is None:
                await asyncio.to_thread(_close, store)

    return _FeatureServer(
        fast,
        routes=routes,
        middleware=gates.middleware(),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


def _stuck_read_seconds(settings: FeatureServerConfig) -> float:
    # A stuck batch fails its requests (503) before their own deadline (504) would.
    timeout = settings.request_timeout_seconds
    return STUCK_READ_SECONDS if timeout is None else min(STUCK_READ_SECONDS, timeout * 0.8)


async def _close_async_clients(store: FeatureStore) -> None:
    # The asyncio Redis connections belong to this app's event loop: close them with it.
    close_async = getattr(store.context.open_online_store, "close_async", None)
    if close_async is not None:
        with contextlib.suppress(Exception):
            await close_async()


def _close(store: FeatureStore) -> None:
    online = store.context.open_online_store
    if online is not None:
        online.close()
    store.registry.close()
