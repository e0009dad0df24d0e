"""`GET /health`: whether this worker can serve, as a load balancer needs to know it.

Pinging Redis is not enough: a worker whose read path is wedged (a stuck batch, a connection
waiting on a reply that never comes) still gets its PONG. So the probe is a read through the
server's own read path (the batcher, its pipelined connection, Redis) with a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from repast.online.base import OnlineView, ReadRequest
from repast_server.state import ServerState, server_state

__all__ = ["health"]


# A probe read answers in milliseconds; past this the read path is not serving.
_PROBE_SECONDS = 2.0
# An entity key no entity has (keys start with their key count): the probe reads nothing.
_PROBE_KEY = b"\xffrepast-health-probe"


async def _probe_read(state: ServerState, reader: Any) -> str | None:
    """None when a read through the server's own read path (the batcher, its connection,
    the store) completes within its deadline, else why not."""
    client_of = getattr(state.store.online_store, "async_client", None)
    if client_of is None:
        return None  # embedded stores (SQLite) have no server to lose
    view = next(iter(state.catalog().views.values()), None)
    timeout = min(_PROBE_SECONDS, state.settings.request_timeout_seconds or _PROBE_SECONDS)
    try:
        async with asyncio.timeout(timeout):
            if view is None:  # nothing applied yet: the connection is all there is to probe
                await client_of().ping()
                return None
            online_view = OnlineView.of(view)
            request = ReadRequest(online_view, [_PROBE_KEY], list(online_view.features[:1]))
            if getattr(reader, "holds_packed_rows", False):
                await reader.read_packed_async([request])
            else:
                await reader.read_async([request])
    except TimeoutError:
        return f"online store: a probe read did not complete within {timeout:g} s"
    except Exception as exc:
        return f"online store: {type(exc).__name__}: {exc}"
    return None


async def health(request: Request) -> Response:
    state = server_state(request)
    problems = []
    snapshot = state.snapshot()
    if not snapshot.exists:
        problems.append(f"registry: nothing stored at {snapshot.location} yet")
    reader = getattr(request.app.state, "batcher", None) or state.store.online_store
    problem = await _probe_read(state, reader)
    if problem:
        problems.append(problem)
    refresher = getattr(request.app.state, "refresher", None)
    refresh_error = getattr(refresher, "last_error", None)
    content = {
        "status": "unhealthy" if problems else "ok",
        "project": state.store.project,
        "registry_version": snapshot.version_id,
        "registry_age_seconds": round(state.registry_age(), 3),
        # A failed refresh keeps serving the last snapshot: reported, but still healthy.
        "registry_refresh_error": None if refresh_error is None else str(refresh_error),
        "problems": problems,
    }
    return JSONResponse(content, status_code=503 if problems else 200)
