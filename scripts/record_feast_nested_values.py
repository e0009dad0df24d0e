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
"""

from __future__ import annotations

import decimal
import json
import sys
import uuid
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
    return {"feast_version": feast.__version__, "cases": cases}


if __name__ == "__main__":
    json.dump(record(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
