"""Adversarial requests against a real `repast serve` with Redis, run once with hiredis and
once with redis-py's own reply parser (`REPAST_REDIS_PARSER=python`): hypothesis builds
bodies around each endpoint's schema (empty and ragged columns, nulls, floats, huge and
negative integers, strings for numbers, NaN/Infinity, nested values, unicode, duplicate keys,
ODFV request data of every type), and for each one the server must answer within the
deadline, not with a 5xx, and then answer a valid read 200 on the same keep-alive connection.
Then schemathesis over every operation of `/openapi.json`, positive and negative data.

The example counts are fixed and small for CI (derandomized: the same examples every run);
`make fuzz` sets REPAST_FUZZ_EXAMPLES for a long random run.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_helpers import (
    DEMO_FEATURES,
    PARSERS,
    ServerProcess,
    demo_push,
    demo_read,
    demo_repo,
    error_of,
    redis_config,
    serve_process,
)
from services import RedisServer

LONG_RUN = "REPAST_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("REPAST_FUZZ_EXAMPLES", "60"))
# An answer at all within this: far above the server's own 10 s request deadline.
ANSWER_WITHIN = 30.0

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,
    database=None,
    # One keep-alive connection is shared by the examples on purpose: each must leave it good.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.fixture(scope="module", params=list(PARSERS))
def server(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    repo = demo_repo(tmp, redis_config(redis_server))
    with serve_process(repo, tmp, env=PARSERS[request.param]) as process:
        pushed = httpx.post(process.url + "/push", json=demo_push([1001, 1002], [3, 4]))
        assert pushed.status_code == 200, pushed.text
        yield process
    assert "Traceback" not in process.log(), process.log()


# -- bodies ----------------------------------------------------------------------------------


@dataclass
class Obj:
    """A JSON object as written: its pairs in order, a key may repeat."""

    pairs: list[tuple[str, Any]]


def _dump(value: Any) -> str:
    if isinstance(value, Obj):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict):
        return _dump(Obj(list(value.items())))
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    # allow_nan writes NaN and Infinity, which are not JSON: the parser must refuse them.
    return json.dumps(value, allow_nan=True)


ODD_VALUES = [
    *(1001, 1002, 1001.0, 1001.7, -1, 0, 2**63, -(2**63) - 1, 1e308),
    *("1001", "1001.5", "x", "", "NaN", "Infinity", "2024-01-01T00:00:00Z", "\x00", "é😀"),
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-5, max_value=1005),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_VALUES),
    st.text(max_size=8),
)
NESTED = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


def _column(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A column: mostly a list of plausible values, with odd ones mixed in; else anything."""
    return st.one_of(
        st.lists(good, max_size=5),
        st.lists(st.one_of(good, NESTED), max_size=5),
        st.just([]),
        NESTED,
    )


@st.composite
def _object(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> Obj:
    """Some of `fields` (a key may come twice), in any order, plus unknown keys."""
    names = draw(st.lists(st.sampled_from([*fields, "x", ""]), max_size=len(fields) + 2))
    wanted = [n for n in fields if draw(st.integers(0, 3)) > 0]  # each field usually present
    pairs = []
    for name in draw(st.permutations([*wanted, *names])):
        value = draw(fields[name]) if name in fields else draw(NESTED)
        pairs.append((name, value))
    return Obj(pairs)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, NESTED)


IDS = st.one_of(st.integers(1000, 1003), st.sampled_from(ODD_VALUES))
FEATURES = st.sampled_from(
    [*DEMO_FEATURES, "transformed_conv_rate:conv_rate_plus_val1", "driver_hourly_stats:nope", ""]
)
TIMES = st.one_of(
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-13-01", "now"]),
    st.datetimes().map(lambda d: d.isoformat()),
)
DF = _object(
    {
        "driver_id": _column(IDS),
        "event_timestamp": _column(TIMES),
        "created": _column(TIMES),
        "conv_rate": _column(st.floats(allow_nan=True) | SCALARS),
        "acc_rate": _column(SCALARS),
        "avg_daily_trips": _column(st.integers(-(2**64), 2**64) | SCALARS),
    }
)
BODIES: dict[str, st.SearchStrategy[Any]] = {
    "/get-online-features": _object(
        {
            "entities": _field(
                _object(
                    {
                        "driver_id": _column(IDS),
                        "val_to_add": _column(SCALARS),
                        "val_to_add_2": _column(SCALARS),
                    }
                )
            ),
            "features": _field(st.lists(FEATURES, max_size=4)),
            "feature_service": _field(
                st.sampled_from(["driver_activity_v1", "driver_activity_v2", "v9"])
            ),
            "full_feature_names": _field(st.booleans()),
        }
    ),
    "/push": _object(
        {
            "push_source_name": _field(st.sampled_from(["driver_stats_push_source", "nope"])),
            "df": _field(DF),
            "to": _field(st.sampled_from(["online", "offline", "online_and_offline", "x"])),
            "allow_registry_cache": _field(st.booleans()),
        }
    ),
    "/write-to-online-store": _object(
        {
            "feature_view_name": _field(
                st.sampled_from(["driver_hourly_stats", "driver_hourly_stats_fresh", "nope"])
            ),
            "df": _field(DF),
        }
    ),
    "/materialize": _object(
        {
            "feature_views": _field(st.lists(st.sampled_from(["driver_hourly_stats", "x"]))),
            "start_ts": _field(TIMES),
            "end_ts": _field(TIMES),
            "disable_event_timestamp": _field(st.booleans()),
        }
    ),
    "/materialize-incremental": _object(
        {
            "feature_views": _field(st.lists(st.sampled_from(["driver_hourly_stats", "x"]))),
            "end_ts": _field(TIMES),
        }
    ),
}
# Ids near the stored ones: integers, the same as floats or strings, fractions between them.
GOOD_IDS = st.one_of(
    st.integers(1000, 1003),
    st.integers(1000, 1003).map(float),
    st.floats(999, 1004),
    st.sampled_from(["1001", "1001.5", True, 1001.7]),
    IDS,
)
NOW = "2030-01-01T00:00:00Z"


@st.composite
def _near_valid_read(draw: st.DrawFn) -> dict[str, Any]:
    """A read that is valid but for its values: equal column lengths (none included), known
    features, ODFV request data of any type."""
    n = draw(st.integers(0, 3))
    entities: dict[str, Any] = {"driver_id": draw(st.lists(GOOD_IDS, min_size=n, max_size=n))}
    odfv = draw(st.booleans())
    if odfv:
        for name in ("val_to_add", "val_to_add_2"):
            entities[name] = draw(
                st.lists(st.one_of(st.integers(), NESTED), min_size=n, max_size=n)
            )
    features = ["transformed_conv_rate:conv_rate_plus_val1"] if odfv else []
    features += draw(st.lists(st.sampled_from(DEMO_FEATURES), min_size=0 if odfv else 1))
    return {"entities": entities, "features": features}


@st.composite
def _near_valid_df(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 3))

    def column(good: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.one_of(good, good, NESTED), min_size=n, max_size=n))

    return {
        "driver_id": column(GOOD_IDS),
        "event_timestamp": column(st.just(NOW) | TIMES),
        "created": column(st.just(NOW) | TIMES),
        "conv_rate": column(st.floats(allow_nan=True, allow_infinity=True)),
        "acc_rate": column(st.floats(-1, 1)),
        "avg_daily_trips": column(st.integers(-(2**64), 2**64) | st.floats()),
    }


NEAR_VALID: dict[str, st.SearchStrategy[Any]] = {
    "/get-online-features": _near_valid_read(),
    "/push": _near_valid_df().map(
        lambda df: {"push_source_name": "driver_stats_push_source", "df": df}
    ),
    "/write-to-online-store": _near_valid_df().map(
        lambda df: {"feature_view_name": "driver_hourly_stats_fresh", "df": df}
    ),
    "/materialize": st.fixed_dictionaries(
        {"feature_views": st.just(["driver_hourly_stats"]), "start_ts": TIMES, "end_ts": TIMES}
    ),
    "/materialize-incremental": st.fixed_dictionaries(
        {"feature_views": st.just(["driver_hourly_stats"]), "end_ts": TIMES}
    ),
}
QUERIES = st.sampled_from(["", "?async=true", "?force=1", "?async=maybe", "?async=true&force=true"])


def _raw(path: str) -> st.SearchStrategy[bytes]:
    """Bodies for `path` as JSON text: near-valid ones (bad values in the right places) and
    schema-shaped ones (fields missing, repeated, of other types), mostly; else any JSON
    value, or bytes."""
    return st.one_of(
        NEAR_VALID[path].map(lambda b: _dump(b).encode()),
        NEAR_VALID[path].map(lambda b: _dump(b).encode()),
        BODIES[path].map(lambda b: _dump(b).encode()),
        BODIES[path].map(lambda b: _dump(b).encode()),
        NESTED.map(lambda b: _dump(b).encode()),
        st.binary(max_size=64),
    )


# -- the checks ------------------------------------------------------------------------------


def _exchange(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None
) -> tuple[int, bytes]:
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _answers_then_serves(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None
) -> None:
    """`body` is answered (within the socket timeout) without a 5xx, the connection stays
    open, and a valid read on that same connection answers 200."""
    if conn.sock is None:
        conn.connect()
    sock = conn.sock
    status, answer = _exchange(conn, method, path, body)
    assert status < 500, (path, body, status, answer)
    assert conn.sock is sock, ("the server closed the connection", path, body, answer)
    if status == 200 and path == "/get-online-features":
        _read_as_asked(body, answer)
    if status == 200 and path in ("/push", "/write-to-online-store"):
        _written_as_given(body)
    status, answer = _exchange(conn, "POST", "/get-online-features", VALID_READ)
    assert status == 200, (path, body, status, answer)
    assert conn.sock is sock, ("the server closed the connection", path, body)


VALID_READ = json.dumps(demo_read([1001, 1002])).encode()


def _integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        # Past 2**53 a float may stand for a neighbouring integer: not an id.
        return value.is_integer() and abs(value) <= 2**53
    if isinstance(value, str):
        try:
            return _integral(int(value))
        except ValueError:
            return False
    return False


def _written_as_given(body: bytes | None) -> None:
    """A write answered 200 held integers where the views declare them (ids and trips)."""
    request = json.loads(body or b"null")
    df = request["df"]
    assert all(_integral(v) for v in df.get("driver_id", [])), ("a 200 for a bad id", df)
    trips = df.get("avg_daily_trips", [])
    assert all(v is None or _integral(v) for v in trips), ("a 200 for bad trips", df)


def _read_as_asked(body: bytes | None, answer: bytes) -> None:
    """A read answered 200 asked only for entities that exist as asked: every driver id an
    integer (a whole float or an integer string may spell one), answered in order."""
    request = json.loads(body or b"null")
    ids = request["entities"].get("driver_id")
    if ids is None:
        return  # a feature service or view without this key
    assert all(_integral(v) for v in ids), ("a 200 for an entity that is no integer", ids)
    got = json.loads(answer)["results"][0]["values"]
    assert got == [int(v) for v in ids], (ids, got)


@pytest.fixture
def conn(server: ServerProcess) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=ANSWER_WITHIN)
    yield connection
    connection.close()


@pytest.mark.parametrize("path", list(BODIES))
@FUZZ
@given(data=st.data())
def test_no_body_gets_a_5xx_or_costs_the_connection(
    conn: http.client.HTTPConnection, path: str, data: st.DataObject
) -> None:
    query = data.draw(QUERIES) if path.startswith("/materialize") else ""
    _answers_then_serves(conn, "POST", path + query, data.draw(_raw(path)))


@FUZZ
@given(
    path=st.sampled_from(["/health", "/metrics", "/openapi.json", "/nope", "/push"]),
    method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT"]),
    query=st.text(max_size=10).map(lambda q: "?" + q.encode("utf-8").hex()),
)
def test_no_method_or_path_gets_a_5xx_or_costs_the_connection(
    conn: http.client.HTTPConnection, path: str, method: str, query: str
) -> None:
    if conn.sock is None:
        conn.connect()
    conn.request(method, path + query)
    response = conn.getresponse()
    response.read()
    assert response.status < 500 or (path == "/health" and response.status == 503)
    status, _ = _exchange(conn, "POST", "/get-online-features", VALID_READ)
    assert status == 200


@pytest.mark.parametrize(
    ("values", "row"),
    [(["x"], 0), ([1, 2.5], 1), ([True], 0), ([None, [1]], 1), ([{"a": 1}], 0)],
)
def test_odfv_request_data_of_the_wrong_type_is_a_400_and_the_connection_lives(
    conn: http.client.HTTPConnection, values: list[Any], row: int
) -> None:
    # Issue 13: a 500 ArrowInvalid, and a reset for the next request on the connection.
    n = len(values)
    body = demo_read([1001] * n, val_to_add=values, val_to_add_2=[1] * n)
    body["features"] = ["transformed_conv_rate:conv_rate_plus_val1"]
    conn.connect()
    status, answer = _exchange(conn, "POST", "/get-online-features", json.dumps(body).encode())
    assert status == 400, answer
    assert f"request data 'val_to_add': row {row} is" in error_of(answer)["detail"]
    _answers_then_serves(conn, "POST", "/get-online-features", VALID_READ)


def test_schemathesis_finds_no_server_error_on_any_operation(server: ServerProcess) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--mode",
            "all",  # positive and negative data
            "--max-examples",
            str(EXAMPLES if LONG_RUN else 30),
            "--seed",
            "13",
            "--request-timeout",
            str(ANSWER_WITHIN),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"entities": {"driver_id": []}, "features": DEMO_FEATURES}, 200),
        (demo_read([1001.7]), 400),
        (demo_read([1001, 1001.7]), 400),
        (demo_read([1001.0]), 200),
        (demo_read(["1001"]), 200),
    ],
)
def test_the_issue_13_reads_are_answered_on_a_live_connection(
    conn: http.client.HTTPConnection, body: dict[str, Any], status: int
) -> None:
    # An empty entity list wedged every read of the worker (hiredis); 1001.7 was read as 1001.
    conn.connect()
    got, answer = _exchange(conn, "POST", "/get-online-features", json.dumps(body).encode())
    assert got == status, answer
    if status == 200 and not body["entities"]["driver_id"]:
        assert all(r["values"] == [] for r in json.loads(answer)["results"])
    _answers_then_serves(conn, "POST", "/get-online-features", VALID_READ)
