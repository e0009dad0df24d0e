"""One place that turns exceptions into HTTP answers, in the body shape Feast's server uses.

Feast's server answers an error with a JSON *string* whose text is a JSON document
`{"module", "class", "message"}`, and Feast's Python client (`FeastError.from_error_detail`)
turns exactly that into the named `feast.errors` class. Repast answers the same, naming the
closest Feast class, and adds its own `error` (kind) and `detail` (text) fields, plus
`request_id` on a 5xx, to that inner document (Feast's client ignores extra fields).

Statuses follow Feast where it has one (404 for unknown objects, 422 for an unknown push
source and for request-schema violations) and Repast's own rule elsewhere: 400 for other bad
input (Feast: mostly 500), 413 for oversize requests, 503 when a backend (online store,
registry) is down, so a client can tell "fix your request" from "retry later"
(docs/feast-compatibility.md §4.1 sets them beside Feast's).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from repast.errors import (
    FeatureNotFoundError,
    MaterializationError,
    NotFoundError,
    OnlineStoreError,
    RegistryError,
    RepastError,
)

if TYPE_CHECKING:
    from repast_server.metrics import Metrics

__all__ = [
    "CONNECTION_ERRORS",
    "HANDLED",
    "ApiError",
    "BadRequest",
    "PayloadTooLarge",
    "PushSourceNotFound",
    "REQUEST_ID_HEADER",
    "SchemaError",
    "error_answer",
    "error_body",
    "ErrorResponse",
    "error_response",
    "exception_handlers",
    "feast_class_for",
    "handle_exception",
    "request_id",
    "send_refusal",
    "status_for",
]

logger = logging.getLogger("repast.server")


class ApiError(Exception):
    """An error the server raises itself, with its HTTP status and `error` kind."""

    status = 400
    kind = "BadRequest"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ApiError):
    """The body parsed but asks for something impossible (unequal lengths, no features)."""


class SchemaError(ApiError):
    """The body is not shaped as the endpoint's schema says (FastAPI answers these 422)."""

    status = 422
    kind = "RequestValidationError"


class PayloadTooLarge(ApiError):
    status = 413
    kind = "PayloadTooLarge"


class PushSourceNotFound(ApiError):
    """Feast answers an unknown push source with 422 (`PushSourceNotFoundException`)."""

    status = 422
    kind = "PushSourceNotFoundError"


def _redis_down_errors() -> tuple[type[Exception], ...]:
    try:
        from redis import exceptions
    except ImportError:  # redis-py is optional (SQLite-only installs)
        return ()
    return (exceptions.ConnectionError, exceptions.TimeoutError)


# Lost or refused connections, whichever library raised them (redis-py's errors subclass
# neither ConnectionError nor OSError).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (OSError, *_redis_down_errors())

# A store that lets a client library's connection error through unwrapped is still "down":
# 503, never a 500.
_BACKEND_DOWN: tuple[type[Exception], ...] = (
    OnlineStoreError,
    RegistryError,
    *_redis_down_errors(),
    ConnectionError,
)
_NOT_FOUND: tuple[type[Exception], ...] = (NotFoundError, FeatureNotFoundError)


# The classes answered on purpose, inside the app (4xx, 503); any other exception is a bug:
# a 500, logged, and re-raised after the answer so the server logs it too.
HANDLED: tuple[type[Exception], ...] = (ApiError, HTTPException, RepastError, *_BACKEND_DOWN)


def exception_handlers() -> dict[Any, Any]:
    """Starlette's `exception_handlers`: every class in `HANDLED` is handled inside the app;
    only `Exception` (a bug: 500) goes to the outermost handler, which also logs it."""
    return dict.fromkeys((*HANDLED, Exception), handle_exception)


def status_for(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, error kind) for an exception raised while handling a request."""
    if isinstance(exc, ApiError):
        return exc.status, exc.kind
    if isinstance(exc, HTTPException):
        return exc.status_code, "HTTPException"
    kind = type(exc).__name__
    if isinstance(exc, _BACKEND_DOWN):
        return 503, kind
    if isinstance(exc, _NOT_FOUND):
        return 404, kind
    if isinstance(exc, MaterializationError):
        return 500, kind
    if isinstance(exc, RepastError):
        # Everything else Repast raises while serving a request is about the request's
        # content: a wrong value type, a missing column, an unsupported option.
        return 400, kind
    return 500, "InternalServerError"


REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` when it is a short plain token (so it can be searched for
    in the logs), else a new random one. Made only for error answers: a success costs none."""
    for name, value in headers:
        if name == b"x-request-id":
            if _REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(8)


# The `feast.errors` class Feast's client raises for each kind of error; every other kind
# becomes `FeastError`, their common base, so a Feast client still gets a typed error.
_FEAST_CLASSES = {
    "FeatureViewNotFoundError": "FeatureViewNotFoundException",
    "FeatureServiceNotFoundError": "FeatureServiceNotFoundException",
    "EntityNotFoundError": "EntityNotFoundException",
    "DataSourceNotFoundError": "DataSourceObjectNotFoundException",
    "PushSourceNotFoundError": "PushSourceNotFoundException",
    # Feast raises a bare KeyError (a 500) for an unknown feature of a known view; its
    # not-found base class keeps the 404's meaning.
    "FeatureNotFoundError": "FeastObjectNotFoundException",
    "RequestDataNotFoundError": "RequestDataNotFoundInEntityRowsException",
    "FeatureNameCollisionError": "FeatureNameCollisionError",
    "Unauthorized": "FeastPermissionError",
}


def feast_class_for(kind: str) -> str:
    """The name of the `feast.errors` class that stands for Repast's error `kind`."""
    return _FEAST_CLASSES.get(kind, "FeastError")


def error_body(kind: str, detail: str, request_id: str | None = None) -> bytes:
    """The bytes of an error answer: a JSON string holding Feast's error document, with
    Repast's `error` and `detail` beside Feast's `module`, `class` and `message`."""
    document: dict[str, str] = {
        "module": "feast.errors",
        "class": feast_class_for(kind),
        "message": detail,
        "error": kind,
        "detail": detail,
    }
    if request_id is not None:
        document["request_id"] = request_id
    return orjson.dumps(orjson.dumps(document).decode())


class ErrorResponse(Response):
    """An error answer that remembers its `kind`, so whoever sends a refusal made before the
    handler runs (auth, the body limit, the timeout) can count it as the handler's errors
    are counted (`send_refusal`). With a `request_id` it carries it in `X-Request-ID`, and,
    for a 5xx (the answers an operator is asked about), in the JSON body too."""

    def __init__(self, status: int, kind: str, detail: str, request_id: str | None = None) -> None:
        body = error_body(kind, detail, request_id if status >= 500 else None)
        headers = None if request_id is None else {REQUEST_ID_HEADER: request_id}
        super().__init__(
            body,
            status_code=status,
            media_type="application/json",
            headers=headers,
        )
        self.kind = kind


def error_response(
    status: int, kind: str, detail: str, request_id: str | None = None
) -> ErrorResponse:
    return ErrorResponse(status, kind, detail, request_id)


async def send_refusal(
    refusal: ErrorResponse, scope: Scope, receive: Receive, send: Send, metrics: Metrics | None
) -> None:
    """Answers with `refusal` (with a request id, as every error answer), counted in the
    errors metric under the request's endpoint."""
    if REQUEST_ID_HEADER not in refusal.headers:
        refusal.headers[REQUEST_ID_HEADER] = request_id(scope["headers"])
    if metrics is not None:
        metrics.count_error(metrics.endpoint(scope["path"]), refusal.kind)
    await refusal(scope, receive, send)


def error_answer(
    exc: Exception,
    method: str,
    path: str,
    metrics: Metrics | None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> Response:
    """The answer to an exception raised while handling `method path`, counted in `metrics`,
    with a request id (`headers`' own `X-Request-ID` if any); a 500 is logged with its
    traceback and that id. Used by the app's exception handler and the fast path."""
    status, kind = status_for(exc)
    rid = request_id(headers)
    if status >= 500 and status != 503:
        logger.error("unhandled error on %s %s (request id %s)", method, path, rid, exc_info=exc)
        detail = str(exc) if isinstance(exc, RepastError) else f"{type(exc).__name__}: {exc}"
    else:
        detail = exc.detail if isinstance(exc, ApiError | HTTPException) else str(exc)
    if metrics is not None:
        metrics.count_error(metrics.endpoint(path), kind)
    extra = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
    response = error_response(status, kind, str(detail), rid)
    if extra:
        response.headers.update(extra)
    return response


async def handle_exception(request: Request, exc: Exception) -> Response:
    """The app's exception handler for every exception class."""
    metrics = getattr(request.app.state, "metrics", None)
    return error_answer(exc, request.method, request.url.path, metrics, request.scope["headers"])
