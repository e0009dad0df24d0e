"""Bearer-token auth: every endpoint but /health answers 401 without a valid token."""

from __future__ import annotations

from pathlib import Path

import pytest

from repast.config import FeatureServerConfig
from repast_server.app import create_app
from server_helpers import client_for, error_of, fresh_request, push_body, run, server_store

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
                assert error_of(response)["error"] == "Unauthorized"
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


def test_the_hot_endpoints_check_the_token_first(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(
        {"auth": {"type": "bearer", "tokens": ["secret-1"]}, "max_body_bytes": 500}
    )
    good = {"Authorization": "Bearer secret-1"}

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            missing = await client.post("/push", json=push_body([1], [2]))
            assert missing.status_code == 401
            assert error_of(missing) == {
                "module": "feast.errors",
                "class": "FeastPermissionError",
                "message": "missing `Authorization: Bearer <token>` header",
                "error": "Unauthorized",
                "detail": "missing `Authorization: Bearer <token>` header",
            }
            assert missing.headers.raw == [
                (b"content-length", str(len(missing.content)).encode()),
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="repast"'),
                (b"x-request-id", missing.headers["x-request-id"].encode()),
            ]
            wrong = await client.post(
                "/write-to-online-store", content=b"x" * 1000, headers={"Authorization": "x"}
            )
            # Before the body size: a client without a token learns nothing about limits.
            assert wrong.status_code == 401
            assert error_of(wrong)["detail"] == "invalid bearer token"
            assert (await client.get("/push")).status_code == 401
            assert (await client.get("/push", headers=good)).status_code == 405
            oversize = await client.post("/push", content=b"x" * 1000, headers=good)
            assert oversize.status_code == 413
            pushed = await client.post("/push", json=push_body([1], [2]), headers=good)
            assert pushed.status_code == 200
            write = {"feature_view_name": "hourly_fresh", "df": push_body([1], [3])["df"]}
            written = await client.post("/write-to-online-store", json=write, headers=good)
            assert written.status_code == 200

    run(main)
