"""Every route of the feature server, in one literal list."""

from __future__ import annotations

from starlette.routing import Route

from repast_server import endpoints

__all__ = ["routes"]

routes = [
    Route("/get-online-features", endpoints.get_online_features, methods=["POST"]),
    Route("/push", endpoints.push, methods=["POST"]),
    Route("/write-to-online-store", endpoints.write_to_online_store, methods=["POST"]),
    Route("/materialize", endpoints.materialize, methods=["POST"]),
    Route("/materialize-incremental", endpoints.materialize_incremental, methods=["POST"]),
    Route("/health", endpoints.health, methods=["GET"]),
    Route("/metrics", endpoints.metrics, methods=["GET"]),
    Route("/openapi.json", endpoints.openapi, methods=["GET"]),
]
