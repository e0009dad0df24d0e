"""Record Feast 0.67's Value bytes and read-back values for the nested and set value types.

Run with the Python of the test-only Feast venv (tests/feast_venv.py makes it):

    ~/.cache/repast/feast-venv/bin/python scripts/record_feast_nested_values.py > nested_values.json
    make refresh-golden FROM=<folder holding nested_values.json>

For each case it records the value type asked for, the Python value given, the `Value` oneof
Feast set, the serialized bytes (hex) and what Feast's SDK returns when it reads the Value back
(`to_dict()` of an online response holds that). Sets come back as Python sets: recorded as sorted
lists with `"read_as": "set"`. Feast writes map entries in its protobuf runtime's order, which is
not the order given and not sorted; `"map_order": "unspecified"` marks those bytes.
"""

from __future__ import annotations

import json
import sys
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
]


def _plain(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, set | frozenset):
        return sorted(value), "set"
    return value, None


def record() -> dict[str, Any]:
    cases = []
    for value_type, value in CASES:
        proto = python_values_to_proto_values([value], feature_type=value_type)[0]
        read, read_as = _plain(feast_value_type_to_python_type(proto))
        case: dict[str, Any] = {
            "value_type": value_type.name,
            "value_type_number": value_type.value,
            "python_value": value,
            "oneof": proto.WhichOneof("val"),
            "hex": proto.SerializeToString().hex(),
            "read_back": read,
        }
        if read_as:
            case["read_as"] = read_as
        nested = value_type in (V.MAP, V.MAP_LIST, V.STRUCT, V.STRUCT_LIST)
        if nested and len(json.dumps(value)) > 2:
            case["map_order"] = "unspecified"
        cases.append(case)
    return {"feast_version": feast.__version__, "cases": cases}


if __name__ == "__main__":
    json.dump(record(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
