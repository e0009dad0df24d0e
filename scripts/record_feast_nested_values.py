"""Record Feast 0.67's Value bytes and read-back values for the nested and set value types.

Run with the Python of the test-only Feast venv (tests/feast_venv.py makes it):

    ~/.cache/repast/feast-venv/bin/python scripts/record_feast_nested_values.py > nested_values.json
    make refresh-golden FROM=<folder holding nested_values.json>

For each case it records the value type asked for, the Python value given, the `Value` oneof
Feast set, the serialized bytes (hex) and what Feast's SDK returns when it reads the Value back
(`to_dict()` of an online response holds that). Sets come back as Python sets: recorded as sorted
lists with `"read_as": "set"`; UUIDs and decimals come back as `uuid.UUID` / `decimal.Decimal`:
recorded as their text with `"read_as": "uuid"` / `"decimal"`. Feast writes map entries in its
protobuf runtime's order, which is not the order given, not sorted and not the same from one
process to the next; `"map_order": "unspecified"` marks those bytes, and `hex_deterministic`
holds the same Value serialized with protobuf's deterministic option (map entries sorted by
key), which is what Repast writes. Values Feast refuses are recorded with `feast_error` (the
exception's class) instead of bytes.

SCALAR_MAP and ZONED_TIMESTAMP values have no JSON form of their own, so they are recorded
apart: `scalar_map_cases` give a dict as its `[key, value]` pairs in order (the keys' JSON types
are theirs: int, float, bool) and read it back the same way; `zoned_timestamp_cases` give a
datetime as its `isoformat()` and its tzinfo (`zoneinfo:<key>`, `fixed:<isoformat offset>`,
`utc` for `datetime.timezone.utc`, `naive`), and read it back the same way.
"""

from __future__ import annotations

import decimal
import json
import sys
import uuid
from datetime import UTC
from typing import Any

import feast
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType

V = ValueType
CASES: list[tuple[ValueType, Any]] = [
    (V.JSON, '{"max_distance_km": 500, "preferred_zones": ["north"]}'),
    (V.JSON, '{"max":5}'),
    (V.JSON, "[1,2]"),
    (V.JSON, '"text"'),
    (V.JSON, "null"),
    (V.JSON_LIST, ['{"a":1}', "[1]", '"x"']),
    (V.JSON_LIST, []),
    (V.MAP, {"vehicle_type": "suv", "rating": "4.5"}),
    (V.MAP, {"b": 1, "a": 2.5, "c": True, "d": None}),
    (V.MAP, {}),
    (V.MAP_LIST, [{"a": "1"}, {"b": "2"}]),
    (V.STRUCT, {"name": "driver_1001", "age": "30"}),
    (V.STRUCT, {"n": 1, "tags": ["x", "y"]}),
    (V.STRUCT_LIST, [{"name": "a"}, {"name": "b"}]),
    (V.INT64_SET, [3, 1, 2]),
    (V.INT32_SET, [5]),
    (V.STRING_SET, ["b", "a"]),
    (V.DOUBLE_SET, [0.5, 1.5]),
    (V.BOOL_SET, [True]),
    (V.BYTES_SET, []),
    # Added for the native `layout: feast` encodings (issue 15).
    (V.MAP, {"z": {"y": 1, "x": "deep"}, "a": ["p", "q"], "n": [1, 2], "f": [0.5]}),
    (V.MAP, {"": "empty key", "flag": False, "zero": 0, "neg": -7, "big": 2**62}),
    (V.MAP, {"rows": [{"k": "v"}, {"k": "w", "j": 2}], "none": None, "b": [True, False]}),
    (V.MAP, {"only": "one"}),
    (V.MAP_LIST, []),
    (V.MAP_LIST, [{}, {"a": None}]),
    (V.STRUCT, {"name": "a", "age": None}),
    (V.STRUCT, {"score": 1.5}),
    (V.STRUCT_LIST, []),
    (V.STRUCT_LIST, [{"n": 1}, {"n": None}]),
    (V.INT64_SET, [5, 5, 1]),
    (V.INT64_SET, [-3]),
    (V.INT32_SET, [7, 2]),
    (V.STRING_SET, ["only"]),
    (V.STRING_SET, []),
    (V.DOUBLE_SET, [2.5]),
    (V.FLOAT_SET, [0.25]),
    (V.BOOL_SET, [False, True]),
    (V.UUID, "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"),
    (V.TIME_UUID, "a8098c1a-f86e-11da-bd1a-00112444be1e"),
    (V.UUID_LIST, ["6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c", "00000000-0000-0000-0000-000000000001"]),
    (V.TIME_UUID_LIST, []),
    (V.UUID_SET, ["6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"]),
    (V.TIME_UUID_SET, ["a8098c1a-f86e-11da-bd1a-00112444be1e"]),
    (V.DECIMAL, "1.50"),
    (V.DECIMAL, "-1E+3"),
    (V.DECIMAL_LIST, ["0.1", "2"]),
    (V.DECIMAL_SET, ["3.25"]),
    (V.VALUE_LIST, [[1, 2], [3]]),
    (V.VALUE_LIST, [["a"], None, []]),
    (V.VALUE_LIST, [[[1], [2, 3]], [[4]]]),
    (V.VALUE_LIST, []),
    (V.VALUE_SET, [[1.5], [True]]),
]

# Values Feast's SDK refuses to convert (Repast refuses them too, with a typed error).
REFUSED: list[tuple[ValueType, Any]] = [
    (V.MAP, {"a": [1, "x"]}),
    (V.MAP, {"a": []}),
    (V.MAP, {"a": [None]}),
    (V.MAP, {"a": [[1]]}),
    (V.MAP_LIST, [{"a": 1}, 2]),
    (V.MAP, "[1, 2]"),
]


SCALAR_MAPS: list[dict[Any, Any]] = [
    {1: "a", 2: 3},
    {2: "a", 1: 3},
    {-1: 1.5, 2**62: "b", 0: 0},
    {1.5: [1, 2], True: {"x": 1}},
    {True: 1, False: None},
    {2.5: "x", -0.5: ["p", "q"]},
    {7: [True, False], 8: [0.5], 9: {"b": "y", "a": None}},
    {1: [{"a": 1}, {"b": "c"}]},
    {1: None},
    {},
]
SCALAR_MAPS_REFUSED: list[Any] = [
    {"a": 1},
    {1: "x", "b": 2},
    {1: []},
    {1: [1, "x"]},
    "not a map",
]


def _typed_key_cases() -> tuple[list[tuple[str, dict[Any, Any]]], list[tuple[str, dict[Any, Any]]]]:
    """Dicts whose keys JSON cannot type (bytes, UUID, decimal, datetime) and a ScalarMap nested
    in a value; then keys Feast refuses. Recorded after the int/float/bool cases, tagged with
    `key_kind`, so that the earlier cases stay byte-identical."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    import numpy as np
    import pandas as pd

    v4 = uuid.UUID("6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c")
    v1 = uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e")
    dec = decimal.Decimal
    accepted: list[tuple[str, dict[Any, Any]]] = [
        ("bytes", {b"\x00\xffab": 1, b"": "e", b"k": [1, 2]}),
        ("uuid", {v4: "u", v1: 2}),
        ("decimal", {dec("1.50"): "d", dec("-1E+3"): 2, dec("NaN"): 3, dec("0"): None}),
        ("datetime", {datetime(2024, 3, 10, 6, 30, 0, 999_999): "naive"}),
        ("datetime", {datetime(2024, 3, 10, 6, 30, tzinfo=timezone(timedelta(hours=5))): "aware"}),
        ("datetime", {datetime(2024, 3, 10, 1, 30, tzinfo=ZoneInfo("America/New_York")): "ny"}),
        ("datetime", {datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC): "pre-1970"}),
        ("datetime", {datetime(1970, 1, 1, tzinfo=UTC): "epoch", datetime(2000, 1, 1): 1.5}),
        ("pandas_timestamp", {pd.Timestamp("2024-03-10T06:30:00.5Z"): "pd"}),
        ("pandas_timestamp", {pd.Timestamp("2024-03-10T06:30:00"): "naive pd"}),
        ("mixed", {1: "int", b"b": "bytes", v4: "uuid", dec("2.5"): "decimal", True: "bool"}),
        ("nested_scalar_map", {1: {2: "x", 3: None}, 2: {b"k": {1.5: "deep"}}}),
    ]
    refused: list[tuple[str, dict[Any, Any]]] = [
        ("numpy_datetime64", {np.datetime64("2024-03-10T06:30:00"): "np"}),
        ("date", {__import__("datetime").date(2024, 1, 1): 1}),
        ("tuple", {(1, 2): "t"}),
        ("none", {None: 1}),
    ]
    return accepted, refused


def _tagged(value: Any) -> Any:
    """A key or value JSON cannot hold as itself, as `{"<kind>": <text>}` (bytes as hex,
    datetimes as `_zoned`, a dict with non-string keys as `scalar_map` pairs)."""
    from datetime import datetime

    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime):  # pandas.Timestamp too
        return {
            "datetime": _zoned(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value)
        }
    if isinstance(value, dict) and value and not isinstance(next(iter(value)), str):
        return {"scalar_map": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    return {type(value).__name__: str(value)}


def _zoned_cases() -> tuple[list[Any], list[Any]]:
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    ny, paris = ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris")
    given = [
        datetime(2024, 3, 10, 6, 30, tzinfo=ny),  # after the spring-forward gap: EDT
        datetime(2024, 3, 10, 1, 30, tzinfo=ny),  # before it: EST
        datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ny),  # the repeated hour, second pass
        datetime(2024, 7, 1, 12, 0, tzinfo=paris),
        datetime(2024, 1, 15, 9, 45, tzinfo=ZoneInfo("Asia/Kolkata")),
        datetime(2024, 3, 10, 6, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 6, 30, tzinfo=ZoneInfo("UTC")),
        datetime(2024, 3, 10, 6, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 3, 10, 6, 30, tzinfo=timezone(timedelta(hours=-7))),
        datetime(2024, 3, 10, 6, 30),
        datetime(2024, 3, 10, 6, 30, 0, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(1960, 6, 1, 8, 0, tzinfo=ny),
        None,
    ]
    refused = ["2024-03-10T06:30:00+00:00", 1710052200]
    return given, refused


def _tz_name(value: Any) -> str:
    from datetime import timezone

    tz = value.tzinfo
    if tz is None:
        return "naive"
    if tz is UTC:
        return "utc"
    key = getattr(tz, "key", None)
    if key:
        return f"zoneinfo:{key}"
    return f"fixed:{value.isoformat()[-6:]}"


def _zoned(value: Any) -> Any:
    if value is None:
        return None
    return {"isoformat": value.isoformat(), "tzinfo": _tz_name(value)}


def _pairs(value: Any) -> Any:
    return [[k, v] for k, v in value.items()] if isinstance(value, dict) else value


def _map_inside(value: Any) -> bool:
    """Whether a Map of two or more entries is inside `value` (its bytes' order varies)."""
    if isinstance(value, dict):
        return len(value) > 1 or any(_map_inside(v) for v in value.values())
    if isinstance(value, list):
        return any(_map_inside(v) for v in value)
    return False


def record_scalar_maps() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for value in SCALAR_MAPS:
        proto = python_values_to_proto_values([value], V.SCALAR_MAP)[0]
        unspecified = any(_map_inside(v) for v in value.values())
        cases.append(
            {
                **({"map_order": "unspecified"} if unspecified else {}),
                "python_pairs": _pairs(value),
                "oneof": proto.WhichOneof("val"),
                "hex": proto.SerializeToString().hex(),
                # Entries keep the dict's order; only a Map inside a value has a runtime order.
                "hex_deterministic": proto.SerializeToString(deterministic=True).hex(),
                "read_back_pairs": _pairs(feast_value_type_to_python_type(proto)),
            }
        )
    for value in SCALAR_MAPS_REFUSED:
        try:
            python_values_to_proto_values([value], V.SCALAR_MAP)
        except Exception as exc:  # noqa: BLE001 - what Feast raises is the record
            error = type(exc).__name__
        cases.append({"python_pairs": _pairs(value), "feast_error": error})
    accepted, refused = _typed_key_cases()
    for kind, value in accepted:
        proto = python_values_to_proto_values([value], V.SCALAR_MAP)[0]
        cases.append(
            {
                "key_kind": kind,
                "python_pairs": _tagged(value)["scalar_map"],
                "oneof": proto.WhichOneof("val"),
                "hex": proto.SerializeToString().hex(),
                "hex_deterministic": proto.SerializeToString(deterministic=True).hex(),
                "read_back_pairs": _tagged(feast_value_type_to_python_type(proto))["scalar_map"],
            }
        )
    for kind, value in refused:
        try:
            python_values_to_proto_values([value], V.SCALAR_MAP)
        except Exception as exc:  # noqa: BLE001 - what Feast raises is the record
            error, message = type(exc).__name__, str(exc)
        cases.append(
            {
                "key_kind": kind,
                "python_pairs": _tagged(value)["scalar_map"],
                "feast_error": error,
                "feast_message": message,
            }
        )
    return cases


def record_zoned() -> list[dict[str, Any]]:
    given, refused = _zoned_cases()
    cases: list[dict[str, Any]] = []
    for value in given:
        proto = python_values_to_proto_values([value], V.ZONED_TIMESTAMP)[0]
        read = feast_value_type_to_python_type(proto)
        case = {
            "python_value": _zoned(value),
            "oneof": proto.WhichOneof("val"),
            "hex": proto.SerializeToString().hex(),
            "read_back": _zoned(read),
        }
        if proto.WhichOneof("val"):
            case["zone"] = proto.zoned_timestamp_val.zone
        cases.append(case)
    for value in refused:
        try:
            python_values_to_proto_values([value], V.ZONED_TIMESTAMP)
        except Exception as exc:  # noqa: BLE001 - what Feast raises is the record
            error = type(exc).__name__
        cases.append({"python_value": value, "feast_error": error})
    return cases


def _plain(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, set | frozenset):
        items = [_plain(v)[0] for v in value]
        return sorted(items), "set"
    if isinstance(value, uuid.UUID):
        return str(value), "uuid"
    if isinstance(value, decimal.Decimal):
        return str(value), "decimal"
    if isinstance(value, list) and value and isinstance(value[0], uuid.UUID | decimal.Decimal):
        return [str(v) for v in value], _plain(value[0])[1]
    return value, None


def _given(value_type: ValueType, value: Any) -> Any:
    """The Python value handed to Feast: sets as sets, as a user's DataFrame would hold them."""
    if value_type.name.endswith("_SET") and value_type not in (V.VALUE_SET,):
        return set(value)
    return value


def record() -> dict[str, Any]:
    cases = []
    for value_type, value in CASES:
        proto = python_values_to_proto_values([_given(value_type, value)], value_type)[0]
        read, read_as = _plain(feast_value_type_to_python_type(proto))
        case: dict[str, Any] = {
            "value_type": value_type.name,
            "value_type_number": value_type.value,
            "python_value": value,
            "oneof": proto.WhichOneof("val"),
            "hex": proto.SerializeToString().hex(),
            "hex_deterministic": proto.SerializeToString(deterministic=True).hex(),
            "read_back": read,
        }
        if read_as:
            case["read_as"] = read_as
        nested = value_type in (V.MAP, V.MAP_LIST, V.STRUCT, V.STRUCT_LIST)
        if nested and len(json.dumps(value)) > 2:
            case["map_order"] = "unspecified"
        cases.append(case)
    for value_type, value in REFUSED:
        try:
            python_values_to_proto_values([value], value_type)
        except Exception as exc:  # noqa: BLE001 - what Feast raises is the record
            error = type(exc).__name__
        else:
            error = None
        cases.append(
            {
                "value_type": value_type.name,
                "value_type_number": value_type.value,
                "python_value": value,
                "feast_error": error,
            }
        )
    return {
        "feast_version": feast.__version__,
        "cases": cases,
        "scalar_map_cases": record_scalar_maps(),
        "zoned_timestamp_cases": record_zoned(),
    }


if __name__ == "__main__":
    json.dump(record(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
