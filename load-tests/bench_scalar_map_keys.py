"""What ScalarMap keys cost on the write and read paths, against Feast's own conversion.

    .venv/bin/python load-tests/bench_scalar_map_keys.py [--rows 200000] [--repeat 5] [--feast]

One column of `--rows` Python dicts with four keys each, in two kinds: int keys (the common
case) and one key of each kind Feast also takes (bytes, uuid.UUID, decimal.Decimal, datetime).
Each round times, in this process:

- `write`: Python dicts to the stored JSON text (`stored_types.scalar_map_inputs`, which tags
  typed keys in Rust, then `_core.nested_json_text`): what every SDK write and push does;
- `baseline`: the same column of int-key dicts through the path without the tagging pass
  (`orjson.dumps` of the column, split in Rust, then `nested_json_text`): what main did before
  typed keys were stored, so `write/int` over it is the cost of the new pass;
- `feast_bytes`: the stored text to Feast's Value bytes (`_core.encode_nested`, `layout: feast`);
- `read`: the stored text back to dicts with typed keys (`stored_types.python_values`, which
  is `_core.scalar_map_objects`, what `OnlineResponse.to_dict` does).

With `--feast`, Feast 0.67's `python_values_to_proto_values(..., ValueType.SCALAR_MAP)` on the
same dicts (and `SerializeToString`) runs in the test-only Feast venv (tests/feast_venv.py) as
the Feast baseline for `write` + `feast_bytes`, and `Value.FromString` +
`feast_value_type_to_python_type` on those bytes as the baseline for `read`. Prints one JSON
line per round and a table of medians.
"""

from __future__ import annotations

import argparse
import decimal
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from repast import _core  # noqa: E402
from repast.online.stored_types import json_column, python_values, scalar_map_inputs  # noqa: E402

SM = 47
START = datetime(2024, 1, 1, tzinfo=UTC)


def int_keyed(rows: int) -> list[dict[Any, Any]]:
    return [{i: "a", i + 1: 2, i + 2: [1, 2], i + 3: None} for i in range(rows)]


def typed_keyed(rows: int) -> list[dict[Any, Any]]:
    return [
        {
            i.to_bytes(4, "little"): "a",
            uuid.UUID(int=i): 2,
            decimal.Decimal(i) / 100: [1, 2],
            START + timedelta(seconds=i): None,
        }
        for i in range(rows)
    ]


def timed(step: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = step(*args)
    return time.perf_counter() - began, result


def baseline(values: list[dict[Any, Any]]) -> pa.Array:
    cells = _core.json_array_cells(orjson.dumps(values, option=orjson.OPT_NON_STR_KEYS), "m")
    return _core.nested_json_text(cells, SM, None, "m")


def write(values: list[dict[Any, Any]]) -> pa.Array:
    return _core.nested_json_text(scalar_map_inputs(values, "m"), SM, None, "m")


def read_back(stored: pa.Array) -> list[Any]:
    return python_values(json_column(stored), SM)


FEAST_SCRIPT = """
import decimal, json, sys, time, uuid
from datetime import UTC, datetime, timedelta
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
rows, repeat = int(sys.argv[1]), int(sys.argv[2])
START = datetime(2024, 1, 1, tzinfo=UTC)
kinds = {
    "int": [{i: "a", i + 1: 2, i + 2: [1, 2], i + 3: None} for i in range(rows)],
    "typed": [
        {i.to_bytes(4, "little"): "a", uuid.UUID(int=i): 2, decimal.Decimal(i) / 100: [1, 2],
         START + timedelta(seconds=i): None}
        for i in range(rows)
    ],
}
for _ in range(repeat):
    for kind, values in kinds.items():
        began = time.perf_counter()
        protos = python_values_to_proto_values(values, ValueType.SCALAR_MAP)
        encoded = [p.SerializeToString() for p in protos]
        wrote = time.perf_counter() - began
        began = time.perf_counter()
        read = [feast_value_type_to_python_type(Value.FromString(b)) for b in encoded]
        print(json.dumps({"kind": kind, "feast_write_bytes": wrote,
                          "feast_read": time.perf_counter() - began,
                          "bytes": sum(map(len, encoded))}))
"""


def feast_rounds(rows: int, repeat: int) -> list[dict[str, Any]]:
    from feast_venv import feast_python

    out = subprocess.run(
        [str(feast_python()), "-c", FEAST_SCRIPT, str(rows), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--feast", action="store_true", help="also time Feast 0.67's conversion")
    args = parser.parse_args()
    kinds = {"int": int_keyed(args.rows), "typed": typed_keyed(args.rows)}
    rounds: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for kind, values in kinds.items():
            row: dict[str, Any] = {"kind": kind}
            if kind == "int":
                row["baseline"], _ = timed(baseline, values)
            row["write"], stored = timed(write, values)
            row["feast_bytes"], encoded = timed(_core.encode_nested, stored, SM, "m")
            row["read"], read = timed(read_back, stored)
            assert len(read) == args.rows
            assert read[1] == values[1]
            row["bytes"] = sum(len(b) for b in encoded.to_pylist())
            print(json.dumps(row), flush=True)
            rounds.append(row)
    feast = feast_rounds(args.rows, args.repeat) if args.feast else []
    for row in feast:
        print(json.dumps(row), flush=True)

    def median(kind: str, key: str, source: list[dict[str, Any]]) -> float:
        return statistics.median(r[key] for r in source if r["kind"] == kind and key in r)

    print(f"\n{args.rows} rows x 4 keys, medians of {args.repeat} (seconds; us/row)")
    for kind in kinds:
        for key in ("baseline", "write", "feast_bytes", "read"):
            if any(key in r for r in rounds if r["kind"] == kind):
                m = median(kind, key, rounds)
                print(f"  {kind:5} {key:12} {m:7.3f} s  {m / args.rows * 1e6:6.2f} us/row")
        if feast:
            ours = median(kind, "write", rounds) + median(kind, "feast_bytes", rounds)
            theirs = median(kind, "feast_write_bytes", feast)
            print(
                f"  {kind:5} Feast dicts->bytes {theirs:7.3f} s; Repast write+feast_bytes "
                f"{ours:.3f} s: {theirs / ours:.1f}x faster"
            )
            ours, theirs = median(kind, "read", rounds), median(kind, "feast_read", feast)
            print(
                f"  {kind:5} Feast bytes->dicts {theirs:7.3f} s; Repast read "
                f"{ours:.3f} s: {theirs / ours:.1f}x faster"
            )
    int_write, int_base = median("int", "write", rounds), median("int", "baseline", rounds)
    print(f"  int-key write over the path without the tagging pass: {int_write / int_base:.2f}x")


if __name__ == "__main__":
    main()
