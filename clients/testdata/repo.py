"""The feature repo the Go and Java client tests run `repast serve` on, and the Python SDK's
answer to the same requests (the oracle the clients' results must equal).

    python repo.py write DIR HOST:PORT    # features.py, Parquet data, feature_store.yaml in DIR
    python repo.py expect DIR       # one request per line in, one answer per line out

`expect` reads `/get-online-features` request bodies (one JSON document a line, until EOF)
and for each prints, on one line, what
`FeatureStore.get_online_features(...)` returns for it, as JSON: the feature names, and per
column the values, the status names and the event times in epoch microseconds. Bytes are
base64, unix timestamps epoch seconds and non-finite floats "NaN"/"Infinity"/"-Infinity",
which is how the server writes them too. Only the SDK is used, never the server, so a
client's result that equals this output equals the SDK's.

The clients' tests run this with the repo's venv python (REPAST_PYTHON or <repo>/.venv).
"""

from __future__ import annotations

import base64
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FEATURES_PY = """
from datetime import timedelta

from repast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from repast.types import (
    Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp,
)

driver = Entity(name="driver", join_keys=["driver_id"])
user = Entity(name="user", join_keys=["user_id"])

SCALARS = {
    "i32": Int32, "i64": Int64, "f32": Float32, "f64": Float64,
    "str": String, "byt": Bytes, "flag": Bool, "ts": UnixTimestamp,
}
schema = [Field(name=n, dtype=t) for n, t in SCALARS.items()]
schema += [Field(name=n + "_list", dtype=Array(t)) for n, t in SCALARS.items()]

all_types_source = FileSource(
    name="all_types_source",
    path="data/all_types.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
# ttl 0: rows never expire, so the expected statuses do not depend on the wall clock.
all_types = FeatureView(
    name="all_types", entities=[driver], ttl=timedelta(0), schema=schema, source=all_types_source
)

pushed_source = FileSource(
    name="pushed_source",
    path="data/pushed.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
all_types_push = PushSource(name="all_types_push", batch_source=pushed_source)
pushed = FeatureView(
    name="pushed", entities=[driver], ttl=timedelta(0), schema=schema, source=all_types_push
)

users_source = FileSource(
    name="users_source", path="data/users.parquet", timestamp_field="event_timestamp"
)
user_push = PushSource(name="user_push", batch_source=users_source)
user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(0),
    schema=[Field(name="score", dtype=Float64), Field(name="visits", dtype=Int64)],
    source=user_push,
)

WIDE_TYPES = [Int64, Float64, Float32, String, Int32, Bool]
wide_source = FileSource(
    name="wide_source", path="data/wide.parquet", timestamp_field="event_timestamp"
)
wide = FeatureView(
    name="wide",
    entities=[driver],
    ttl=timedelta(0),
    schema=[Field(name=f"w{i:02d}", dtype=WIDE_TYPES[i % 6]) for i in range(50)],
    source=wide_source,
)

all_types_service = FeatureService(name="all_types_service", features=[all_types])
"""

AUTH_TOKEN = "client-test-token"

# Rows of all_types (driver_id 1001..1003) and of wide (1001..1100); 1004 is never written.
T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 12, 30, 15, 250000, tzinfo=UTC)


def _write(repo: Path, redis_address: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    (repo / "features.py").write_text(FEATURES_PY)
    config = (
        "project: clients\n"
        "registry: data/registry.json\n"
        "provider: local\n"
        "online_store:\n"
        "  type: redis\n"
        f"  connection_string: {redis_address}\n"
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    (repo / "feature_store.yaml").write_text(config)
    auth = f"feature_server:\n  auth:\n    type: bearer\n    tokens: [{AUTH_TOKEN}]\n"
    (repo / "auth.yaml").write_text(config + auth)
    ts = pa.timestamp("us", tz="UTC")
    scalar_types = {
        "i32": pa.int32(), "i64": pa.int64(), "f32": pa.float32(), "f64": pa.float64(),
        "str": pa.string(), "byt": pa.binary(), "flag": pa.bool_(), "ts": ts,
    }  # fmt: skip
    t_a = datetime(2023, 6, 1, 8, 30, 0, tzinfo=UTC)
    t_b = datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    rows: dict[str, list[Any]] = {
        "i32": [7, None, -(2**31)],
        "i64": [2**53 + 1, None, -(2**63)],
        "f32": [0.2, None, float("nan")],
        "f64": [1.0 / 3.0, None, float("-inf")],
        "str": ['héllo "wörld"\n', None, ""],
        "byt": [b"\x00\x01\xfe\xff", None, b""],
        "flag": [True, None, False],
        "ts": [t_a, None, t_b],
        "i32_list": [[1, -2, 3], None, []],
        "i64_list": [[2**62, -1], None, []],
        "f32_list": [[0.5, 0.1], None, [float("inf")]],
        "f64_list": [[1e-300, -2.5], None, []],
        "str_list": [["a", "", "ü"], None, []],
        "byt_list": [[b"\x00", b"xyz"], None, []],
        "flag_list": [[True, False], None, []],
        "ts_list": [[t_a, t_b], None, []],
    }
    columns = {"driver_id": pa.array([1001, 1002, 1003], pa.int64())}
    for name, values in rows.items():
        base = name.removesuffix("_list")
        arrow = scalar_types[base]
        columns[name] = pa.array(values, pa.list_(arrow) if name.endswith("_list") else arrow)
    columns["event_timestamp"] = pa.array([T0, T0, T1], ts)
    columns["created"] = pa.array([T0, T0, T1], ts)
    pq.write_table(pa.table(columns), data / "all_types.parquet")
    # The push sources' batch sources: empty files of the right schema.
    empty = pa.table(columns).slice(0, 0)
    pq.write_table(empty, data / "pushed.parquet")
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([], pa.string()),
                "score": pa.array([], pa.float64()),
                "visits": pa.array([], pa.int64()),
                "event_timestamp": pa.array([], ts),
            }
        ),
        data / "users.parquet",
    )
    wide_types = [pa.int64(), pa.float64(), pa.float32(), pa.string(), pa.int32(), pa.bool_()]
    ids = list(range(1001, 1101))
    wide_columns: dict[str, pa.Array] = {"driver_id": pa.array(ids, pa.int64())}
    for i in range(50):
        arrow = wide_types[i % 6]
        if pa.types.is_string(arrow):
            values: list[Any] = [f"value-{i}-{d}" for d in ids]
        elif pa.types.is_boolean(arrow):
            values = [(d + i) % 2 == 0 for d in ids]
        elif pa.types.is_floating(arrow):
            values = [d * 0.25 + i for d in ids]
        else:
            values = [d * 1000 + i for d in ids]
        wide_columns[f"w{i:02d}"] = pa.array(values, arrow)
    wide_columns["event_timestamp"] = pa.array([T0] * len(ids), ts)
    pq.write_table(pa.table(wide_columns), data / "wide.parquet")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _expect(store: Any, request: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa

    features: Any = request.get("features") or []
    if request.get("feature_service"):
        features = store.get_feature_service(request["feature_service"])
    response = store.get_online_features(
        features, request["entities"], bool(request.get("full_feature_names", False))
    )
    values = response.to_dict()
    columns = []
    for i, name in enumerate(response.feature_names):
        micros = response.timestamps(i).cast(pa.int64()).to_pylist()
        columns.append(
            {
                "values": [_plain(v) for v in values[name]],
                "statuses": response.status_names(i),
                "event_timestamps_us": micros,
            }
        )
    return {"feature_names": response.feature_names, "columns": columns}


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "write":
        _write(Path(argv[2]), argv[3])
        return 0
    if len(argv) == 3 and argv[1] == "expect":
        from repast import FeatureStore

        # One process answers every request of a test run: importing the SDK takes seconds.
        store = FeatureStore(repo_path=argv[2])
        for line in sys.stdin:
            if line.strip():
                out = _expect(store, json.loads(line))
                sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
                sys.stdout.flush()
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
