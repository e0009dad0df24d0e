"""Mixed, realistic traffic for the feature server (locust).

Start a server on the benchmark data, then run locust against it:

    .venv/bin/python load-tests/bench_server.py --serve-only --port 6566 &
    locust -f load-tests/locustfile.py --headless -u 20 -r 5 -t 30s --host http://127.0.0.1:6566

The traffic: mostly single-entity reads of 50 features (a model scoring one request), some
10- and 100-entity reads (batch scoring, ranking), pushes of one fresh row, and a health probe.
Names follow `bench_server.py`'s repo (views `wide50`/`wide250`, push source `bench_push`,
10 000 drivers); override with REPAST_LOCUST_VIEW / REPAST_LOCUST_PUSH_SOURCE.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

from locust import FastHttpUser, between, task

DRIVERS = 10_000
VIEW = os.environ.get("REPAST_LOCUST_VIEW", "wide50")
PUSH_SOURCE = os.environ.get("REPAST_LOCUST_PUSH_SOURCE", "bench_push")
FEATURES = [f"{VIEW}:f{i}" for i in range(50)]


def _read(entities: int) -> dict[str, Any]:
    ids = random.sample(range(DRIVERS), entities)
    return {"entities": {"driver_id": ids}, "features": FEATURES}


class FeatureClient(FastHttpUser):
    wait_time = between(0.001, 0.01)

    @task(70)
    def one_entity(self) -> None:
        self.client.post("/get-online-features", json=_read(1), name="read 1x50")

    @task(15)
    def ten_entities(self) -> None:
        self.client.post("/get-online-features", json=_read(10), name="read 10x50")

    @task(5)
    def hundred_entities(self) -> None:
        self.client.post("/get-online-features", json=_read(100), name="read 100x50")

    @task(9)
    def push_one_row(self) -> None:
        df: dict[str, list[Any]] = {
            "driver_id": [random.randrange(DRIVERS)],
            "event_timestamp": [datetime.now(UTC).isoformat()],
        }
        for i in range(50):
            df[f"f{i}"] = [random.randrange(100) if i % 3 == 2 else random.random()]
        body = {"push_source_name": PUSH_SOURCE, "df": df, "to": "online"}
        self.client.post("/push", json=body, name="push 1 row")

    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="health")
