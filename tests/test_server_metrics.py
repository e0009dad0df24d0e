"""Prometheus metrics: requests and latency per endpoint, store read time, push rows,
errors, registry age; each app has its own collectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from repast.config import FeatureServerConfig
from server_helpers import client_for, fresh_request, push_body, run, server_store


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_happened(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)

    async def main() -> None:
        async with client_for(store) as client:
            await client.post("/push", json=push_body([1, 2, 3], [1, 2, 3]))
            for _ in range(2):
                await client.post("/get-online-features", json=fresh_request([1, 2]))
            await client.post("/get-online-features", json={"entities": {}})
            await client.get("/no-such-path")
            text = (await client.get("/metrics")).text
        samples = _samples(text)
        read = (("endpoint", "/get-online-features"), ("method", "POST"), ("status", "200"))
        assert samples[("repast_requests_total", read)] == 2
        bad = (("endpoint", "/get-online-features"), ("method", "POST"), ("status", "400"))
        assert samples[("repast_requests_total", bad)] == 1
        other = (("endpoint", "other"), ("method", "GET"), ("status", "404"))
        assert samples[("repast_requests_total", other)] == 1
        latency = (("endpoint", "/get-online-features"),)
        assert samples[("repast_request_duration_seconds_count", latency)] == 3
        assert samples[("repast_online_read_seconds_count", ())] == 2
        assert samples[("repast_online_entities_total", ())] == 4
        assert samples[("repast_push_rows_total", (("endpoint", "/push"),))] == 3
        error = (("endpoint", "/get-online-features"), ("error", "BadRequest"))
        assert samples[("repast_errors_total", error)] == 1
        assert 0 <= samples[("repast_registry_age_seconds", ())] < 60
        assert samples[("repast_requests_in_flight", ())] == 1  # the /metrics request itself

    run(main)


def test_metrics_count_the_write_endpoints_and_their_errors(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate({"max_body_bytes": 2000})
    write = {"feature_view_name": "hourly_fresh", "df": push_body([1], [2])["df"]}
    big = orjson.dumps(push_body(list(range(100)), list(range(100))))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    async def main() -> None:
        async with client_for(store) as client:
            await client.post("/push", json=push_body([1, 2], [1, 2]))
            await client.post("/push", json={**push_body([1], [1]), "push_source_name": "no"})
            await client.post("/push", content=chunks())
            await client.post("/write-to-online-store", json=write)
            await client.post("/write-to-online-store", json={**write, "feature_view_name": "x"})
            await client.post("/write-to-online-store", content=b"{")
            await client.get("/push")
            text = (await client.get("/metrics")).text
        samples = _samples(text)

        def requests(endpoint: str, status: int, method: str = "POST") -> float:
            labels = (("endpoint", endpoint), ("method", method), ("status", str(status)))
            return samples.get(("repast_requests_total", labels), 0)

        def errors(endpoint: str, kind: str) -> float:
            return samples.get(
                ("repast_errors_total", (("endpoint", endpoint), ("error", kind))), 0
            )

        assert [requests("/push", s) for s in (200, 413, 422)] == [1, 1, 1]
        assert requests("/push", 405, "GET") == 1
        assert [requests("/write-to-online-store", s) for s in (200, 400, 404)] == [1, 1, 1]
        assert errors("/push", "PushSourceNotFoundError") == 1
        assert errors("/push", "PayloadTooLarge") == 1
        assert errors("/push", "HTTPException") == 1
        assert errors("/write-to-online-store", "FeatureViewNotFoundError") == 1
        assert errors("/write-to-online-store", "BadRequest") == 1
        for endpoint, count in (("/push", 4), ("/write-to-online-store", 3)):
            latency = (("endpoint", endpoint),)
            assert samples[("repast_request_duration_seconds_count", latency)] == count
        assert samples[("repast_push_rows_total", (("endpoint", "/push"),))] == 2
        assert samples[("repast_push_rows_total", (("endpoint", "/write-to-online-store"),))] == 1
        assert samples[("repast_requests_in_flight", ())] == 1  # the /metrics request itself

    run(main)


def test_refusals_before_the_handler_are_counted_as_errors(tmp_path: Path) -> None:
    # 401 (auth), 413 from Content-Length and 504 (a stalled body) are answered before any
    # handler runs, on the fast path (/push) and through the middleware (/materialize).
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(
        {"max_body_bytes": 2000, "request_timeout_seconds": 0.05, "auth": {"tokens": ["t"]}}
    )
    token = {"Authorization": "Bearer t"}
    big = orjson.dumps(push_body(list(range(100)), list(range(100))))

    async def stalled() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(1)

    async def main() -> None:
        async with client_for(store) as client:
            for path in ("/push", "/materialize"):
                assert (await client.post(path, json={})).status_code == 401
                response = await client.post(path, content=big, headers=token)
                assert response.status_code == 413
            assert (await client.post("/push", content=stalled(), headers=token)).status_code == 504
            text = (await client.get("/metrics", headers=token)).text
        samples = _samples(text)

        def errors(endpoint: str, kind: str) -> float:
            labels = (("endpoint", endpoint), ("error", kind))
            return samples.get(("repast_errors_total", labels), 0)

        for path in ("/push", "/materialize"):
            assert errors(path, "Unauthorized") == 1
            assert errors(path, "PayloadTooLarge") == 1
        assert errors("/push", "RequestTimeout") == 1

    run(main)
