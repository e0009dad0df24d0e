"""The fast path answers the hot endpoints as the Starlette stack does: the same statuses,
headers, bodies and metrics, request for request (the stack is the oracle)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from repast import FeatureStore
from repast.config import FeatureServerConfig
from repast_server.app import create_app
from repast_server.errors import PayloadTooLarge
from repast_server.fast_path import FastRoute, read_body
from server_helpers import fresh_request, push_body, run, server_store

TOKEN = {"Authorization": "Bearer secret"}
Content = bytes | Callable[[], AsyncIterator[bytes]] | None


@pytest.mark.parametrize("body", [b"", b"null", b'{"a": 1}', b"x" * 1000])
@pytest.mark.parametrize("media_type", ["application/json", None])
def test_answer_headers_are_those_of_starlettes_response(
    body: bytes, media_type: str | None
) -> None:
    route = FastRoute(lambda state, raw: None, media_type)  # type: ignore[arg-type, return-value]
    assert route.headers(body) == Response(body, media_type=media_type).raw_headers


def _receiver(messages: list[Message]) -> tuple[Callable[[], Any], list[Message]]:
    taken: list[Message] = []

    async def receive() -> Message:
        message = messages.pop(0)
        taken.append(message)
        return message

    return receive, taken


def test_read_body_joins_chunks_and_stops_at_the_limit() -> None:
    def chunks(*parts: bytes) -> list[Message]:
        return [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        ]

    async def main() -> None:
        receive, _ = _receiver(chunks(b"ab", b"", b"cd"))
        assert await read_body(receive, 4) == b"abcd"
        receive, _ = _receiver([{"type": "http.request"}])  # no body key: empty
        assert await read_body(receive, 4) == b""
        receive, taken = _receiver(chunks(b"abc", b"de", b"never read"))
        with pytest.raises(PayloadTooLarge):
            await read_body(receive, 4)
        assert len(taken) == 2  # stopped as soon as the body grew past the limit
        receive, _ = _receiver([*chunks(b"ab", b"cd")[:1], {"type": "http.disconnect"}])
        with pytest.raises(ClientDisconnect):
            await read_body(receive, 4)

    run(main)


def test_only_posts_to_the_hot_paths_take_the_fast_path(tmp_path: Path) -> None:
    fast = create_app(_store(tmp_path)).fast  # type: ignore[attr-defined]

    def scope(**changes: Any) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": "/push", "root_path": ""} | changes

    assert fast.route(scope()) is not None
    assert fast.route(scope(path="/get-online-features")) is not None
    assert fast.route(scope(path="/write-to-online-store")) is not None
    for other in (
        scope(method="GET"),
        scope(method="post"),  # Starlette's routes match methods case-sensitively too
        scope(path="/push/"),
        scope(path="/materialize"),
        scope(root_path="/api", path="/api/push"),
        scope(type="websocket"),
        {"type": "lifespan"},
    ):
        assert fast.route(other) is None, other


def _store(tmp_path: Path, **settings: Any) -> FeatureStore:
    store = server_store(tmp_path, {"type": "sqlite"}, steps=False)
    store.config.feature_server = FeatureServerConfig.model_validate(settings)
    return store


@contextlib.asynccontextmanager
async def _client(app: Starlette, through_stack: bool) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` inside its lifespan: through the fast path, or through the Starlette
    stack alone (`Starlette.__call__` skips the fast path)."""
    asgi: ASGIApp = functools.partial(Starlette.__call__, app) if through_stack else app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _answer(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    content: Content,
    headers: dict[str, str],
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = content() if callable(content) else content
    response = await client.request(method, path, content=body, headers=headers)
    # Request ids are random per answer: compared as present, not by value.
    rid = response.headers.get("x-request-id", "").encode()
    raw = [(k, b"<id>" if k == b"x-request-id" else v) for k, v in response.headers.raw]
    return (
        response.status_code,
        raw,
        response.content.replace(rid, b"<id>") if rid else response.content,
    )


def _chunked(body: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    return chunks


def _stalled(body: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(5)  # past the request timeout: cancelled there
        yield body[10:]

    return chunks


def _requests() -> list[tuple[str, str, Content, dict[str, str]]]:
    read = orjson.dumps(fresh_request([1, 2, 3]))
    push = orjson.dumps(push_body([1, 2], [3, 4]))
    write = orjson.dumps({"feature_view_name": "hourly_fresh", "df": push_body([5], [6])["df"]})
    big = orjson.dumps(push_body(list(range(200)), list(range(200))))
    json = {"Content-Type": "application/json", **TOKEN}
    return [
        ("POST", "/push", push, json),
        ("POST", "/push", _chunked(push), json),
        ("POST", "/write-to-online-store", write, json),
        ("POST", "/get-online-features", read, json),
        ("POST", "/get-online-features", _chunked(read), json),
        ("POST", "/get-online-features", read, {}),
        ("POST", "/push", push, {"Authorization": "Bearer wrong"}),
        ("POST", "/push", big, json),
        ("POST", "/push", _chunked(big), json),
        ("POST", "/write-to-online-store", big, {}),  # auth comes before the size check
        ("POST", "/get-online-features", b"{not json", json),
        ("POST", "/get-online-features", b"[1]", json),
        ("POST", "/get-online-features", b'{"entities": {"driver_id": [1]}}', json),
        ("POST", "/get-online-features", orjson.dumps({**fresh_request([1]), "x": 1}), json),
        ("POST", "/get-online-features", read.replace(b"[1,2,3]", b'["a"]'), json),
        ("POST", "/push", orjson.dumps({**push_body([1], [1]), "push_source_name": "p"}), json),
        ("POST", "/write-to-online-store", b'{"feature_view_name": "nope", "df": {}}', json),
        ("POST", "/push", orjson.dumps(push_body([1, 2, 3, 4], [1, 2, 3, 4])), json),
        ("POST", "/push", _stalled(push), json),
        ("GET", "/push", None, json),
        ("PUT", "/write-to-online-store", None, json),
        ("GET", "/get-online-features", None, {}),
        ("POST", "/push/", push, json),
    ]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    # Durations differ run to run: compare counts only.
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith(("_sum", "_bucket", "_created"))
        and s.name != "repast_registry_age_seconds"
    }


async def _run_all(
    app: Starlette, through_stack: bool, requests: list[tuple[str, str, Content, dict[str, str]]]
) -> tuple[list[Any], dict[Any, float], int]:
    """The answers to `requests`, the metrics after them, and how many the fast path served."""
    fast = app.fast  # type: ignore[attr-defined]
    serve = fast.serve
    served = 0

    async def counted(*args: Any) -> None:
        nonlocal served
        served += 1
        await serve(*args)

    fast.serve = counted
    async with _client(app, through_stack) as client:
        answers = [await _answer(client, *request) for request in requests]
        metrics = _samples((await client.get("/metrics", headers=TOKEN)).text)
    return answers, metrics, served


def test_the_fast_path_answers_and_counts_as_the_starlette_stack(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        auth={"type": "bearer", "tokens": ["secret"]},
        max_body_bytes=2000,
        max_entities_per_request=3,
        request_timeout_seconds=0.5,
    )
    requests = _requests()

    async def main() -> None:
        # Each on a fresh app (its own metrics); the pushes write the same rows twice.
        fast, fast_metrics, fast_served = await _run_all(create_app(store), False, requests)
        stack, stack_metrics, stack_served = await _run_all(create_app(store), True, requests)
        hot = [m == "POST" and p in ("/get-online-features", "/push", "/write-to-online-store")
               for m, p, *_ in requests]  # fmt: skip
        assert (fast_served, stack_served) == (sum(hot), 0)
        for request, got, expected in zip(requests, fast, stack, strict=True):
            assert got == expected, request[:2]
        assert [status for status, _, _ in fast] == [
            *(200, 200, 200, 200, 200),
            *(401, 401, 413, 413, 401),
            *(400, 422, 400, 200, 400, 422, 404, 413, 504),
            *(405, 405, 401, 307),
        ]
        assert fast_metrics == stack_metrics
        too_large = (("endpoint", "/push"), ("method", "POST"), ("status", "413"))
        assert fast_metrics[("repast_requests_total", too_large)] == 3

    run(main)


def test_requests_under_a_root_path_go_through_starlette(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def main() -> None:
        app = create_app(store)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, root_path="/api")
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver/api"
            ) as client:
                pushed = await client.post("/push", json=push_body([1], [7]))
                assert (pushed.status_code, pushed.content) == (200, b"")
                assert pushed.headers.raw == [(b"content-length", b"0")]
                read = await client.post("/get-online-features", json=fresh_request([1]))
                assert read.json()["results"][1]["values"] == [7]
                assert read.headers["content-type"] == "application/json"

    run(main)
