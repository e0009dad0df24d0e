"""Bearer-token authentication (`feature_server.auth` in feature_store.yaml).

Every path but `/health` needs `Authorization: Bearer <token>` with one of the configured
tokens; `/health` stays open so load balancers and orchestrators can probe without a secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from repast_server.errors import error_response

__all__ = ["BearerAuthMiddleware"]

OPEN_PATHS = frozenset({"/health"})


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: Sequence[str]) -> None:
        self.app = app
        self.tokens = [token.encode() for token in tokens]

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if self._authorized(header):
            await self.app(scope, receive, send)
            return
        detail = (
            "missing `Authorization: Bearer <token>` header"
            if header is None
            else "invalid bearer token"
        )
        response = error_response(401, "Unauthorized", detail)
        response.headers["WWW-Authenticate"] = 'Bearer realm="repast"'
        await response(scope, receive, send)
