"""Every route of the feature server, in one literal list, and the hot endpoints whose POSTs
the fast path (fast_path.py) answers ahead of the middleware stack."""

from __future__ import annotations

from starlette.routing import Route

from repast_server import endpoints, health
from repast_server.fast_path import FastRoute

__all__ = ["FAST_ROUTES", "routes"]

FAST_ROUTES = {
    "/get-online-features": FastRoute(endpoints.get_online_features),
    "/push": FastRoute(endpoints.push, media_type=None),
    "/write-to-online-store": FastRoute(endpoints.write_to_online_store),
}

routes = [
    # Their Starlette routes stay: they answer other methods (405) and mounted apps.
    *(
        Route(path, fast.handle, methods=["POST"], name=fast.endpoint.__name__)
        for path, fast in FAST_ROUTES.items()
    ),
    Route("/materialize", endpoints.materialize, methods=["POST"]),
    Route("/materialize-incremental", endpoints.materialize_incremental, methods=["POST"]),
    Route("/health", health.health, methods=["GET"]),
    Route("/metrics", endpoints.metrics, methods=["GET"]),
    Route("/openapi.json", endpoints.openapi, methods=["GET"]),
]
