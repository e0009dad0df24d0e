"""Bearer-token auth: every endpoint but /health answers 401 without a valid token."""

from __future__ import annotations

from pathlib import Path

import pytest

from repast.config import FeatureServerConfig
from repast_server.app import create_app
from server_helpers import client_for, fresh_request, run, server_store

PATHS = [
    ("POST", "/get-online-features"),
    ("POST", "/push"),
    ("POST", "/write-to-online-store"),
    ("POST", "/materialize"),
    ("POST", "/materialize-incremental"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic c2VjcmV0"},
        {"Authorization": "secret-1"},
    ],
)
def test_every_endpoint_but_health_needs_a_valid_token(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(
        {"auth": {"type": "bearer", "tokens": ["secret-1", "secret-2"]}}
    )

    async def main() -> None:
        async with client_for(create_app(store), headers=headers) as client:
            for method, path in PATHS:
                response = await client.request(method, path, json={})
                assert response.status_code == 401, path
                assert response.json()["error"] == "Unauthorized"
                assert response.headers["www-authenticate"].startswith("Bearer")
            assert (await client.get("/health")).status_code == 200

    run(main)


def test_valid_tokens_pass(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(
        {"auth": {"type": "bearer", "tokens": ["secret-1", "secret-2"]}}
    )

    async def main() -> None:
        for token in ("secret-1", "secret-2"):
            headers = {"Authorization": f"Bearer {token}"}
            async with client_for(create_app(store), headers=headers) as client:
                response = await client.post("/get-online-features", json=fresh_request([1]))
                assert response.status_code == 200
                assert (await client.get("/metrics")).status_code == 200

    run(main)
