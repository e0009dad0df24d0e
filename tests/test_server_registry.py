"""The registry is re-read in the background: new definitions appear without a restart, and a
failing registry store never fails (or delays) a request; /health reports it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from repast import FeatureStore, FeatureView, Field
from repast.errors import RegistryError
from repast.types import Int32
from repast_server.app import create_app
from server_helpers import client_for, fresh_request, run, server_store


def _another_view(store: FeatureStore) -> FeatureView:
    hourly = store.get_feature_view("driver_hourly_stats")
    return FeatureView(
        name="late_view",
        entities=[store.get_entity("driver")],
        ttl=timedelta(0),
        schema=[Field(name="rating", dtype=Int32)],
        source=hourly.batch_source,
    )


def test_new_definitions_appear_after_the_refresh_interval(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    writer = FeatureStore(config=store.config)  # another process applying, in effect
    request = {"entities": {"driver_id": [1]}, "features": ["late_view:rating"]}

    async def main() -> None:
        async with client_for(create_app(store, registry_ttl_sec=0.1)) as client:
            before = await client.post("/get-online-features", json=request)
            assert before.status_code == 404
            await asyncio.to_thread(writer.apply, [_another_view(writer)])
            for _ in range(100):
                after = await client.post("/get-online-features", json=request)
                if after.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert after.status_code == 200, after.text

    run(main)


def test_a_failing_registry_store_never_fails_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    app = create_app(store, registry_ttl_sec=0.05)

    def broken() -> None:
        raise RegistryError("registry store unreachable")

    async def main() -> None:
        async with client_for(app) as client:
            monkeypatch.setattr(store.registry.store, "read", broken)
            await asyncio.sleep(0.3)  # several failed refreshes
            for _ in range(5):
                response = await client.post("/get-online-features", json=fresh_request([1]))
                assert response.status_code == 200
            health = (await client.get("/health")).json()
            assert health["status"] == "ok"
            assert "unreachable" in health["registry_refresh_error"]
            assert health["registry_age_seconds"] >= 0.2

    run(main)
