"""Every bad-input path answers 4xx JSON naming the problem, and writes nothing; a Redis
outage answers 503 per request and the server recovers when Redis returns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repast import FeatureStore
from repast_server import health
from repast_server.app import create_app
from server_helpers import (
    client_for,
    error_of,
    fresh_request,
    push_body,
    redis_config,
    run,
    server_store,
)
from services import RedisServer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    fs = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"})
    yield fs
    fs.online_store.close()


def _post_all(
    store: FeatureStore, path: str, bodies: list[Any]
) -> list[tuple[int, dict[str, Any]]]:
    async def main() -> list[tuple[int, dict[str, Any]]]:
        out = []
        async with client_for(store) as client:
            for body in bodies:
                if isinstance(body, bytes):
                    response = await client.post(path, content=body)
                else:
                    response = await client.post(path, json=body)
                document = response.json()
                if response.status_code >= 400:
                    document = error_of(response)
                out.append((response.status_code, document))
        return out

    return run(main)


FEATURES = ["hourly_fresh:rating"]


@pytest.mark.parametrize(
    ("body", "status", "error", "words"),
    [
        (b"{not json", 400, "BadRequest", "not valid JSON"),
        (b"[1, 2]", 422, "RequestValidationError", "must be a JSON object"),
        ({"features": FEATURES}, 422, "RequestValidationError", "'entities' is required"),
        ({"entities": [1], "features": FEATURES}, 422, "RequestValidationError", "an object"),
        ({"entities": {"driver_id": 1}, "features": FEATURES}, 422, "RequestValidationError",
         "'entities.driver_id' must be an array"),
        ({"entities": {"driver_id": [1], "x": [1, 2]}, "features": FEATURES}, 400, "BadRequest",
         "same length"),
        ({"entities": {"driver_id": [1]}, "features": "hourly_fresh:rating"}, 422,
         "RequestValidationError", "'features' must be an array"),
        ({"entities": {"driver_id": [1]}, "features": [1]}, 422, "RequestValidationError",
         "array of strings"),
        ({"entities": {"driver_id": [1]}, "features": FEATURES, "full_feature_names": "yes"}, 422,
         "RequestValidationError", "must be a boolean"),
        ({"entities": {"driver_id": [1]}}, 400, "BadRequest", "No features specified"),
        ({"entities": {"driver_id": [1]}, "features": ["hourly_fresh:ratin"]}, 404,
         "FeatureNotFoundError", "did you mean 'rating'"),
        ({"entities": {"driver_id": [1]}, "features": ["hourly_frsh:rating"]}, 404,
         "FeatureViewNotFoundError", "hourly_fresh"),
        ({"entities": {"driver_id": [1]}, "feature_service": "driver_servce"}, 404,
         "FeatureServiceNotFoundError", "driver_service"),
        ({"entities": {"driver_id": ["x"]}, "features": FEATURES}, 400, "EntityError",
         "driver_id"),
        ({"entities": {"drivers": [1]}, "features": FEATURES}, 400, "EntityError",
         "needs entity column 'driver_id'"),
    ],
)  # fmt: skip
def test_bad_reads(store: FeatureStore, body: Any, status: int, error: str, words: str) -> None:
    [(got_status, got)] = _post_all(store, "/get-online-features", [body])
    assert (got_status, got["error"]) == (status, error), got
    assert words in got["detail"]


def _base(**changes: Any) -> dict[str, Any]:
    body = push_body([1, 2], [3, 4])
    for key, value in changes.items():
        if key in body["df"] or key.startswith("df_"):
            body["df"][key.removeprefix("df_")] = value
        else:
            body[key] = value
    return body


def _without(column: str) -> dict[str, Any]:
    body = push_body([1, 2], [3, 4])
    del body["df"][column]
    return body


@pytest.mark.parametrize(
    ("body", "status", "error", "words"),
    [
        (_base(push_source_name="hourly_psh"), 422, "PushSourceNotFoundError", "hourly_push"),
        ({"df": {}}, 422, "RequestValidationError", "'push_source_name' is required"),
        (_base(to="somewhere"), 422, "RequestValidationError", "field 'to'"),
        (_base(rating=[1]), 400, "BadRequest", "same length"),
        (_base(rating=["a", "b"]), 400, "RepastError", "rating"),
        (_base(rating=[1, "b"]), 400, "BadRequest", "column 'rating'"),
        (_base(event_timestamp=["noon", "noon"]), 400, "BadRequest", "event_timestamp"),
        (_without("driver_id"), 400, "MissingColumnError", "driver_id"),
        (_without("event_timestamp"), 400, "MissingColumnError", "event_timestamp"),
        (_base(df=[1]), 422, "RequestValidationError", "'df' must be an object"),
    ],
)  # fmt: skip
def test_bad_pushes_write_nothing(
    store: FeatureStore, body: Any, status: int, error: str, words: str
) -> None:
    [(got_status, got)] = _post_all(store, "/push", [body])
    assert (got_status, got["error"]) == (status, error), got
    assert words in got["detail"]
    [(_, read)] = _post_all(store, "/get-online-features", [fresh_request([1, 2])])
    assert read["results"][1]["statuses"] == ["NOT_FOUND", "NOT_FOUND"]


def test_bad_writes_and_materializations(store: FeatureStore) -> None:
    df = push_body([1], [3])["df"]
    got = _post_all(
        store,
        "/write-to-online-store",
        [{"feature_view_name": "hourly_frsh", "df": df}, {"df": df}],
    )
    assert got[0][0] == 404
    assert "hourly_fresh" in got[0][1]["detail"]
    assert got[1][0] == 422
    got = _post_all(
        store,
        "/materialize",
        [
            {"start_ts": "2024-01-02T00:00:00", "end_ts": "2024-01-01T00:00:00"},
            {"start_ts": "2024-01-01T00:00:00", "end_ts": "2024-01-02", "feature_views": ["x"]},
            {"start_ts": 5, "end_ts": "2024-01-01T00:00:00"},
        ],
    )
    assert got[0][0] == 400
    assert "must be before end_ts" in got[0][1]["detail"]
    assert got[1][0] == 404
    assert got[1][1]["error"] == "FeatureViewNotFoundError"
    assert got[2][0] == 422
    # Before year 1 once shifted to UTC (found by schemathesis): a 400, not a 500.
    [(status, body)] = _post_all(
        store, "/materialize-incremental", [{"end_ts": "0001-01-01T00:00:00+00:01"}]
    )
    assert (status, body["error"]) == (400, "BadRequest"), body


def test_unknown_paths_and_methods_answer_json(store: FeatureStore) -> None:
    async def main() -> None:
        async with client_for(store) as client:
            missing = await client.get("/nope")
            assert missing.status_code == 404
            assert error_of(missing)["error"] == "HTTPException"
            wrong = await client.get("/get-online-features")
            assert wrong.status_code == 405

    run(main)


def test_redis_down_is_503_and_the_server_recovers(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    store = server_store(tmp_path, redis_config(redis_clean))

    async def main() -> None:
        async with client_for(store) as client:
            assert (await client.post("/push", json=push_body([1], [5]))).status_code == 200
            with redis_clean.stopped():
                read = await client.post("/get-online-features", json=fresh_request([1]))
                assert read.status_code == 503, read.text
                assert error_of(read)["error"] == "OnlineStoreError"
                push = await client.post("/push", json=push_body([1], [6]))
                assert push.status_code == 503
                health = await client.get("/health")
                assert health.status_code == 503
                assert health.json()["status"] == "unhealthy"
            # Redis is back (empty: the test server keeps no data): answers resume.
            read = await client.post("/get-online-features", json=fresh_request([1]))
            assert read.status_code == 200
            assert (await client.post("/push", json=push_body([1], [7]))).status_code == 200
            read = await client.post("/get-online-features", json=fresh_request([1]))
            assert read.json()["results"][1]["values"] == [7]
            assert (await client.get("/health")).status_code == 200

    run(main)
    store.online_store.close()


def test_other_methods_on_the_hot_paths_are_405(store: FeatureStore) -> None:
    async def main() -> None:
        async with client_for(store) as client:
            for path in ("/get-online-features", "/push", "/write-to-online-store"):
                for method in ("GET", "PUT", "DELETE", "PATCH", "HEAD"):
                    response = await client.request(method, path)
                    assert response.status_code == 405, (method, path)
                    assert response.headers["allow"] == "POST"
                    if method != "HEAD":
                        assert error_of(response)["error"] == "HTTPException"
                        assert error_of(response)["detail"] == "Method Not Allowed"

    run(main)


def test_an_unexpected_error_is_a_logged_json_500_with_a_request_id(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("boom")

    # The server reads through the packed path when it can, else the general one.
    for name in ("read_online_packed_async", "get_online_features_async"):
        monkeypatch.setattr(store, name, broken)
    monkeypatch.setattr(health, "_probe_read", broken)  # /health, the Starlette path

    async def main() -> None:
        app = create_app(store)
        async with app.router.lifespan_context(app):
            # Answered whole and not raised on: uvicorn keeps the connection for the next
            # request (ASGITransport would re-raise an app exception).
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post("/get-online-features", json=fresh_request([1]))
                assert response.status_code == 500
                rid = response.headers["x-request-id"]
                assert error_of(response) == {
                    "module": "feast.errors",
                    "class": "FeastError",
                    "message": "ZeroDivisionError: boom",
                    "error": "InternalServerError",
                    "detail": "ZeroDivisionError: boom",
                    "request_id": rid,
                }
                assert response.headers["content-type"] == "application/json"
                text = (await client.get("/metrics")).text
                # The client's own id is used when it is a plain token.
                health = await client.get("/health", headers={"x-request-id": "abc-123"})
                assert health.status_code == 500
                assert error_of(health)["request_id"] == "abc-123"
                assert health.headers["x-request-id"] == "abc-123"
                odd = await client.get("/health", headers={"x-request-id": "has space"})
                assert error_of(odd)["request_id"] != "has space"
            assert 'endpoint="/get-online-features",error="InternalServerError"} 1.0' in text
            assert 'endpoint="/get-online-features",method="POST",status="500"} 1.0' in text
        logged = [r for r in caplog.records if r.name == "repast.server"]
        assert logged[0].getMessage() == (
            f"unhandled error on POST /get-online-features (request id {rid})"
        )
        assert "(request id abc-123)" in logged[1].getMessage()
        for record in logged:
            assert record.exc_info is not None
            assert record.exc_info[0] is ZeroDivisionError

    run(main)
