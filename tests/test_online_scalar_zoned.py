"""ScalarMap (SCALAR_MAP: a map with int, float or bool keys) and ZonedTimestamp
(ZONED_TIMESTAMP: an instant and its zone) against Feast 0.67 itself
(tests/golden/nested_values.json, `scalar_map_cases` and `zoned_timestamp_cases`, recorded by
scripts/record_feast_nested_values.py): the bytes `layout: feast` writes, reads of Feast's bytes,
and every write path (push, write_to_online_store, /push, materialize) read back through the SDK
and the server on every store, plus get_historical_features."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from online_stores import STORES, online_config, store_on
from repast import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    _core,
    on_demand_feature_view,
)
from repast.config import RepoConfig
from repast.errors import InvalidValueError
from repast.online.stored_types import json_column, python_values
from repast.types import Int64, ScalarMap, String, ZonedTimestamp
from scalar_map_cases import STORED, case_dict, entries, read_back
from server_helpers import client_for, run

GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "nested_values.json").read_bytes())
# `key_kind` cases (bytes, UUID, decimal, datetime keys) are checked in test_scalar_map_keys.py.
SCALAR_MAPS = [c for c in GOLDEN["scalar_map_cases"] if "hex" in c and "key_kind" not in c]
SCALAR_MAPS_REFUSED = [
    c for c in GOLDEN["scalar_map_cases"] if "feast_error" in c and "key_kind" not in c
]
ZONED = [c for c in GOLDEN["zoned_timestamp_cases"] if "hex" in c]
SM, ZT = 47, 48
T = datetime(2024, 1, 1, 12, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def _pairs_id(case: dict[str, Any]) -> str:
    return orjson.dumps(case["python_pairs"]).decode()[:40]


def _zoned_id(case: dict[str, Any]) -> str:
    value = case["python_value"]
    return "null" if value is None else f"{value['isoformat']}:{value['tzinfo']}"


def _as_dict(pairs: list[list[Any]]) -> dict[Any, Any]:
    return {k: v for k, v in pairs}


def _key_text(pairs: list[list[Any]]) -> str:
    """The dict as `json.dumps` writes it (keys as their JSON text): a push body's form."""
    return orjson.dumps(_as_dict(pairs), option=orjson.OPT_NON_STR_KEYS).decode()


def _tz(spec: str) -> tzinfo | None:
    if spec == "naive":
        return None
    if spec == "utc":
        return UTC
    kind, name = spec.split(":", 1)
    if kind == "zoneinfo":
        return ZoneInfo(name)
    offset = datetime.fromisoformat(f"2000-01-01T00:00:00{name}").utcoffset()
    assert offset is not None
    return timezone(offset)


def _datetime(value: dict[str, str]) -> datetime:
    """The datetime a case was made from (same instant, same tzinfo)."""
    parsed = datetime.fromisoformat(value["isoformat"])
    tz = _tz(value["tzinfo"])
    return parsed if tz is None else parsed.astimezone(tz)


def _is_feasts_read(got: datetime | None, read_back: dict[str, str] | None) -> bool:
    if read_back is None or got is None:
        return got is None and read_back is None
    return got.isoformat() == read_back["isoformat"] and got.tzinfo == _tz(read_back["tzinfo"])


# --- bytes and reads against Feast's ----------------------------------------------------------


@pytest.mark.parametrize("case", SCALAR_MAPS, ids=_pairs_id)
def test_scalar_map_bytes_are_feasts(case: dict[str, Any]) -> None:
    pairs = case["python_pairs"]
    for text in (orjson.dumps(pairs).decode(), _key_text(pairs)):
        encoded = _core.encode_nested(pa.array([text]), SM, "m")[0].as_py()
        # Entries in the dict's order; a Map inside a value has its keys sorted (protobuf's
        # deterministic form of Feast's runtime order).
        assert encoded.hex() == case["hex_deterministic"], text
        if "map_order" not in case:
            assert encoded.hex() == case["hex"], text  # Feast's own bytes, exactly
        stored = _core.nested_json_text(pa.array([text]), SM, None, "m")
        assert _core.encode_nested(stored, SM, "m")[0].as_py() == encoded


@pytest.mark.parametrize("case", SCALAR_MAPS, ids=_pairs_id)
def test_feasts_scalar_map_bytes_read_as_feasts_sdk(case: dict[str, Any]) -> None:
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), SM, None, "m")
    got = python_values(json_column(decoded), SM)[0]
    want = _as_dict(case["read_back_pairs"])
    assert list(got.items()) == list(want.items())
    assert [type(k) for k in got] == [type(k) for k in want]


@pytest.mark.parametrize("case", SCALAR_MAPS_REFUSED, ids=_pairs_id)
def test_scalar_maps_feast_refuses_are_refused_naming_the_row(case: dict[str, Any]) -> None:
    cells = pa.array(["{}", orjson.dumps(case["python_pairs"]).decode()])
    with pytest.raises(InvalidValueError, match="column 'm' row 1: not a SCALAR_MAP value"):
        _core.nested_json_text(cells, SM, None, "m")
    with pytest.raises(InvalidValueError, match="column 'm' row 1"):
        _core.encode_nested(cells, SM, "m")


@pytest.mark.parametrize("case", ZONED, ids=_zoned_id)
def test_zoned_timestamp_bytes_and_reads_are_feasts(case: dict[str, Any]) -> None:
    value = case["python_value"]
    column = pa.array([None if value is None else _datetime(value)])
    assert _core.encode_nested(column, ZT, "z")[0].as_py().hex() == case["hex"]
    # Stored text (packed, SQLite) → Feast's bytes → the same text.
    text = _core.zoned_text(column, "z")
    assert _core.encode_nested(text, ZT, "z")[0].as_py().hex() == case["hex"]
    assert _is_feasts_read(python_values(text, ZT)[0], case["read_back"])
    decoded = _core.decode_nested(pa.array([bytes.fromhex(case["hex"])]), ZT, None, "z")
    assert decoded.to_pylist() == text.to_pylist()
    assert _is_feasts_read(python_values(decoded, ZT)[0], case["read_back"])


def test_a_number_is_not_a_zoned_timestamp_but_iso_text_is() -> None:
    # Feast's SDK refuses both; JSON (a push body) has no datetime, so Repast reads ISO text.
    refused = [c for c in GOLDEN["zoned_timestamp_cases"] if "feast_error" in c]
    number = next(c["python_value"] for c in refused if isinstance(c["python_value"], int))
    with pytest.raises(_core.UnsupportedTypeError, match="got Arrow Int64"):
        _core.zoned_text(pa.array([number]), "z")
    text = next(c["python_value"] for c in refused if isinstance(c["python_value"], str))
    assert _core.zoned_text(pa.array([text]), "z").to_pylist() == ["2024-03-10T06:30:00+00:00[UTC]"]


def test_a_struct_of_timestamp_and_zone_gives_each_row_its_zone() -> None:
    """The Arrow form of per-row zones (a Parquet file's, a JSON body's `{timestamp, zone}`)."""
    instants = pa.array([T, T, None], pa.timestamp("us", tz="UTC"))
    column = pa.StructArray.from_arrays(
        [instants, pa.array(["Asia/Tokyo", None, "UTC"])], names=["timestamp", "zone"]
    )
    assert _core.zoned_text(column, "z").to_pylist() == [
        "2024-01-01T21:00:00+09:00[Asia/Tokyo]",
        "2024-01-01T12:00:00+00:00[UTC]",  # no zone given: the timestamp column's own
        None,
    ]
    from_json = pa.array([{"timestamp": "2024-01-01T12:00:00Z", "zone": "Europe/Paris"}])
    assert _core.zoned_text(from_json, "z").to_pylist() == [
        "2024-01-01T13:00:00+01:00[Europe/Paris]"
    ]
    unknown = pa.array([{"timestamp": "2024-01-01T12:00:00Z", "zone": "Nowhere"}])
    with pytest.raises(InvalidValueError, match="column 'z' row 0: .*unknown time zone"):
        _core.zoned_text(unknown, "z")


# --- every store and write path ----------------------------------------------------------------


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    server = request.getfixturevalue("redis_clean") if request.param != "sqlite" else None
    fs = store_on(request.param, server, tmp_path, "typed_keys")
    yield fs
    fs.online_store.close()


def _apply(store: FeatureStore) -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(name="t_src", path="data/t.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="t_push", batch_source=source)
    schema = [
        Field(name="driver_id", dtype=Int64),
        Field(name="m", dtype=ScalarMap),
        Field(name="z", dtype=ZonedTimestamp),
        Field(name="s", dtype=String),
    ]
    view = FeatureView(name="typed", entities=[driver], schema=schema, source=push)
    store.apply([driver, source, push, view], skip_source_validation=True)


def _table(ids: list[int], maps: pa.Array, zoned: pa.Array) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T] * len(ids), pa.timestamp("us", tz="UTC")),
            "m": maps,
            "z": zoned,
            "s": pa.array(["x"] * len(ids)),
        }
    )


REFS = ["typed:m", "typed:z"]


def _served(store: FeatureStore, ids: list[int], refs: list[str] = REFS) -> dict[str, list[Any]]:
    async def post() -> Any:
        async with client_for(store) as client:
            body = {"features": refs, "entities": {"driver_id": ids}}
            response = await client.post("/get-online-features", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    body = run(post)
    names = body["metadata"]["feature_names"]
    return {n: r["values"] for n, r in zip(names, body["results"], strict=True)}


def test_sdk_writes_read_back_as_feasts_sdk_and_server(store: FeatureStore) -> None:
    _apply(store)
    # What a Parquet file or a DataFrame of dicts with int keys holds.
    maps = pa.array([[(2, "b"), (1, "a")], [(1, None)], None], pa.map_(pa.int64(), pa.string()))
    times = [datetime(2024, 3, 10, 1, 30, tzinfo=NY), datetime(2024, 7, 1, 12, tzinfo=NY), None]
    store.push("t_push", _table([1, 2, 3], maps, pa.array(times)))
    got = store.get_online_features(REFS, {"driver_id": [1, 2, 3]}).to_dict()
    assert got["m"] == [{2: "b", 1: "a"}, {1: None}, None]
    assert list(got["m"][0]) == [2, 1]  # the dict's order, keys still ints
    assert got["z"] == times
    assert [v.tzinfo for v in got["z"][:2]] == [NY, NY]
    response = store.get_online_features(REFS, {"driver_id": [1, 2, 3]})
    df = response.to_df()
    assert df["m"].tolist() == got["m"]
    assert df["z"].tolist()[:2] == times[:2]  # pandas holds them in a column of their zone
    assert df["z"].isna().tolist() == [False, False, True]
    # Arrow: the instant and the zone, the struct every writer takes back.
    arrow = response.to_arrow()
    assert arrow.schema.field("z").type == pa.struct(
        [("timestamp", pa.timestamp("us", tz="UTC")), ("zone", pa.string())]
    )
    assert arrow.column("z").to_pylist()[0] == {"timestamp": times[0], "zone": "America/New_York"}
    assert _core.zoned_text(arrow.column("z").combine_chunks(), "z").to_pylist()[:2] == [
        "2024-03-10T01:30:00-05:00[America/New_York]",
        "2024-07-01T12:00:00-04:00[America/New_York]",
    ]
    # Feast's server answers the isoformat in the value's zone; a ScalarMap as `json.dumps` has it.
    served = _served(store, [1, 2, 3])
    assert served["m"] == [{"2": "b", "1": "a"}, {"1": None}, None]
    # Without a zoned feature the packed read goes out through Rust: the same JSON.
    assert _served(store, [1, 2, 3], ["typed:m"])["m"] == served["m"]
    assert served["z"] == ["2024-03-10T01:30:00-05:00", "2024-07-01T12:00:00-04:00", None]
    if store.layout == "redis-feast":  # type: ignore[attr-defined]
        # Feast's own bytes for {1: None} and for 2024-03-10T01:30:00-05:00 in New York.
        feast_map = next(c["hex"] for c in SCALAR_MAPS if c["python_pairs"] == [[1, None]])
        feast_time = next(
            c["hex"]
            for c in ZONED
            if c["python_value"] and c["python_value"]["isoformat"] == "2024-03-10T01:30:00-05:00"
        )
        assert _feast_fields(store, 2)[0].hex() == feast_map
        assert _feast_fields(store, 1)[1].hex() == feast_time


def _feast_fields(store: FeatureStore, driver_id: int) -> list[bytes]:
    key = _core.serialize_entity_keys(["driver_id"], [pa.array([driver_id])], [4])[0].as_py()
    client = redis.Redis.from_url(store.redis_url)  # type: ignore[attr-defined]
    try:
        fields = _core.feature_field_names("typed", ["m", "z"])
        stored = client.hmget(key + b"typed_keys", fields)
    finally:
        client.close()
    return [_bytes(value) for value in stored]


def _post_push(store: FeatureStore, body: dict[str, Any]) -> httpx.Response:
    """POST /push of `body` (columns of source `t_push`) to the store's server."""

    async def post() -> httpx.Response:
        async with client_for(store) as client:
            return await client.post("/push", json={"push_source_name": "t_push", "df": body})

    return run(post)


def _bytes(value: bytes | str | None) -> bytes:
    assert isinstance(value, bytes), value  # no decode_responses: redis-py returns bytes
    return value


def test_push_bodies_write_typed_keys_and_zones(store: FeatureStore) -> None:
    _apply(store)
    df = {
        "driver_id": [1, 2, 3],
        "event_timestamp": ["2024-01-01T12:00:00Z"] * 3,
        # Keys as `json.dumps` writes them, or [key, value] pairs.
        "m": [{"1": "a", "2.5": [1, 2]}, [[True, {"x": 1}], [False, None]], None],
        # ISO 8601 with an offset, with a zone name, or naive (UTC).
        "z": [
            "2024-03-10T06:30:00+05:30",
            "2024-11-03T01:30:00-05:00[America/New_York]",
            "2024-03-10T06:30:00",
        ],
        "s": ["x"] * 3,
    }
    assert _post_push(store, df).status_code == 200
    got = store.get_online_features(REFS, {"driver_id": [1, 2, 3]}).to_dict()
    assert got["m"] == [{1: "a", 2.5: [1, 2]}, {True: {"x": 1}, False: None}, None]
    assert [type(k) for k in got["m"][0]] == [int, float]
    assert got["z"][0] == datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
    assert got["z"][0].tzinfo == timezone(timedelta(hours=5, minutes=30))
    assert got["z"][1].tzinfo == NY
    assert got["z"][1].fold == 1  # the repeated hour's second pass
    assert got["z"][2].tzinfo == UTC
    served = _served(store, [1, 2, 3])
    assert served["z"] == [
        "2024-03-10T06:30:00+05:30",
        "2024-11-03T01:30:00-05:00",
        "2024-03-10T06:30:00+00:00",
    ]
    assert served["m"][1] == {"true": {"x": 1}, "false": None}
    # /write-to-online-store takes the same body.
    one = {
        "driver_id": [4],
        "event_timestamp": ["2024-01-01T12:00:00Z"],
        "m": [[[7, "q"]]],
        "z": ["2024-07-01T08:00:00+02:00[Europe/Paris]"],
        "s": ["x"],
    }

    async def write() -> httpx.Response:
        async with client_for(store) as client:
            body = {"feature_view_name": "typed", "df": one}
            return await client.post("/write-to-online-store", json=body)

    assert run(write).status_code == 200
    four = store.get_online_features(REFS, {"driver_id": [4]}).to_dict()
    assert four["m"] == [{7: "q"}]
    assert four["z"] == [datetime(2024, 7, 1, 8, tzinfo=ZoneInfo("Europe/Paris"))]
    # A string key (Feast refuses them) or an unknown zone: 4xx naming feature and row;
    # nothing of the body is written.
    for column, bad, why in [
        ("m", [{"1": "x"}, {"a": 1}, None], "column 'm' row 1: not a SCALAR_MAP value: key \"a\""),
        ("z", ["2024-01-01T00:00:00Z", None, "2024-01-01T00:00:00[Mars/Base]"], "column 'z' row 2"),
    ]:
        body = {**df, "driver_id": [7, 8, 9], column: bad}
        response = _post_push(store, body)
        assert response.status_code in (400, 422), response.text
        error = response.json()
        # /push answers as Feast's server does: the error object as JSON text.
        error = orjson.loads(error) if isinstance(error, str) else error
        assert why in error["detail"], response.text
        assert (
            store.get_online_features(["typed:s"], {"driver_id": [7, 8, 9]}).to_dict()["s"]
            == [None] * 3
        )


KEY_JSON = st.one_of(
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.dictionaries(
        st.sampled_from(["bytes", "uuid", "decimal", "timestamp", "other"]),
        st.one_of(
            st.text(max_size=40),
            st.integers(-(2**64), 2**64),
            st.floats(allow_nan=False, allow_infinity=False),
            st.none(),
        ),
        max_size=2,
    ),
    st.lists(st.integers(), max_size=2),
)
MAP_JSON = st.one_of(
    st.lists(st.lists(KEY_JSON, min_size=0, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    KEY_JSON,
)


@settings(max_examples=80, deadline=None)
@given(value=MAP_JSON)
def test_any_scalar_map_json_pushed_is_stored_or_refused_without_harm(
    tmp_path_factory: pytest.TempPathFactory, value: Any
) -> None:
    """Whatever JSON a /push body holds for a ScalarMap: 200 and stored, or 4xx naming the
    feature with the stored row left as it was; never 5xx."""
    store = store_on("sqlite", None, tmp_path_factory.mktemp("fuzz"), "typed_keys")
    try:
        _apply(store)
        store.push(
            "t_push",
            {"driver_id": [1], "event_timestamp": [T], "m": [{1: "kept"}], "z": [T], "s": ["x"]},
        )
        body = {
            "driver_id": [1],
            "event_timestamp": ["2024-01-02T00:00:00Z"],
            "m": [value],
            "z": ["2024-01-02T00:00:00Z"],
            "s": ["y"],
        }
        response = _post_push(store, body)
        assert response.status_code in (200, 400, 422), response.text
        got = store.get_online_features(["typed:m", "typed:s"], {"driver_id": [1]}).to_dict()
        if response.status_code == 200:
            assert got["s"] == ["y"]
        else:
            assert "'m'" in response.text, response.text
            assert got == {"driver_id": [1], "m": [{1: "kept"}], "s": ["x"]}
    finally:
        store.online_store.close()


def test_bad_values_through_the_sdk_name_feature_and_row(store: FeatureStore) -> None:
    _apply(store)
    good = _table([1], pa.array(['{"1": "a"}']), pa.array(["2024-01-01T00:00:00Z"]))
    store.write_to_online_store("typed", good)
    cases = [
        (pa.array(['{"1": 1}', '{"1": []}']), pa.array(["2024-01-01T00:00:00Z"] * 2), "'m' row 1"),
        (
            pa.array(['{"1": 1}'] * 2),
            pa.array(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00[Nowhere]"]),
            "'z' row 1: not a ZONED_TIMESTAMP value: unknown time zone \"Nowhere\"",
        ),
    ]
    for maps, zoned, why in cases:
        with pytest.raises(InvalidValueError, match=why):
            store.write_to_online_store("typed", _table([1, 2], maps, zoned))
        got = store.get_online_features(REFS, {"driver_id": [1, 2]}).to_dict()
        assert got["m"] == [{1: "a"}, None]  # nothing of the bad batch was written
    # Keys Feast refuses too (a date, a tuple), from a DataFrame's dicts beside good ones.
    for key in (date(2024, 1, 1), (1, 2)):
        frame = _table([1, 2], pa.array(['{"1": 1}'] * 2), pa.array([T, T])).to_pandas()
        frame["m"] = [{b"k": "b"}, {key: "c"}]
        with pytest.raises(InvalidValueError, match="'m' row 1: not a SCALAR_MAP value: key"):
            store.write_to_online_store("typed", frame)
        with pytest.raises(InvalidValueError, match="'m' row 1: not a SCALAR_MAP value"):
            store.push("t_push", frame)
        got = store.get_online_features(REFS, {"driver_id": [1, 2]}).to_dict()
        assert got["m"] == [{1: "a"}, None]


def test_every_key_kind_feast_takes_on_every_store(store: FeatureStore) -> None:
    """Bytes, UUID, decimal and datetime keys (recorded from Feast), through the SDK, the
    server and /push: Feast's bytes on `layout: feast`, Feast's reads everywhere."""
    import pandas as pd

    _apply(store)
    written = [case_dict(c) for c in STORED]
    read = [read_back(c) for c in STORED]
    ids = list(range(1, len(written) + 1))
    frame = pd.DataFrame(
        {
            "driver_id": ids,
            "event_timestamp": [T] * len(ids),
            "m": written,
            "z": [T] * len(ids),
            "s": ["x"] * len(ids),
        }
    )
    store.write_to_online_store("typed", frame)
    got = store.get_online_features(["typed:m"], {"driver_id": ids}).to_dict()["m"]
    assert [entries(m) for m in got] == [entries(m) for m in read]
    if store.layout == "redis-feast":  # type: ignore[attr-defined]
        for driver_id, case in zip(ids, STORED, strict=True):
            assert _feast_fields(store, driver_id)[0].hex() == case["hex"], case["key_kind"]
    # The server answers the stored form: typed keys tagged in [key, value] pairs.
    served = _served(store, ids[:1], ["typed:m"])["m"][0]
    assert served == [[{"bytes": "AP9hYg=="}, 1], [{"bytes": ""}, "e"], [{"bytes": "aw=="}, [1, 2]]]
    # /push takes that form back, and an Arrow map column with binary keys writes the same.
    body = {
        "driver_id": [101],
        "event_timestamp": ["2024-01-01T12:00:00Z"],
        "m": [served],
        "z": ["2024-01-01T12:00:00Z"],
        "s": ["x"],
    }
    assert _post_push(store, body).status_code == 200
    binary = pa.array([[(b"\x00\xffab", "1")]], pa.map_(pa.binary(), pa.string()))
    store.push("t_push", _table([102], binary, pa.array([T])))
    got = store.get_online_features(["typed:m"], {"driver_id": [101, 102]}).to_dict()["m"]
    assert got == [read[0], {b"\x00\xffab": "1"}]
    assert [type(k) for k in got[0]] == [bytes, bytes, bytes]


def _typed_udf(inputs: Any) -> Any:
    """Both modes' udf: python mode passes and takes a dict of lists, pandas mode a DataFrame."""
    from datetime import timedelta

    maps, times = list(inputs["m"]), list(inputs["z"])
    columns = {
        # The inputs are what Feast's SDK reads: typed keys, datetimes in their zones.
        "kinds": [
            None if m is None else f"{sorted({type(k).__name__ for k in m})}|{z.tzinfo}"
            for m, z in zip(maps, times, strict=True)
        ],
        "as_bytes": [
            None if m is None else {str(k).encode(): v for k, v in m.items()} for m in maps
        ],
        "an_hour_later": [None if z is None else z + timedelta(hours=1) for z in times],
    }
    return columns if isinstance(inputs, dict) else pd.DataFrame(columns, index=inputs.index)


@pytest.mark.parametrize("mode", ["python", "pandas"])
def test_on_demand_views_see_and_return_typed_keys_and_zones(
    store: FeatureStore, mode: str
) -> None:
    _apply(store)
    view = store.get_feature_view("typed")
    outputs = [
        Field(name="kinds", dtype=String),
        Field(name="as_bytes", dtype=ScalarMap),
        Field(name="an_hour_later", dtype=ZonedTimestamp),
    ]
    derived = on_demand_feature_view(sources=[view], schema=outputs, mode=mode, name="derived")
    odfv = derived(_typed_udf)
    store.apply([odfv], skip_source_validation=True)
    paris = ZoneInfo("Europe/Paris")
    times = [datetime(2024, 3, 10, 1, 30, tzinfo=NY), datetime(2024, 7, 1, tzinfo=paris)]
    rows = {
        "driver_id": [1, 2],
        "event_timestamp": [T, T],
        "m": [{1: "a", 2: "b"}, {2.5: None}],
        "z": times,
        "s": ["x", "y"],
    }
    store.push("t_push", rows)
    refs = ["derived:kinds", "derived:as_bytes", "derived:an_hour_later"]
    got = store.get_online_features(refs, {"driver_id": [1, 2, 3]}).to_dict()
    assert got["kinds"] == ["['int']|America/New_York", "['float']|Europe/Paris", None]
    assert got["as_bytes"] == [{b"1": "a", b"2": "b"}, {b"2.5": None}, None]
    # 01:30 EST + 1 h is 02:30 on the wall, a time New York skipped that day: stored as its
    # instant (07:30 UTC, as Feast's `timestamp()` reads it), it reads back as 03:30 EDT.
    later = [(t.astimezone(UTC) + timedelta(hours=1)).astimezone(t.tzinfo) for t in times]
    assert got["an_hour_later"] == [*later, None]
    assert [t.tzinfo for t in got["an_hour_later"][:2]] == [NY, paris]
    served = _served(store, [1, 2, 3], refs)
    assert served["as_bytes"] == [
        [[{"bytes": "MQ=="}, "a"], [{"bytes": "Mg=="}, "b"]],
        [[{"bytes": "Mi41"}, None]],
        None,
    ]
    assert served["an_hour_later"] == [
        "2024-03-10T03:30:00-04:00",  # an hour after 01:30 EST is 03:30 EDT
        "2024-07-01T01:00:00+02:00",
        None,
    ]


def test_materialized_and_historical_values_are_the_files(store: FeatureStore) -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    path = Path(store.repo_path) / "data" / "h.parquet"
    source = FileSource(name="h_src", path=str(path), timestamp_field="event_timestamp")
    schema = [
        Field(name="driver_id", dtype=Int64),
        Field(name="m", dtype=ScalarMap),
        Field(name="z", dtype=ZonedTimestamp),
    ]
    view = FeatureView(name="hist", entities=[driver], schema=schema, source=source)
    paris = ZoneInfo("Europe/Paris")
    written = pa.table(
        {
            "driver_id": pa.array([1, 2], pa.int64()),
            "event_timestamp": pa.array([T, T], pa.timestamp("us", tz="UTC")),
            "m": pa.array(
                [[(1.5, 10)], [(3.0, 30), (-1.0, None)]], pa.map_(pa.float64(), pa.int64())
            ),
            "z": pa.array(
                [
                    datetime(2024, 3, 31, 1, 30, tzinfo=paris),
                    datetime(2024, 3, 31, 3, 30, tzinfo=paris),
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
        }
    )
    pq.write_table(written, path)
    store.apply([driver, source, view])
    store.materialize(T - timedelta(days=1), T + timedelta(days=1))
    got = store.get_online_features(["hist:m", "hist:z"], {"driver_id": [1, 2]}).to_dict()
    assert got["m"] == [{1.5: 10}, {3.0: 30, -1.0: None}]
    assert got["z"] == written.column("z").to_pylist()
    assert [v.utcoffset() for v in got["z"]] == [timedelta(hours=1), timedelta(hours=2)]
    entity_df = pa.table(
        {
            "driver_id": pa.array([2, 1], pa.int64()),
            "event_timestamp": pa.array([T, T], pa.timestamp("us", tz="UTC")),
        }
    )
    out = store.get_historical_features(entity_df, ["hist:m", "hist:z"]).to_arrow()
    # The file's own columns, as Feast's offline stores return them: zone and key types kept.
    assert out.schema.field("m").type == written.schema.field("m").type
    assert out.schema.field("z").type == written.schema.field("z").type
    assert out.column("z").to_pylist() == written.column("z").to_pylist()[::-1]
    assert out.column("m").to_pylist() == written.column("m").to_pylist()[::-1]


def test_python_objects_keep_each_rows_zone_and_key_types(store: FeatureStore) -> None:
    """Dicts with int, float or bool keys and datetimes in several zones, as Feast users hand
    them over: a `{column: [values]}` dict or a DataFrame's object columns."""
    import pandas as pd

    _apply(store)
    paris = ZoneInfo("Europe/Paris")
    maps = [{1: "a", 2: "b"}, {2.5: [1, 2], -1.0: None}, {True: {"x": 1}}]
    times = [
        datetime(2024, 3, 10, 1, 30, tzinfo=NY),
        datetime(2024, 7, 1, tzinfo=paris),
        datetime(2024, 3, 10, 6, 30, tzinfo=timezone(timedelta(hours=-7))),
    ]
    rows: dict[str, list[Any]] = {
        "driver_id": [1, 2, 3],
        "event_timestamp": [T] * 3,
        "m": maps,
        "z": times,
        "s": ["x"] * 3,
    }
    inputs: list[dict[str, list[Any]] | pd.DataFrame] = [rows, pd.DataFrame(rows)]
    for step, batch in enumerate(inputs):
        later = T + timedelta(hours=step + 1)  # newer than what is stored, so it is written
        batch["event_timestamp"] = [later] * 3
        if step == 0:
            store.push("t_push", batch)
        else:
            store.write_to_online_store("typed", batch)
        got = store.get_online_features(REFS, {"driver_id": [1, 2, 3]}).to_dict()
        assert got["m"] == maps
        assert [[type(k) for k in m] for m in got["m"]] == [[int, int], [float, float], [bool]]
        assert got["z"] == times
        assert [t.tzinfo for t in got["z"]] == [NY, paris, timezone(timedelta(hours=-7))]
    bad = {**rows, "event_timestamp": [T + timedelta(hours=9)] * 3, "z": [times[0], 5, None]}
    with pytest.raises(InvalidValueError, match="column 'z' row 1: .* int 5 is not a datetime"):
        store.push("t_push", bad)


def _file_backed_store(tmp_path: Path, features: dict[str, Any]) -> FeatureStore:
    """A SQLite store whose view `typed` (driver_id and `features`) is fed by push source
    `t_push` over data/t.parquet, which the caller has written."""
    config = {
        "project": "typed_keys",
        "registry": str(tmp_path / "registry.json"),
        "online_store": {"type": "sqlite", "path": "data/online.db"},
        "repo_path": tmp_path,
    }
    store = FeatureStore(config=RepoConfig.model_validate(config))
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(name="t_src", path="data/t.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="t_push", batch_source=source)
    schema = [Field(name="driver_id", dtype=Int64)]
    schema += [Field(name=name, dtype=dtype) for name, dtype in features.items()]
    view = FeatureView(name="typed", entities=[driver], schema=schema, source=push)
    store.apply([driver, source, push, view])
    return store


def test_online_and_offline_push_of_python_objects_lands_in_the_file(tmp_path: Path) -> None:
    """A DataFrame of dicts with int keys and datetimes in several zones, pushed online and
    offline: the Parquet file keeps its own column types (the instant in the file's zone)."""
    import pandas as pd

    from repast.data_source import PushMode

    (tmp_path / "data").mkdir()
    file_types = {
        "driver_id": pa.int64(),
        "event_timestamp": pa.timestamp("us", tz="UTC"),
        "m": pa.map_(pa.int64(), pa.string()),
        "z": pa.timestamp("us", tz="America/New_York"),
    }
    pq.write_table(
        pa.table({k: pa.array([], t) for k, t in file_types.items()}), tmp_path / "data/t.parquet"
    )
    store = _file_backed_store(tmp_path, {"m": ScalarMap, "z": ZonedTimestamp})
    paris = ZoneInfo("Europe/Paris")
    times = [datetime(2024, 3, 10, 1, 30, tzinfo=NY), datetime(2024, 7, 1, tzinfo=paris)]
    df = pd.DataFrame(
        {
            "driver_id": [1, 2],
            "event_timestamp": [T, T],
            "m": [{1: "a", 2: "b"}, {3: "c"}],
            "z": times,
        }
    )
    store.push("t_push", df, to=PushMode.ONLINE_AND_OFFLINE)
    online = store.get_online_features(REFS, {"driver_id": [1, 2]}).to_dict()
    assert online["z"] == times
    assert [t.tzinfo for t in online["z"]] == [NY, paris]
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [T + timedelta(hours=1)] * 2})
    offline = store.get_historical_features(entity_df, REFS).to_arrow()
    assert offline.schema.field("m").type == file_types["m"]
    assert offline.column("m").to_pylist() == [[(1, "a"), (2, "b")], [(3, "c")]]
    assert offline.schema.field("z").type == file_types["z"]
    assert offline.column("z").to_pylist() == times  # the same instants, in the file's zone
    store.online_store.close()


def test_binary_and_timestamp_keyed_files_materialize_and_take_offline_pushes(
    tmp_path: Path,
) -> None:
    """Parquet map columns with binary and timestamp keys (what a Feast project's files may
    hold for a ScalarMap) materialize with typed keys, and an online-and-offline push of
    Python dicts with such keys lands in the file in its own column types."""
    import pandas as pd

    from repast.data_source import PushMode

    (tmp_path / "data").mkdir()
    file_types = {
        "driver_id": pa.int64(),
        "event_timestamp": pa.timestamp("us", tz="UTC"),
        "b": pa.map_(pa.binary(), pa.string()),
        "t": pa.map_(pa.timestamp("us", tz="UTC"), pa.int64()),
    }
    noon = datetime(2024, 3, 10, 6, 30, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([T], file_types["event_timestamp"]),
                "b": pa.array([[(b"\x00k", "x"), (b"", "empty")]], file_types["b"]),
                "t": pa.array([[(noon, 7)]], file_types["t"]),
            }
        ),
        tmp_path / "data/t.parquet",
    )
    store = _file_backed_store(tmp_path, {"b": ScalarMap, "t": ScalarMap})
    store.materialize(T - timedelta(days=1), T + timedelta(days=1))
    refs = ["typed:b", "typed:t"]
    online = store.get_online_features(refs, {"driver_id": [1]}).to_dict()
    assert online["b"] == [{b"\x00k": "x", b"": "empty"}]
    assert online["t"] == [{noon: 7}]
    assert [type(k) for k in online["t"][0]] == [datetime]
    later = T + timedelta(hours=1)
    df = pd.DataFrame(
        {
            "driver_id": [2],
            "event_timestamp": [later],
            "b": [{b"\xff": "y"}],
            "t": [{noon.replace(tzinfo=None): 8}],  # naive: UTC, as Feast reads it
        }
    )
    store.push("t_push", df, to=PushMode.ONLINE_AND_OFFLINE)
    assert store.get_online_features(refs, {"driver_id": [2]}).to_dict() == {
        "driver_id": [2],
        "b": [{b"\xff": "y"}],
        "t": [{noon: 8}],
    }
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [later] * 2})
    offline = store.get_historical_features(entity_df, refs).to_arrow()
    assert offline.schema.field("b").type == file_types["b"]
    assert offline.schema.field("t").type == file_types["t"]
    assert offline.column("b").to_pylist() == [[(b"\x00k", "x"), (b"", "empty")], [(b"\xff", "y")]]
    assert offline.column("t").to_pylist() == [[(noon, 7)], [(noon, 8)]]
    store.online_store.close()


def test_a_redis_written_by_feast_reads_as_feasts_sdk(redis_clean: Any, tmp_path: Path) -> None:
    """Feast's own bytes (recorded) put in Redis as Feast's online store lays them out, read
    through `layout: feast` by the SDK and the server."""
    (tmp_path / "data").mkdir()
    config = RepoConfig.model_validate(
        {
            "project": "typed_keys",
            "registry": str(tmp_path / "registry.json"),
            "online_store": online_config("redis-feast", redis_clean),
            "repo_path": tmp_path,
        }
    )
    store = FeatureStore(config=config)
    store.redis_url = redis_clean.url  # type: ignore[attr-defined]
    _apply(store)
    rows = list(zip(SCALAR_MAPS, ZONED[: len(SCALAR_MAPS)], strict=True))
    client = redis.Redis.from_url(redis_clean.url)
    stamp = _core.encode_timestamps(pa.array([T]))[0].as_py()
    fields = _core.feature_field_names("typed", ["m", "z"])
    try:
        for i, (m, z) in enumerate(rows, start=1):
            key = _core.serialize_entity_keys(["driver_id"], [pa.array([i])], [4])[0].as_py()
            client.hset(
                key + b"typed_keys",
                mapping={
                    fields[0]: bytes.fromhex(m["hex"]),
                    fields[1]: bytes.fromhex(z["hex"]),
                    b"_ts:typed": stamp,
                },
            )
    finally:
        client.close()
    ids = list(range(1, len(rows) + 1))
    got = store.get_online_features(REFS, {"driver_id": ids}).to_dict()
    served = _served(store, ids)
    for i, (m, z) in enumerate(rows):
        want = _as_dict(m["read_back_pairs"])
        assert list(got["m"][i].items()) == list(want.items())
        assert [type(k) for k in got["m"][i]] == [type(k) for k in want]
        assert _is_feasts_read(got["z"][i], z["read_back"])
        # Feast's server answers isoformat() in the zone.
        assert served["z"][i] == (z["read_back"] or {}).get("isoformat")
    store.online_store.close()
