"""The HTTP handlers. The hot endpoints (`get_online_features`, `push`,
`write_to_online_store`) are plain `async def`s of (ServerState, body bytes) that return the
response body, answered by the fast path (fast_path.py); the others are Starlette handlers
that read the shared state from `app.state`.

Request bodies are parsed with orjson and checked by hand (a few `isinstance` and dict
look-ups), which costs microseconds where a pydantic model would cost tens of them on the
hot path. Every problem raises an `ApiError` (or a Repast error) that `errors.py` turns into
a 4xx JSON answer before anything is written.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from repast import materialize as materialize_mod
from repast.context import StoreContext
from repast.data_source import PushMode
from repast.errors import (
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    RepastError,
    RowsError,
)
from repast.feature_view import FeatureView
from repast.online.frame import frame
from repast.online.push import commit_async, prepare_push, push_table
from repast.online.small_write import write_rows_async
from repast.validate import closest
from repast_server.encode import encode_online_response, encode_packed_read
from repast_server.errors import BadRequest, PayloadTooLarge, PushSourceNotFound, SchemaError
from repast_server.openapi import OPENAPI_JSON
from repast_server.state import ServerState, server_state

__all__ = [
    "get_online_features",
    "materialize",
    "materialize_incremental",
    "metrics",
    "openapi",
    "push",
    "write_to_online_store",
]

_JSON = "application/json"
_NULL = b"null"
_PUSH_MODES = {
    "online": PushMode.ONLINE,
    "offline": PushMode.OFFLINE,
    "online_and_offline": PushMode.ONLINE_AND_OFFLINE,
}
_TIMESTAMP = pa.timestamp("us", tz="UTC")


# -- parsing helpers ---------------------------------------------------------------------------


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SchemaError(f"the request body must be a JSON object, got {_json_type(body)}")
    return body


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """`body[name]` checked against `kind`; `default` when absent (or null), `...` = required."""
    value = body.get(name)
    if value is None:
        if default is ...:
            raise SchemaError(f"field '{name}' is required")
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}
        want = expected.get(kind, str(kind)) if isinstance(kind, type) else "a valid value"
        raise SchemaError(f"field '{name}' must be {want}, got {_json_type(value)}")
    return value


def _columns(body: Mapping[str, Any], name: str) -> tuple[dict[str, list[Any]], int]:
    """A column-oriented `{column: [values]}` object and its row count (lengths must agree)."""
    columns: dict[str, Any] = _field(body, name, dict, ...)
    lengths: dict[str, int] = {}
    for column, values in columns.items():
        if not isinstance(values, list):
            raise SchemaError(
                f"'{name}.{column}' must be an array of values, got {_json_type(values)}"
            )
        lengths[column] = len(values)
    if len(set(lengths.values())) > 1:
        raise BadRequest(f"every column of '{name}' must have the same length, got {lengths}")
    return columns, next(iter(lengths.values()), 0)


def _check_rows(state: ServerState, rows: int, what: str) -> None:
    limit = state.settings.max_entities_per_request
    if rows > limit:
        raise PayloadTooLarge(
            f"{rows} {what} in one request; feature_server.max_entities_per_request is {limit}"
        )


def _timestamp(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise SchemaError(f"field '{name}' must be an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"field '{name}': '{value}' is not an ISO 8601 timestamp") from None
    # Naive timestamps are UTC, as Feast's server reads them.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+00:01 is before year 1 in UTC
        raise BadRequest(f"field '{name}': '{value}' is out of range in UTC") from None


def _string_list(body: Mapping[str, Any], name: str) -> list[str] | None:
    values: list[str] | None = _field(body, name, list, None)
    # One C-level pass (`map`), not a Python loop over what may be hundreds of names.
    if values is not None and not set(map(type, values)) <= {str}:
        raise SchemaError(f"field '{name}' must be an array of strings")
    return values


# -- /get-online-features ----------------------------------------------------------------------


async def get_online_features(state: ServerState, raw: bytes) -> bytes:
    body = _body(raw)
    entities, rows = _columns(body, "entities")
    _check_rows(state, rows, "entity rows")
    full_names = _field(body, "full_feature_names", bool, False)
    with_views = _field(body, "include_feature_view_version_metadata", bool, False)
    service_name = _field(body, "feature_service", str, None)
    features: Any
    if service_name is not None:
        services = state.catalog().services
        features = services.get(service_name)
        if features is None:
            raise _not_found("feature service", service_name, list(services), state)
    else:
        features = _string_list(body, "features") or []
        if not features:
            raise BadRequest("No features specified for retrieval")
    store = state.store
    async with state.read_slots:
        start = time.perf_counter()
        # Packed rows go straight to JSON in Rust; other stores and on-demand views take
        # the Arrow path.
        packed = await store.read_online_packed_async(features, entities, full_names)
        if packed is None:
            response = await store.get_online_features_async(features, entities, full_names)
        state.metrics.online_read.observe(time.perf_counter() - start)
    state.metrics.online_entities.inc(rows)
    # Feast lists each view read with its version; Repast keeps no versions, and Feast
    # leaves out a version of 0, so the names are all there is.
    views = [{"name": v} for v in state.catalog().views_read(features)] if with_views else None
    if packed is not None:
        return encode_packed_read(packed, list(entities), views)
    return encode_online_response(response, list(entities), views)


def _not_found(what: str, name: str, known: list[str], state: ServerState) -> Exception:
    error = FeatureServiceNotFoundError if what == "feature service" else FeatureViewNotFoundError
    return error(
        f"{what} '{name}' does not exist in project '{state.store.project}'{closest(name, known)}"
    )


# -- /push and /write-to-online-store ----------------------------------------------------------


def _df(state: ServerState, body: Mapping[str, Any]) -> tuple[dict[str, list[Any]], int]:
    """The pushed `df` columns and their row count, within the request limits."""
    columns, rows = _columns(body, "df")
    if not columns:
        raise BadRequest("'df' has no columns")
    _check_rows(state, rows, "rows")
    return columns, rows


def _frame(columns: Mapping[str, list[Any]], rows: int, views: Sequence[FeatureView]) -> pa.Table:
    try:
        return frame(columns, rows, views)
    except RowsError as exc:
        raise BadRequest(str(exc)) from None


# Up to this many rows a push is checked and encoded on the event loop (tens of microseconds)
# and sent with the store's async client; bigger ones (and offline appends, which write Parquet
# files) go to a worker thread, so their encoding does not hold up the reads.
_INLINE_WRITE_ROWS = 64


async def _push(
    store: StoreContext, views: Sequence[FeatureView], table: pa.Table, mode: PushMode, what: str
) -> int:
    if mode is not PushMode.ONLINE or len(table) > _INLINE_WRITE_ROWS:
        return await asyncio.to_thread(push_table, store, views, table, mode, what)
    return await commit_async(store, prepare_push(store, views, table, mode, what))


async def _write_small(
    state: ServerState, view: FeatureView, columns: dict[str, list[Any]], rows: int
) -> bool:
    """Whether a few plainly valid rows were written straight from their JSON lists
    (`online/small_write.py`: one Rust call instead of an Arrow array per column); False leaves
    them, unwritten, to the general path, which also words every error."""
    return await write_rows_async(state.store.context, view, columns, rows) is not None


async def push(state: ServerState, raw: bytes) -> bytes:
    body = _body(raw)
    source_name = _field(body, "push_source_name", str, ...)
    mode_name = _field(body, "to", str, "online")
    mode = _PUSH_MODES.get(mode_name)
    if mode is None:
        raise SchemaError(f"field 'to' must be one of {sorted(_PUSH_MODES)}, got '{mode_name}'")
    _field(body, "allow_registry_cache", bool, True)
    _field(body, "transform_on_write", bool, True)
    catalog = state.catalog()
    views = catalog.push_targets.get(source_name)
    if not views:
        raise PushSourceNotFound(
            f"push source '{source_name}' does not exist in project '{state.store.project}' "
            f"or no feature view reads it{closest(source_name, catalog.push_sources)}"
        )
    store = state.store
    columns, rows = _df(state, body)
    what = f"push to '{source_name}'"
    if (
        mode is PushMode.ONLINE
        and len(views) == 1
        and await _write_small(state, views[0], columns, rows)
    ):
        state.metrics.push_rows.labels("/push").inc(rows)
        return b""
    # The catalog's views (parsed once per registry version), not a registry listing per
    # push as `FeatureStore.push` does; otherwise the SDK's one push path.
    table = _frame(columns, rows, views)
    await _push(store.context, views, table, mode, what)
    state.metrics.push_rows.labels("/push").inc(len(table))
    return b""


async def write_to_online_store(state: ServerState, raw: bytes) -> bytes:
    body = _body(raw)
    name = _field(body, "feature_view_name", str, ...)
    _field(body, "allow_registry_cache", bool, True)
    _field(body, "transform_on_write", bool, True)
    views = state.catalog().views
    view = views.get(name)
    if view is None:
        raise _not_found("feature view", name, list(views), state)
    store = state.store
    columns, rows = _df(state, body)
    what = "write_to_online_store data"
    if await _write_small(state, view, columns, rows):
        state.metrics.push_rows.labels("/write-to-online-store").inc(rows)
        return _NULL
    table = _frame(columns, rows, [view])
    await _push(store.context, [view], table, PushMode.ONLINE, what)
    state.metrics.push_rows.labels("/write-to-online-store").inc(len(table))
    return _NULL


# -- /materialize and /materialize-incremental ----------------------------------------------------

_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter (`?async=true`): true/false/1/0, any case; absent = false."""
    value = request.query_params.get(name)
    if value is None:
        return False
    flag = _FLAGS.get(value.lower())
    if flag is None:
        raise BadRequest(f"query parameter '{name}' must be true, false, 1 or 0, got '{value}'")
    return flag


async def materialize(request: Request) -> Response:
    state = server_state(request)
    background, force = _flag(request, "async"), _flag(request, "force")
    body = _body(await request.body())
    views = _string_list(body, "feature_views")
    disable = _field(body, "disable_event_timestamp", bool, False)
    if disable:
        start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC)
    else:
        start = _timestamp(body.get("start_ts"), "start_ts")
        end = _timestamp(body.get("end_ts"), "end_ts")
        if start >= end:
            raise BadRequest(
                f"start_ts ({start.isoformat()}) must be before end_ts ({end.isoformat()})"
            )
    names = await _view_names(state, views)
    cancel = threading.Event()
    work = functools.partial(
        materialize_mod.materialize,
        state.store.context,
        start,
        end,
        names,
        disable,
        progress=False,
        cancel=cancel,
    )
    return await _run_job(state, "/materialize", names, work, background, force, cancel)


async def materialize_incremental(request: Request) -> Response:
    state = server_state(request)
    background, force = _flag(request, "async"), _flag(request, "force")
    body = _body(await request.body())
    views = _string_list(body, "feature_views")
    end = _timestamp(body.get("end_ts"), "end_ts")
    names = await _view_names(state, views)
    cancel = threading.Event()
    work = functools.partial(
        materialize_mod.materialize_incremental,
        state.store.context,
        end,
        names,
        progress=False,
        cancel=cancel,
    )
    return await _run_job(state, "/materialize-incremental", names, work, background, force, cancel)


async def _view_names(state: ServerState, names: list[str] | None) -> list[str]:
    """The views the request names (404 for an unknown one), or all materializable ones, as
    the materialization itself selects them: known before answering 202 or 409. Read fresh
    from the registry (a worker thread: registry I/O), since a view applied a moment ago may
    be materialized before the refresher's next pass."""
    views = await asyncio.to_thread(materialize_mod.select_views, state.store.context, names)
    return [view.name for view in views]


async def _run_job(
    state: ServerState,
    endpoint: str,
    views: list[str],
    work: Callable[[], object],
    background: bool,
    force: bool,
    cancel: threading.Event | None = None,
) -> Response:
    """Run `work` as a job holding `views`: 409 if another job holds one (unless `force`),
    202 at once when `background`, else the answer once it is done."""
    jobs = state.jobs
    # No `await` between this check and `jobs.start`: the claim is atomic on the event loop.
    busy = jobs.busy(views)
    if busy and not force:
        state.metrics.count_error(endpoint, "MaterializationInProgress")
        message = (
            f"feature view(s) {', '.join(busy)} already being materialized by this server; "
            "retry when that finishes, or pass force=true"
        )
        conflict = {"error": message, "feature_views": busy}
        return Response(orjson.dumps(conflict), status_code=409, media_type=_JSON)
    task = jobs.start(endpoint, views, work, background=background, cancel=cancel)
    if background:
        accepted = {"status": "accepted", "feature_views": views}
        return Response(orjson.dumps(accepted), status_code=202, media_type=_JSON)
    try:
        # Shielded: a client that disconnects cancels this handler, not the job, which keeps
        # its views until its thread really ends.
        await asyncio.shield(task)
    except ValueError as exc:
        # Materialization's own ValueErrors are about the request's range.
        if isinstance(exc, RepastError):
            raise
        raise BadRequest(str(exc)) from None
    return Response(_NULL, media_type=_JSON)


# -- /metrics, /openapi.json (/health: health.py) ----------------------------------------------


async def metrics(request: Request) -> Response:
    registry = server_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return Response(OPENAPI_JSON, media_type=_JSON)
