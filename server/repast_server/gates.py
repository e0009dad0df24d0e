"""`Gates`: what every request passes before and around its handler, written once for both
ways a request is served (the fast path's straight line and Starlette's middleware stack).

The order: metrics around everything; then bearer auth; then the declared body size; then the
deadline around reading the body, handling and answering (only on the timed paths: reads and
writes; materialization is a long job by nature).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.middleware import Middleware

from repast.config import FeatureServerConfig
from repast_server.auth import BearerAuth, BearerAuthMiddleware
from repast_server.errors import ErrorResponse
from repast_server.limits import BodySizeLimitMiddleware, TimeoutMiddleware, declared_too_large
from repast_server.metrics import Metrics, MetricsMiddleware

__all__ = ["Gates"]


@dataclass(frozen=True)
class Gates:
    metrics: Metrics
    auth: BearerAuth | None
    max_body_bytes: int
    timeout: float | None
    """Seconds for reading, handling and answering one request on `timed_paths`; None: none."""
    timed_paths: frozenset[str]

    @classmethod
    def of(
        cls, settings: FeatureServerConfig, metrics: Metrics, timed_paths: Iterable[str]
    ) -> Gates:
        return cls(
            metrics=metrics,
            auth=BearerAuth(settings.auth.tokens) if settings.auth is not None else None,
            max_body_bytes=settings.max_body_bytes,
            timeout=settings.request_timeout_seconds,
            timed_paths=frozenset(timed_paths),
        )

    def refusal(self, headers: list[tuple[bytes, bytes]]) -> ErrorResponse | None:
        """The answer the gates ahead of the handler give instead of it (auth first, then the
        declared body size), or None when the request may go on."""
        refusal = None if self.auth is None else self.auth.refusal(headers)
        if refusal is None:
            refusal = declared_too_large(headers, self.max_body_bytes)
        return refusal

    def middleware(self) -> list[Middleware]:
        """The same gates, in the same order, as Starlette middleware (outermost first)."""
        stack = [Middleware(MetricsMiddleware, metrics=self.metrics)]
        if self.auth is not None:
            stack.append(Middleware(BearerAuthMiddleware, auth=self.auth, metrics=self.metrics))
        stack.append(
            Middleware(BodySizeLimitMiddleware, max_bytes=self.max_body_bytes, metrics=self.metrics)
        )
        if self.timeout is not None:
            stack.append(
                Middleware(
                    TimeoutMiddleware,
                    seconds=self.timeout,
                    paths=self.timed_paths,
                    metrics=self.metrics,
                )
            )
        return stack
