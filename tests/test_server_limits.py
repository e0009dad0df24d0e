"""Limits: body size (413, by Content-Length or while a chunked body streams), entities per
request (413), request time (504)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from repast import FeatureStore
from repast.config import FeatureServerConfig
from repast_server.app import create_app
from server_helpers import client_for, error_of, fresh_request, push_body, run, server_store


def _store(tmp_path: Path, **settings: Any) -> FeatureStore:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(settings)
    return store


def test_oversize_bodies_are_413(tmp_path: Path) -> None:
    store = _store(tmp_path, max_body_bytes=200)
    big = orjson.dumps(fresh_request(list(range(100))))
    assert len(big) > 200

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 50):
            yield big[start : start + 50]

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            response = await client.post("/get-online-features", content=big)
            assert response.status_code == 413
            assert "max_body_bytes (200 bytes)" in error_of(response)["detail"]
            streamed = await client.post("/push", content=chunks())
            assert streamed.status_code == 413
            assert error_of(streamed)["error"] == "PayloadTooLarge"
            small = await client.post("/get-online-features", json=fresh_request([1]))
            assert small.status_code == 200

    run(main)


def test_too_many_entities_is_413_and_writes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path, max_entities_per_request=3)

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            response = await client.post("/get-online-features", json=fresh_request([1, 2, 3, 4]))
            assert response.status_code == 413
            assert "max_entities_per_request is 3" in error_of(response)["detail"]
            push = await client.post("/push", json=push_body([1, 2, 3, 4], [1, 2, 3, 4]))
            assert push.status_code == 413
            read = await client.post("/get-online-features", json=fresh_request([1, 2, 3]))
            assert read.status_code == 200
            assert read.json()["results"][1]["statuses"] == ["NOT_FOUND"] * 3

    run(main)


def test_slow_requests_time_out_with_504(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path, request_timeout_seconds=0.05)
    # The server reads through the packed path when it can, else the general one: slow both.
    for name in ("read_online_packed_async", "get_online_features_async"):
        original = getattr(store, name)

        async def slow(*args: Any, original: Any = original, **kwargs: Any) -> Any:
            await asyncio.sleep(1)
            return await original(*args, **kwargs)

        monkeypatch.setattr(store, name, slow)

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            response = await client.post("/get-online-features", json=fresh_request([1]))
            assert response.status_code == 504
            assert error_of(response)["error"] == "RequestTimeout"
            assert (await client.get("/health")).status_code == 200

    run(main)


def test_a_chunked_oversize_push_is_413_and_writes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path, max_body_bytes=1000)
    body = orjson.dumps(push_body(list(range(60)), list(range(60))))
    assert len(body) > 2000
    chunks_read = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for start in range(0, len(body), 100):
            chunks_read += 1
            yield body[start : start + 100]

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            for path, content in (("/push", body), ("/write-to-online-store", body)):
                response = await client.post(path, content=content)
                assert response.status_code == 413
                assert error_of(response)["error"] == "PayloadTooLarge"
            streamed = await client.post("/push", content=chunks())
            assert streamed.status_code == 413
            assert "max_body_bytes (1000 bytes)" in error_of(streamed)["detail"]
            assert streamed.headers["content-type"] == "application/json"
            # Stopped at the first chunk past the limit, not read to the end.
            assert chunks_read == 11
            read = await client.post("/get-online-features", json=fresh_request([0, 1, 59]))
            assert read.json()["results"][1]["statuses"] == ["NOT_FOUND"] * 3
            # A body of exactly the limit is within it.
            small = orjson.dumps(push_body([1], [5]))
            padded = small[:-1] + b" " * (1000 - len(small)) + b"}"
            assert len(padded) == 1000
            assert (await client.post("/push", content=padded)).status_code == 200

    run(main)


def test_a_stalled_push_times_out_with_504(tmp_path: Path) -> None:
    store = _store(tmp_path, request_timeout_seconds=0.05)
    body = orjson.dumps(push_body([1], [5]))

    async def stalled() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(1)
        yield body[10:]

    async def main() -> None:
        async with client_for(create_app(store)) as client:
            response = await client.post("/push", content=stalled())
            assert response.status_code == 504
            detail = "request took longer than feature_server.request_timeout_seconds (0.05 s)"
            assert error_of(response) == {
                "module": "feast.errors",
                "class": "FeastError",
                "message": detail,
                "error": "RequestTimeout",
                "detail": detail,
                "request_id": response.headers["x-request-id"],
            }
            metrics = (await client.get("/metrics")).text
            assert (
                'repast_requests_total{endpoint="/push",method="POST",status="504"} 1.0' in metrics
            )
            # The timeout is per request: the next push has its own.
            assert (await client.post("/push", content=body)).status_code == 200
            read = await client.post("/get-online-features", json=fresh_request([1]))
            assert read.json()["results"][1]["values"] == [5]

    run(main)
