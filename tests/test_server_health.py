"""`GET /health` probes a read through the server's own read path: 503 with the reason when
it cannot complete within its deadline, though Redis itself still answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from repast_server.app import create_app
from server_helpers import client_for, redis_config, run, server_store
from services import RedisServer


def test_health_is_503_when_a_probe_read_cannot_complete(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    # Issue 13: a wedged read path answered /health 200, so traffic kept coming.
    fs = server_store(tmp_path, redis_config(redis_clean), steps=False)
    app = create_app(fs)

    async def wedged(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    async def main() -> None:
        async with client_for(app) as client:
            assert (await client.get("/health")).status_code == 200
            batcher = app.state.batcher
            # Redis still answers PING; only reads through the server's read path hang.
            for name in ("read_packed_async", "read_async"):
                setattr(batcher.store, name, wedged)
            response = await asyncio.wait_for(client.get("/health"), 30)
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "unhealthy"
            assert body["problems"] == ["online store: a probe read did not complete within 2 s"]

    run(main)
    fs.online_store.close()
