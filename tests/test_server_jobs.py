"""Materialization jobs on the feature server: `?async=true` answers 202 and the rows arrive,
a view held by a running job (sync or async) answers 409 unless `force=true`, a bad async
request fails before anything starts, a failing job is logged, counted and frees its views,
and shutdown waits for running jobs (bounded)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from repast import FeatureStore
from repast import materialize as materialize_mod
from repast.context import StoreContext
from repast_server.app import create_app
from repast_server.jobs import JobTracker
from repast_server.metrics import Metrics
from repast_server.state import ServerState
from server_helpers import client_for, error_of, run, server_store

PROFILE = {
    "start_ts": "2024-01-01T00:00:00",
    "end_ts": "2024-01-01T12:00:00",
    "feature_views": ["driver_profile"],
}
HOURLY = {**PROFILE, "feature_views": ["driver_hourly_stats"]}
NAME_REQUEST = {"entities": {"driver_id": [1001]}, "features": ["driver_profile:name"]}
WAIT_SECONDS = 30.0  # generous bound for polling; a passing run never gets near it


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    fs = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"}, steps=False)
    yield fs
    fs.online_store.close()


class Blocking:
    """A stand-in for `materialize.materialize` that holds its job until `release` is set, so a
    test controls exactly when a job ends; `calls` records the views of each job."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished: list[list[str]] = []
        self.calls: list[list[str]] = []
        self.error: Exception | None = None

    def __call__(
        self, store: StoreContext, start: datetime, end: datetime, views: Any, *args: Any, **kw: Any
    ) -> None:
        self.calls.append(list(views))
        self.started.set()
        # Bounded so a failing test cannot hang the run; tests always set `release`.
        self.release.wait(WAIT_SECONDS)
        if self.error is not None:
            raise self.error
        self.finished.append(list(views))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Blocking:
    """A `Blocking` stand-in installed as `materialize.materialize` for the test."""
    blocking = Blocking()
    monkeypatch.setattr(materialize_mod, "materialize", blocking)
    return blocking


def _jobs(app: Any) -> JobTracker:
    state: ServerState = app.state.repast
    return state.jobs


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {WAIT_SECONDS} s waiting for {what}")
        await asyncio.sleep(0.01)


async def _idle(app: Any) -> None:
    async def idle() -> bool:
        return _jobs(app).running_jobs() == 0

    await _until(idle, "the materialization jobs to end")


async def _metrics(
    client: httpx.AsyncClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await client.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _jobs_total(endpoint: str, outcome: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("repast_materialize_jobs_total", (("endpoint", endpoint), ("outcome", outcome)))


@pytest.mark.usefixtures("noon")
def test_async_materialize_answers_202_and_the_rows_arrive(store: FeatureStore) -> None:
    app = create_app(store)

    async def main() -> None:
        async with client_for(app) as client:
            before = (await client.post("/get-online-features", json=NAME_REQUEST)).json()
            assert before["results"][1]["statuses"] == ["NOT_FOUND"]
            response = await client.post("/materialize?async=true", json=PROFILE)
            assert response.status_code == 202
            assert response.json() == {"status": "accepted", "feature_views": ["driver_profile"]}

            async def arrived() -> bool:
                got = (await client.post("/get-online-features", json=NAME_REQUEST)).json()
                return bool(got["results"][1]["values"] == ["Ann B."])

            await _until(arrived, "the materialized row")
            await _idle(app)
            incremental = {"end_ts": datetime.now(UTC).isoformat(), "feature_views": None}
            response = await client.post("/materialize-incremental?async=TRUE", json=incremental)
            assert response.status_code == 202
            everything = materialize_mod.select_views(store.context, None)
            assert response.json()["feature_views"] == [v.name for v in everything]
            await _idle(app)
            samples = await _metrics(client)
            assert samples[_jobs_total("/materialize", "success")] == 1
            assert samples[_jobs_total("/materialize-incremental", "success")] == 1
            assert samples[("repast_materialize_jobs_running", ())] == 0

    run(main)


def test_a_running_job_holds_its_views_until_it_ends(store: FeatureStore, fake: Blocking) -> None:
    app = create_app(store)

    async def main() -> None:
        async with client_for(app) as client:
            try:
                first = await client.post("/materialize?async=true", json=PROFILE)
                assert first.status_code == 202
                assert await asyncio.to_thread(fake.started.wait, WAIT_SECONDS)
                assert (await _metrics(client))[("repast_materialize_jobs_running", ())] == 1
                # A second async request, a sync one, and an incremental one over every view
                # all find driver_profile held.
                again = await client.post("/materialize?async=true", json=PROFILE)
                assert again.status_code == 409
                body = again.json()
                assert body["feature_views"] == ["driver_profile"]
                assert "driver_profile" in body["error"]
                sync = await client.post("/materialize", json=PROFILE)
                assert sync.status_code == 409
                assert sync.json()["feature_views"] == ["driver_profile"]
                every = {"end_ts": "2024-01-02T00:00:00", "feature_views": None}
                incremental = await client.post("/materialize-incremental?async=0", json=every)
                assert incremental.status_code == 409
                assert incremental.json()["feature_views"] == ["driver_profile"]
                # Other views are free; force=true starts a second job on the held one.
                other = await client.post("/materialize?async=1", json=HOURLY)
                assert other.status_code == 202
                forced = await client.post("/materialize?async=true&force=True", json=PROFILE)
                assert forced.status_code == 202
                assert forced.json() == {"status": "accepted", "feature_views": ["driver_profile"]}
                for query in ("async=maybe", "async=true&force=yes", "async="):
                    bad = await client.post(f"/materialize?{query}", json=PROFILE)
                    assert bad.status_code == 400, query
                    name = query.rsplit("&", 1)[-1].split("=")[0]
                    assert f"query parameter '{name}'" in error_of(bad)["detail"]
                assert sorted(_jobs(app).running_views()) == [
                    "driver_hourly_stats",
                    "driver_profile",
                ]
            finally:
                fake.release.set()
            await _idle(app)
            assert _jobs(app).running_views() == []
            # The views are free again: a sync request runs and answers 200 null.
            done = await client.post("/materialize", json=PROFILE)
            assert done.status_code == 200
            assert done.json() is None
            samples = await _metrics(client)
        assert sorted(fake.calls) == [
            ["driver_hourly_stats"],
            ["driver_profile"],
            ["driver_profile"],
            ["driver_profile"],
        ]
        assert sorted(fake.finished) == sorted(fake.calls)
        assert samples[_jobs_total("/materialize", "success")] == 4
        conflict = (("endpoint", "/materialize"), ("error", "MaterializationInProgress"))
        assert samples[("repast_errors_total", conflict)] == 2

    run(main)


def test_a_bad_async_request_fails_and_starts_nothing(store: FeatureStore, fake: Blocking) -> None:
    fake.release.set()
    app = create_app(store)
    bad_bodies: list[tuple[str, dict[str, Any], int, str]] = [
        ("/materialize", {**PROFILE, "start_ts": "2024-01-02T00:00:00"}, 400, "must be before"),
        ("/materialize", {**PROFILE, "end_ts": "noon"}, 400, "'noon' is not an ISO 8601"),
        ("/materialize", {**PROFILE, "feature_views": ["driver_profil"]}, 404, "driver_profile"),
        ("/materialize", {**PROFILE, "feature_views": "driver_profile"}, 422, "feature_views"),
        ("/materialize-incremental", {"feature_views": ["driver_profile"]}, 422, "end_ts"),
    ]

    async def main() -> None:
        async with client_for(app) as client:
            for path, body, status, detail in bad_bodies:
                response = await client.post(f"{path}?async=true", json=body)
                assert response.status_code == status, (path, body, response.text)
                assert detail in error_of(response)["detail"]
                assert _jobs(app).running_jobs() == 0
            samples = await _metrics(client)
        assert fake.calls == []
        assert not any(name == "repast_materialize_jobs_total" for name, _ in samples)

    run(main)


def test_a_failing_job_is_logged_counted_and_frees_its_views(
    store: FeatureStore, fake: Blocking, caplog: pytest.LogCaptureFixture
) -> None:
    fake.error = RuntimeError("the offline store went away")
    fake.release.set()
    app = create_app(store)

    async def main() -> None:
        async with client_for(app) as client:
            response = await client.post("/materialize?async=true", json=PROFILE)
            assert response.status_code == 202
            await _idle(app)
            assert _jobs(app).running_views() == []
            samples = await _metrics(client)
            assert samples[_jobs_total("/materialize", "error")] == 1
            assert samples[("repast_materialize_jobs_running", ())] == 0
            # A failing sync job answers with its error, and is counted too.
            fake.error = ValueError("no rows in range")
            sync = await client.post("/materialize", json=PROFILE)
            assert sync.status_code == 400
            assert error_of(sync)["detail"] == "no rows in range"
            # The view is free: a job that works runs.
            fake.error = None
            assert (await client.post("/materialize", json=PROFILE)).status_code == 200
            samples = await _metrics(client)
        assert samples[_jobs_total("/materialize", "error")] == 2
        assert samples[_jobs_total("/materialize", "success")] == 1
        failures = [r for r in caplog.records if "the offline store went away" in r.getMessage()]
        assert len(failures) == 1
        assert "driver_profile" in failures[0].getMessage()
        assert failures[0].exc_info is not None

    run(main)


def test_shutdown_waits_for_a_running_job(store: FeatureStore, fake: Blocking) -> None:
    app = create_app(store)

    async def main() -> None:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        shutdown: asyncio.Task[Any] | None = None
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post("/materialize?async=true", json=PROFILE)
                assert response.status_code == 202
            assert await asyncio.to_thread(fake.started.wait, WAIT_SECONDS)
            shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None))
            await asyncio.sleep(0.2)
            # The job cannot end before `release`: shutdown must still be waiting for it.
            assert not shutdown.done()
            assert fake.finished == []
        finally:
            fake.release.set()
            if shutdown is None:
                await lifespan.__aexit__(None, None, None)
        assert shutdown is not None
        await asyncio.wait_for(shutdown, WAIT_SECONDS)
        assert fake.finished == [["driver_profile"]]

    run(main)


def test_the_shutdown_wait_is_bounded() -> None:
    release = threading.Event()
    tracker = JobTracker(Metrics(), shutdown_wait=0.05)

    async def main() -> None:
        task = tracker.start(
            "/materialize", ["v"], lambda: release.wait(WAIT_SECONDS), background=True
        )
        try:
            # The job is blocked until `release`: the drain gives up and names its view.
            assert await tracker.drain() == ["v"]
        finally:
            release.set()
        await task
        await asyncio.sleep(0)  # the done callback releases the view
        assert tracker.running_views() == []
        assert await tracker.drain() == []

    run(main)
