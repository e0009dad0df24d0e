"""Request limits: body size (413 before the handler reads past the limit) and wall time.

The checks are functions that the middleware (for the Starlette routes) and the fast path
(for the hot endpoints) both call. The entities-per-request limit is checked where the
entities are counted, in the handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repast_server.errors import (
    ErrorResponse,
    PayloadTooLarge,
    error_response,
    request_id,
    send_refusal,
)

if TYPE_CHECKING:
    from repast_server.metrics import Metrics

__all__ = [
    "BodySizeLimitMiddleware",
    "TimeoutMiddleware",
    "check_received",
    "declared_too_large",
    "timeout_response",
]


def declared_too_large(headers: Iterable[tuple[bytes, bytes]], limit: int) -> ErrorResponse | None:
    """The 413 to answer, before reading anything, when `Content-Length` exceeds `limit`."""
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return error_response(413, "PayloadTooLarge", _detail(limit))
            break
    return None


def check_received(received: int, limit: int) -> None:
    """Raises `PayloadTooLarge` (answered 413 by the error handling) once the body read so far
    exceeds `limit`: a chunked body without `Content-Length` is never buffered whole."""
    if received > limit:
        raise PayloadTooLarge(_detail(limit))


def _detail(limit: int) -> str:
    return f"request body larger than feature_server.max_body_bytes ({limit} bytes)"


def timeout_response(seconds: float, headers: Iterable[tuple[bytes, bytes]] = ()) -> ErrorResponse:
    detail = f"request took longer than feature_server.request_timeout_seconds ({seconds:g} s)"
    return error_response(504, "RequestTimeout", detail, request_id(headers))


class BodySizeLimitMiddleware:
    """Answers 413 when `Content-Length` exceeds `max_bytes`, and stops a chunked body as soon
    as it grows past it (the handler sees `PayloadTooLarge`, which the error handler turns
    into the same 413), so an oversize body is never buffered whole."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        refusal = declared_too_large(scope["headers"], limit)
        if refusal is not None:
            await send_refusal(refusal, scope, receive, send, self.metrics)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                check_received(received, limit)
            return message

        await self.app(scope, limited_receive, send)


class TimeoutMiddleware:
    """Cancels a request that runs longer than `seconds` and answers 504 if nothing was sent
    yet. Only for `paths`: materialization is a long job by nature and runs in a worker
    thread that a cancellation could not stop anyway."""

    def __init__(
        self,
        app: ASGIApp,
        seconds: float,
        paths: frozenset[str],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.paths = paths
        self.metrics = metrics

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
            refusal = timeout_response(self.seconds, scope["headers"])
            await send_refusal(refusal, scope, receive, send, self.metrics)
