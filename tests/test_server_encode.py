"""The response encoder against Feast's value rules (docs/feast-compatibility.md §4.1),
column by column."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa

from repast.online_response import NOT_FOUND, PRESENT, OnlineResponse
from repast_server.encode import encode_online_response, format_timestamps, json_values

TS = pa.timestamp("us", tz="UTC")


def _json(array: pa.Array) -> object:
    return orjson.loads(orjson.dumps(json_values(array), option=orjson.OPT_SERIALIZE_NUMPY))


def test_float32_is_widened_like_python_prints_the_double() -> None:
    raw = orjson.dumps(
        json_values(pa.array([0.2, 3.0], pa.float32())), option=orjson.OPT_SERIALIZE_NUMPY
    )
    assert raw == b"[0.20000000298023224,3.0]"
    assert _json(pa.array([0.1, None], pa.float64())) == [0.1, None]


def test_nan_and_infinities_are_strings() -> None:
    nan, inf = float("nan"), float("inf")
    assert _json(pa.array([nan, inf, -inf, 1.5])) == ["NaN", "Infinity", "-Infinity", 1.5]
    assert _json(pa.array([nan, None], pa.float32())) == ["NaN", None]
    assert _json(pa.array([[nan, 1.0], None], pa.list_(pa.float32()))) == [["NaN", 1.0], None]


def test_ints_bools_strings_bytes_lists_and_unix_timestamps() -> None:
    assert _json(pa.array([-(2**63), 2**63 - 1])) == [-(2**63), 2**63 - 1]
    assert _json(pa.array([1, None], pa.int32())) == [1, None]
    assert _json(pa.array([True, False])) == [True, False]
    assert _json(pa.array([True, None])) == [True, None]
    assert _json(pa.array(["Çelik 日本", None])) == ["Çelik 日本", None]
    assert _json(pa.array([b"\x89PNG\x00", b"", None])) == ["iVBORwA=", "", None]
    assert _json(pa.array([[b"\x00"], None], pa.list_(pa.binary()))) == [["AA=="], None]
    stamps = pa.array([datetime(2024, 1, 1, 6, 30, tzinfo=UTC), None], TS)
    assert _json(stamps) == [1704090600, None]
    assert _json(pa.array([[datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)]], pa.list_(TS))) == [[1]]


def test_event_timestamps_get_0_3_or_6_fraction_digits() -> None:
    stamps = pa.array(
        [
            datetime(2024, 1, 1, 11, tzinfo=UTC),
            datetime(2024, 1, 1, 10, 30, 0, 250_000, tzinfo=UTC),
            datetime(2024, 1, 1, 10, 30, 0, 123_456, tzinfo=UTC),
            None,
        ],
        TS,
    )
    assert format_timestamps(stamps) == [
        "2024-01-01T11:00:00Z",
        "2024-01-01T10:30:00.250Z",
        "2024-01-01T10:30:00.123456Z",
        "1970-01-01T00:00:00Z",
    ]


def test_the_document_has_feast_s_shape_and_entity_order() -> None:
    ts = pa.array([datetime(2024, 1, 1, tzinfo=UTC), None], TS)
    codes = pa.array([PRESENT, NOT_FOUND], pa.int8())
    response = OnlineResponse(
        ["driver_id", "customer_id", "trips"],
        [pa.array([1, 2]), pa.array(["a", "b"]), pa.array([5, None])],
        [None, None, codes],
        [None, None, ts],
    )
    got = orjson.loads(encode_online_response(response, ["customer_id", "driver_id"]))
    assert got == {
        "results": [
            {
                "values": ["a", "b"],
                "statuses": ["PRESENT", "PRESENT"],
                "event_timestamps": ["1970-01-01T00:00:00Z"] * 2,
            },
            {
                "values": [1, 2],
                "statuses": ["PRESENT", "PRESENT"],
                "event_timestamps": ["1970-01-01T00:00:00Z"] * 2,
            },
            {
                "values": [5, None],
                "statuses": ["PRESENT", "NOT_FOUND"],
                "event_timestamps": ["2024-01-01T00:00:00Z", "1970-01-01T00:00:00Z"],
            },
        ],
        "metadata": {"feature_names": ["customer_id", "driver_id", "trips"]},
    }
