"""Bearer-token authentication (`feature_server.auth` in feature_store.yaml).

Every path but `/health` needs `Authorization: Bearer <token>` with one of the configured
tokens; `/health` stays open so load balancers and orchestrators can probe without a secret.
`BearerAuth` is the check; the middleware (for the Starlette routes) and the fast path (for
the hot endpoints) both ask it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from repast_server.errors import ErrorResponse, error_response, send_refusal

if TYPE_CHECKING:
    from repast_server.metrics import Metrics

__all__ = ["OPEN_PATHS", "BearerAuth", "BearerAuthMiddleware"]

OPEN_PATHS = frozenset({"/health"})


class BearerAuth:
    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [token.encode() for token in tokens]

    def refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> ErrorResponse | None:
        """None when the request's headers carry a valid token, else the 401 to answer."""
        header = next((v for k, v in headers if k == b"authorization"), None)
        if self._authorized(header):
            return None
        detail = (
            "missing `Authorization: Bearer <token>` header"
            if header is None
            else "invalid bearer token"
        )
        response = error_response(401, "Unauthorized", detail)
        response.headers["WWW-Authenticate"] = 'Bearer realm="repast"'
        return response

    def _authorized(self, header: bytes | None) -> bool:
        if header is None:
            return False
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        credentials = credentials.strip()
        # Compare against every token, in constant time per token, so timing does not tell
        # which token (or which prefix) came close.
        matched = False
        for token in self.tokens:
            matched |= hmac.compare_digest(credentials, token)
        return matched


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, auth: BearerAuth, metrics: Metrics | None = None) -> None:
        self.app = app
        self.auth = auth
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        refusal = self.auth.refusal(scope["headers"])
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await send_refusal(refusal, scope, receive, send, self.metrics)
