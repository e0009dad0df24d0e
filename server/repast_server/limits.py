"""Request limits: body size (413 before the handler reads past the limit) and wall time.

The entities-per-request limit is checked where the entities are counted, in the handlers.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repast_server.errors import PayloadTooLarge, error_response

__all__ = ["BodySizeLimitMiddleware", "TimeoutMiddleware"]


class BodySizeLimitMiddleware:
    """Answers 413 when `Content-Length` exceeds `max_bytes`, and stops a chunked body as soon
    as it grows past it (the handler sees `PayloadTooLarge`, which the error handler turns
    into the same 413), so an oversize body is never buffered whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    response = error_response(413, "PayloadTooLarge", _detail(limit))
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(_detail(limit))
            return message

        await self.app(scope, limited_receive, send)


def _detail(limit: int) -> str:
    return f"request body larger than feature_server.max_body_bytes ({limit} bytes)"


class TimeoutMiddleware:
    """Cancels a request that runs longer than `seconds` and answers 504 if nothing was sent
    yet. Only for `paths`: materialization is a long job by nature and runs in a worker
    thread that a cancellation could not stop anyway."""

    def __init__(self, app: ASGIApp, seconds: float, paths: frozenset[str]) -> None:
        self.app = app
        self.seconds = seconds
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            detail = (
                f"request took longer than feature_server.request_timeout_seconds "
                f"({self.seconds:g} s)"
            )
            response = error_response(504, "RequestTimeout", detail)
            await response(scope, receive, send)
