"""Prometheus metrics: requests and latency per endpoint, store read time, push rows,
errors, registry age; each app has its own collectors."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

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
