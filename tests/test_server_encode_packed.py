"""`encode_packed_read` (Rust, straight from packed rows) against `encode_online_response` (the
Arrow path): the same request must give the same bytes, for every value type and status."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repast import Entity, FeatureStore, FeatureView, Field, FileSource, _core
from repast.config import RepoConfig
from repast.online.read import PackedRead
from repast.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    Json,
    Map,
    Set,
    String,
    Struct,
    UnixTimestamp,
    Uuid,
)
from repast_server.encode import encode_online_response, encode_packed_read

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
TTL = timedelta(hours=1)

PROFILE = Struct({"n": Int64, "s": String})
INT64S = st.integers(-(2**63), 2**63 - 1)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
JSON_TEXT = _JSON.map(lambda v: orjson.dumps(v).decode())
FEATURES: list[tuple[str, Any, Any]] = [
    # name, Feast type, hypothesis strategy for one value (None = null)
    ("f32", Float32, st.floats(width=32)),
    ("f64", Float64, st.floats()),
    ("i32", Int32, st.integers(-(2**31), 2**31 - 1)),
    ("i64", Int64, st.integers(-(2**63), 2**63 - 1)),
    ("s", String, st.text()),
    ("b", Bytes, st.binary(max_size=20)),
    ("ok", Bool, st.booleans()),
    ("at", UnixTimestamp, st.integers(-(10**10), 10**10)),
    ("f64s", Array(Float64), st.lists(st.none() | st.floats(), max_size=3)),
    ("i64s", Array(Int64), st.lists(st.none() | st.integers(-5, 5), max_size=3)),
    ("ss", Array(String), st.lists(st.text(string.printable, max_size=4), max_size=3)),
    # Stored as JSON text (or checked text / unique lists) and printed by Rust as the JSON value.
    ("m", Map, st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3)),
    ("prof", PROFILE, st.fixed_dictionaries({"n": st.none() | INT64S, "s": st.text()})),
    ("cfg", Json, JSON_TEXT),
    ("tags", Set(String), st.lists(st.text(max_size=3), max_size=3)),
    ("uid", Uuid, st.uuids().map(str)),
]

# One view argument of `_core.packed_response_json`, as its stub types it.
PackedView = tuple[str, list[bytes | None], list[int], list[int], pa.Array | None, int]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    tmp = tmp_path_factory.mktemp("packed")
    config = RepoConfig.model_validate(
        {
            "project": "packed",
            "registry": str(tmp / "registry.json"),
            "online_store": {"type": "sqlite", "path": str(tmp / "online.db")},
            "repo_path": tmp,
        }
    )
    fs = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"])
    source = FileSource(name="src", path=str(tmp / "src.parquet"), timestamp_field="ts")
    schema = [Field(name="user_id", dtype=Int64)]
    schema += [Field(name=name, dtype=kind) for name, kind, _ in FEATURES]
    every = FeatureView(name="every", entities=[user], ttl=TTL, schema=schema, source=source)
    fresh = FeatureView(
        name="fresh",
        entities=[user],
        ttl=timedelta(0),
        schema=[Field(name="user_id", dtype=Int64), Field(name="score", dtype=Float64)],
        source=source,
    )
    # No entities: every entity row reads the one stored row (a fan-out of zeros).
    totals = FeatureView(
        name="totals",
        entities=[],
        ttl=timedelta(0),
        schema=[Field(name="total", dtype=Int64)],
        source=source,
    )
    fs.apply([user, every, fresh, totals], skip_source_validation=True)
    yield fs
    fs.online_store.close()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    micros = int(NOW.timestamp() * 1_000_000)
    monkeypatch.setattr("repast.online.read.now_micros", lambda: micros)


def _arrow_column(name: str, kind: Any, values: list[Any]) -> pa.Array:
    if name == "at":
        stamps = [None if v is None else datetime.fromtimestamp(v, UTC) for v in values]
        return pa.array(stamps, pa.timestamp("us", tz="UTC"))
    return pa.array(values, kind.to_arrow_type())


@st.composite
def _rows(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n, unique=True))
    # Event times on both sides of the ttl edge, with 0, 3 and 6 fraction digits.
    ages = st.sampled_from([0, 1, 999, 1000, 250_000, 3_599_999_999, 3_600_000_000, 3_600_000_001])
    stamps = [NOW - timedelta(microseconds=draw(ages)) for _ in range(n)]
    columns: dict[str, Any] = {"user_id": pa.array(ids, pa.int64())}
    columns["ts"] = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    for name, kind, values in FEATURES:
        cells = draw(st.lists(st.none() | values, min_size=n, max_size=n))
        columns[name] = _arrow_column(name, kind, cells)
    columns["score"] = pa.array(draw(st.lists(st.floats(), min_size=n, max_size=n)))
    return pa.table(columns)


def _both(
    store: FeatureStore, refs: list[str], entities: dict[str, list[Any]]
) -> tuple[bytes, bytes]:
    async def read() -> tuple[bytes, bytes]:
        packed = await store.read_online_packed_async(refs, entities)
        assert isinstance(packed, PackedRead)
        general = await store.get_online_features_async(refs, entities)
        names = list(entities)
        return encode_packed_read(packed, names), encode_online_response(general, names)

    return asyncio.run(read())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=_rows(),
    ids=st.lists(st.integers(0, 12), min_size=1, max_size=12),
    picks=st.lists(st.sampled_from([n for n, _, _ in FEATURES]), min_size=1, max_size=6),
)
def test_packed_bytes_equal_the_arrow_paths_bytes(
    store: FeatureStore, rows: pa.Table, ids: list[int], picks: list[str]
) -> None:
    store.write_to_online_store("every", rows)
    store.write_to_online_store("fresh", rows.select(["user_id", "ts", "score"]))
    total = pa.table({"ts": rows.column("ts"), "total": rows.column("i64")}).slice(0, 1)
    store.write_to_online_store("totals", total)
    # Repeated ids fan out; ids 10..12 were never written (NOT_FOUND); features repeat.
    refs = [f"every:{p}" for p in dict.fromkeys(picks)] + ["fresh:score", "totals:total"]
    packed, general = _both(store, refs, {"user_id": ids})
    assert packed == general


def test_key_columns_keep_the_requests_order_and_full_names(store: FeatureStore) -> None:
    rows = pa.table(
        {
            "user_id": pa.array([1], pa.int64()),
            "ts": pa.array([NOW], pa.timestamp("us", tz="UTC")),
            "score": pa.array([0.25]),
        }
    )
    store.write_to_online_store("fresh", rows)

    async def read() -> tuple[bytes, bytes]:
        refs = ["fresh:score"]
        packed = await store.read_online_packed_async(refs, {"user_id": [1, 2]}, True)
        general = await store.get_online_features_async(refs, {"user_id": [1, 2]}, True)
        assert packed is not None
        return encode_packed_read(packed, ["user_id"]), encode_online_response(general, ["user_id"])

    packed, general = asyncio.run(read())
    assert packed == general
    assert packed.startswith(b'{"results":[{"values":[1,2],"statuses":["PRESENT","PRESENT"]')
    assert packed.endswith(b'"metadata":{"feature_names":["user_id","fresh__score"]}}')


def test_a_corrupt_stored_row_is_an_error_naming_view_and_row() -> None:
    good = bytes([1]) + bytes(8) + bytes([0x91, 0xC3])  # version, time 0 (flipped), [true]
    rows: list[bytes | None] = [good, b"\x01short"]
    views: list[PackedView] = [("v", rows, [7], [0], None, 0)]
    with pytest.raises(_core.DecodeError, match="^column 'v' row 1: corrupt packed row: "):
        _core.packed_response_json(views, [(0, 0)], 2, 0)


def test_inconsistent_arguments_are_refused() -> None:
    views: list[PackedView] = [("v", [None, None], [7], [0], pa.array([0, 5], pa.int32()), 0)]
    with pytest.raises(_core.InvalidValueError, match="fan-out index 5 past the 2 rows read"):
        _core.packed_response_json(views, [(0, 0)], 2, 0)
    with pytest.raises(_core.InvalidValueError, match="output 0 names view 3"):
        _core.packed_response_json([], [(3, 0)], 0, 0)


def test_every_double_prints_as_orjson_prints_it() -> None:
    """200 k random bit patterns (subnormals, huge and tiny exponents, infinities)
    and as many float32 bit patterns, through the Rust writer and through orjson."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, 200_000, dtype=np.uint64, endpoint=False)
    doubles = bits.view(np.float64)
    stamps = pa.array(np.zeros(len(doubles), dtype="datetime64[us]"), pa.timestamp("us", tz="UTC"))
    floats = rng.integers(0, 2**32, 200_000, dtype=np.uint32, endpoint=False).view(np.float32)
    for values, code in ((doubles, 5), (floats, 6)):
        rows = _core.encode_packed_rows([pa.array(values)], [code], stamps).to_pylist()
        written = _core.packed_response_json(
            [("v", rows, [code], [0], None, 0)], [(0, 0)], len(rows), 0
        )
        got = orjson.loads(written[len(b'{"values":') : written.index(b'],"statuses"') + 1])
        expected = [
            # A scalar NaN is stored as null, as Feast stores it (docs/internals.md).
            None if v != v else "Infinity" if v == np.inf else "-Infinity" if v == -np.inf else v
            for v in values.tolist()
        ]
        assert written.startswith(b'{"values":[')
        assert got == expected
        # Byte for byte too: orjson's own text of the same doubles.
        finite = [v for v in expected if isinstance(v, float)]
        text = written[len(b'{"values":[') : written.index(b'],"statuses"')]
        cells = [c for c in text.split(b",") if not c.startswith(b'"') and c != b"null"]
        assert cells == [orjson.dumps(v) for v in finite]
