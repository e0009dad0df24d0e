"""The shutdown grace period: counted from the first SIGTERM (chained in front of the
server's own handler), and materialization jobs still running at its end are cancelled and
recorded as not done."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from repast import materialize as materialize_mod
from repast.materialize import MaterializationCancelled
from repast_server.app import ServerSettings, create_app
from repast_server.jobs import JobTracker
from repast_server.metrics import Metrics
from repast_server.shutdown import ShutdownClock
from server_helpers import run, server_store, write_feature_store_yaml

WAIT_SECONDS = 30.0  # bound for a failing run; a passing one never gets near it
PROFILE = {
    "start_ts": "2024-01-01T00:00:00",
    "end_ts": "2024-01-01T12:00:00",
    "feature_views": ["driver_profile"],
}


def test_the_clock_counts_from_the_first_signal_and_chains_the_old_handler() -> None:
    seen: list[int] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:
        seen.append(sig)

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        clock = ShutdownClock(25.0)
        assert clock.remaining() == 25.0  # no signal yet: all of it
        restore = clock.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]  # the server still hears it
        assert clock.signalled_at is not None
        assert clock.remaining() <= 25.0
        restore()
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)


def test_a_clock_past_its_grace_has_nothing_left() -> None:
    clock = ShutdownClock(1.0)
    clock.signalled_at = 0.0  # monotonic time zero: long ago
    assert clock.remaining() == 0.0


class Cancellable:
    """A stand-in for `materialize.materialize` that runs until its `cancel` is set, then
    stops as the real one does (`MaterializationCancelled`)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    def __call__(
        self,
        store: Any,
        start: datetime,
        end: datetime,
        views: Any,
        *args: Any,
        cancel: threading.Event | None = None,
        **kw: Any,
    ) -> None:
        assert cancel is not None
        self.started.set()
        if cancel.wait(WAIT_SECONDS):
            self.cancelled.set()
            raise MaterializationCancelled(f"materializing {views} was cancelled")


def test_jobs_outliving_the_grace_period_are_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"}, steps=False)
    store.online_store.close()
    write_feature_store_yaml(tmp_path, "golden", {"type": "sqlite", "path": "data/online.db"})
    job = Cancellable()
    monkeypatch.setattr(materialize_mod, "materialize", job)
    app = create_app(ServerSettings(repo_path=tmp_path, graceful_timeout=0.2))

    async def main() -> None:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post("/materialize?async=true", json=PROFILE)
                assert response.status_code == 202
            assert await asyncio.to_thread(job.started.wait, WAIT_SECONDS)
        finally:
            # The job never ends by itself: the shutdown ends it after its grace period.
            await asyncio.wait_for(lifespan.__aexit__(None, None, None), WAIT_SECONDS)
        assert job.cancelled.is_set()
        jobs: JobTracker = app.state.repast.jobs
        assert jobs.running_views() == []

    run(main)


def test_a_drain_that_times_out_cancels_only_what_it_can() -> None:
    release = threading.Event()
    cancel = threading.Event()
    tracker = JobTracker(Metrics(), shutdown_wait=0.05)

    async def main() -> None:
        stoppable = tracker.start(
            "/materialize", ["a"], lambda: cancel.wait(WAIT_SECONDS), background=True,
            cancel=cancel,
        )  # fmt: skip
        stubborn = tracker.start(
            "/materialize", ["b"], lambda: release.wait(WAIT_SECONDS), background=True
        )
        try:
            assert await tracker.drain() == ["a", "b"]
            assert cancel.is_set()
            await asyncio.wait_for(stoppable, WAIT_SECONDS)
        finally:
            release.set()
        await stubborn

    run(main)
