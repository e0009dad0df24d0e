"""The hot endpoints (`POST /get-online-features`, `/push`, `/write-to-online-store`), answered
in one coroutine ahead of Starlette's middleware stack.

Through Starlette a request passes about ten layers (the error middleware, metrics, auth, the
body limit, the timeout, the exception middleware, the router, the route, `request_response`),
each an `async` call with closures around `send` or `receive`, plus a `Request` and a
`Response` object: tens of microseconds a request, a large share of a one-entity read's CPU.
`FastPath.serve` does the same work in one straight line, with the pieces the middleware uses
(`BearerAuth`, `declared_too_large`, `check_received`, `timeout_response`, `error_answer`,
`Metrics.record`), so answers, headers and metrics are those the Starlette stack gives.
Every other request (other methods or paths, a `root_path`, the lifespan) goes to Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from repast_server.errors import HANDLED, error_answer, send_refusal
from repast_server.gates import Gates
from repast_server.limits import check_received, timeout_response
from repast_server.state import ServerState, server_state

__all__ = ["Endpoint", "FastPath", "FastRoute", "read_body"]

Endpoint = Callable[[ServerState, bytes], Awaitable[bytes]]

# `asyncio.timeout(None)` costs ~2 us a request; this costs ~0.3.
_NO_TIMEOUT = contextlib.nullcontext()


class FastRoute:
    """A POST endpoint, `endpoint(state, body) -> response body`, whose answers carry
    `media_type` (None: no content-type, as Starlette's `Response(b"")`)."""

    __slots__ = ("_content_type", "endpoint", "media_type")

    def __init__(self, endpoint: Endpoint, media_type: str | None = "application/json") -> None:
        self.endpoint = endpoint
        self.media_type = media_type
        self._content_type = None if media_type is None else media_type.encode("latin-1")

    def headers(self, body: bytes) -> list[tuple[bytes, bytes]]:
        """What Starlette's `Response(body, media_type=...)` sends (`test_server_fast_path`
        compares them)."""
        headers = [(b"content-length", str(len(body)).encode("latin-1"))]
        if self._content_type is not None:
            headers.append((b"content-type", self._content_type))
        return headers

    async def handle(self, request: Request) -> Response:
        """The endpoint as a Starlette handler, for the POSTs the fast path leaves to the
        router (a request under a `root_path`)."""
        body = await self.endpoint(server_state(request), await request.body())
        return Response(body, media_type=self.media_type)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, read as Starlette's `Request.body()` reads it, and stopped with
    `PayloadTooLarge` as soon as it exceeds `limit`."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            check_received(received, limit)
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class FastPath:
    """Answers the POSTs of `routes` behind the app's `Gates` (the middleware's, in one line)."""

    def __init__(self, routes: Mapping[str, FastRoute], gates: Gates) -> None:
        self.routes = dict(routes)
        self.gates = gates
        self.metrics = gates.metrics
        self.max_bytes = gates.max_body_bytes
        self.timeout = gates.timeout
        self.state: ServerState | None = None
        """Set by the app's lifespan."""

    def route(self, scope: Scope) -> FastRoute | None:
        """The route of a request this path answers, else None."""
        # Starlette routes on the path below `root_path`: leave mounted apps to it.
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        return self.routes.get(scope["path"])

    async def serve(self, route: FastRoute, scope: Scope, receive: Receive, send: Send) -> None:
        # The gates' order (gates.py): metrics around everything, then `Gates.refusal` (auth,
        # the declared body size), then the timeout around reading, handling and answering.
        metrics = self.metrics
        path: str = scope["path"]
        status = 500
        started = False
        start = time.perf_counter()
        metrics.requests_in_flight += 1
        try:
            headers = scope["headers"]
            refusal = self.gates.refusal(headers)
            if refusal is not None:
                status = refusal.status_code
                await send_refusal(refusal, scope, receive, send, metrics)
                return
            timeout = self.timeout
            try:
                async with _NO_TIMEOUT if timeout is None else asyncio.timeout(timeout):
                    try:
                        state = self.state
                        if state is None:
                            raise RuntimeError("the app's lifespan has not started")
                        body = await route.endpoint(state, await read_body(receive, self.max_bytes))
                    except HANDLED as exc:
                        answer = error_answer(exc, "POST", path, metrics, scope["headers"])
                        status = answer.status_code
                        started = True
                        await answer(scope, receive, send)
                    else:
                        status = 200
                        started = True
                        start_message = {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": route.headers(body),
                        }
                        await send(start_message)
                        await send({"type": "http.response.body", "body": body})
            except TimeoutError:
                # Unconfigured, a TimeoutError is the handler's own: a bug, as below.
                if started or timeout is None:
                    raise
                status = 504
                refusal = timeout_response(timeout, headers)
                await send_refusal(refusal, scope, receive, send, metrics)
        except Exception as exc:
            # A bug: a 500 with a request id, logged with it (`error_answer`). Once answered
            # whole, the connection is still good: not re-raised, so uvicorn keeps it open
            # for the client's next request. Raised only when an answer was cut short.
            answer = error_answer(exc, "POST", path, metrics, scope["headers"])
            if started:
                raise
            status = 500
            await answer(scope, receive, send)
        finally:
            metrics.requests_in_flight -= 1
            metrics.record(path, "POST", status, time.perf_counter() - start)
