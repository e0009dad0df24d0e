"""`repast import-feast-registry`: Feast 0.67's own registry file (made by `feast apply`,
`feast materialize` and `feast materialize-incremental` on Feast's template) imported without
Feast, from a file and from S3; and files that are not a whole registry change nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feast_venv import FEAST_DEMO_TIMES, convert, feast_env, feast_python, repast_env, run
from repast import FeatureStore
from repast.errors import RegistryError
from repast.feast_registry import RegistryFormatError, read_registry
from repast.registry.s3_store import S3RegistryStore
from services import S3Server

pytestmark = pytest.mark.timeout(600)

# Feast's own reading of its registry, in its venv: what the import must reproduce.
FEAST_READ = r"""
import json
from feast.protos.feast.core.Registry_pb2 import Registry
r = Registry()
r.ParseFromString(open("data/registry.db", "rb").read())
def iso(t):
    return t.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({
    "entities": sorted(e.spec.name for e in r.entities if e.spec.name != "__dummy"),
    "data_sources": sorted(d.name for d in r.data_sources),
    "feature_views": {v.spec.name: [[iso(i.start_time), iso(i.end_time)]
                                    for i in v.meta.materialization_intervals]
                      for v in r.feature_views},
    "on_demand_feature_views": sorted(v.spec.name for v in r.on_demand_feature_views),
    "feature_services": sorted(s.spec.name for s in r.feature_services),
    "label_views": sorted(v.spec.name for v in r.label_views),
    "projects": [p.spec.name for p in r.projects],
}))
"""


def _repast_repo(feast_demo: Path, root: Path) -> Path:
    """A copy of Feast's repo whose yaml names new files for Repast's registry and online
    store (Feast's are only read)."""
    repo = root / "demo" / "feature_repo"
    shutil.copytree(feast_demo.parent, repo.parent)
    yaml = repo / "feature_store.yaml"
    text = yaml.read_text().replace("data/registry.db", "data/registry.json")
    yaml.write_text(text.replace("data/online_store.db", "data/online.db"))
    return repo


def _dump(repo: Path, project: str = "demo") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((repo / "data" / "registry.json").read_text())
    return document["projects"][project]  # type: ignore[no-any-return]


def test_import_then_apply_continues_where_feast_stopped(feast_demo: Path, tmp_path: Path) -> None:
    feast = json.loads(run([str(feast_python()), "-c", FEAST_READ], feast_demo, feast_env()))
    repo = _repast_repo(feast_demo, tmp_path)
    before = (repo / "data" / "registry.db").read_bytes()

    out = subprocess.run(
        [str(Path(sys.executable).parent / "repast"), "import-feast-registry"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (repo / "data" / "registry.db").read_bytes() == before  # Feast's file only read
    imported = _dump(repo)
    # Every object Repast can define, by name, as Feast's registry holds them.
    assert sorted(imported["entities"]) == feast["entities"] == ["driver"]
    assert sorted(imported["data_sources"]) == feast["data_sources"]
    assert sorted(imported["feature_views"]) == sorted(feast["feature_views"])
    assert sorted(imported["label_views"]) == feast["label_views"]
    assert imported["spec"]["description"] == "A project for driver statistics"
    # Feast's materialization intervals, each view's, in Feast's order (two per view).
    start, mid, end = (f"{t}Z" for t in FEAST_DEMO_TIMES)
    for name, intervals in feast["feature_views"].items():
        assert intervals == [[start, mid], [mid, end]], name
        assert imported["feature_views"][name]["meta"]["materialization_intervals"] == intervals
    # On-demand views are never unpickled; the services using them wait for `apply`.
    assert feast["on_demand_feature_views"] == [
        "transformed_conv_rate",
        "transformed_conv_rate_fresh",
    ]
    assert imported["on_demand_feature_views"] == imported["feature_services"] == {}
    for name in feast["on_demand_feature_views"]:
        assert (
            f"Skipped on-demand feature view {name}: its transformation is a dill-pickled "
            "Python function, which Repast never unpickles" in " ".join(out.stderr.split())
        )
    for name in feast["feature_services"]:
        assert f"Skipped feature service {name}: it uses on-demand feature view" in out.stderr
    assert "Imported feature view driver_hourly_stats\n" in out.stdout
    assert "Imported 2 materialization interval(s) of driver_hourly_stats\n" in out.stdout

    # The same objects as `repast apply` makes from the converted repo (specs compared whole),
    # except the label view's join key, which Feast's registry holds as a String.
    applied_repo = _repast_repo(feast_demo, tmp_path / "applied")
    convert(applied_repo)
    run(["repast", "apply"], applied_repo, repast_env())
    applied = _dump(applied_repo)
    for kind in ("entities", "data_sources", "feature_views", "label_views"):
        for name, record in imported[kind].items():
            spec, want = record["spec"], applied[kind][name]["spec"]
            if kind == "label_views":
                assert spec["entity_columns"][0]["dtype"] == "String"
                spec = {**spec, "entity_columns": want["entity_columns"]}
            assert spec == want, (kind, name)

    # Step two: `repast apply` on the converted .py adds the on-demand views and services and
    # keeps the intervals; materialize-incremental starts where Feast's last run ended.
    convert(repo)
    run(["repast", "apply"], repo, repast_env())
    after = _dump(repo)
    assert sorted(after["on_demand_feature_views"]) == feast["on_demand_feature_views"]
    assert sorted(after["feature_services"]) == feast["feature_services"]
    for name, intervals in feast["feature_views"].items():
        assert after["feature_views"][name]["meta"]["materialization_intervals"] == intervals
    later = "2099-06-01T00:00:00"
    run(["repast", "materialize-incremental", later], repo, repast_env())
    intervals = _dump(repo)["feature_views"]["driver_hourly_stats"]["meta"]
    assert intervals["materialization_intervals"][-1] == [end, f"{later}Z"]


def test_import_from_s3(feast_demo: Path, tmp_path: Path, s3_env: S3Server, s3_bucket: str) -> None:
    # Uploaded with Repast's own S3 client (a plain PUT of the bytes).
    uri = f"s3://{s3_bucket}/feast/registry.pb"
    upload = S3RegistryStore(uri)
    upload.write((feast_demo / "data" / "registry.db").read_bytes(), None)
    upload.close()
    repo = _repast_repo(feast_demo, tmp_path)
    store = FeatureStore(repo_path=repo)
    imported = store.import_feast_registry(uri)
    assert sorted(v.name for v in store.list_feature_views()) == [
        "driver_hourly_stats",
        "driver_hourly_stats_fresh",
    ]
    assert sorted(imported.intervals) == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    with pytest.raises(RegistryError, match=f"no Feast registry at s3://{s3_bucket}/nope.pb"):
        store.import_feast_registry(f"s3://{s3_bucket}/nope.pb")
    store.online_store.close()


def _refused(store: FeatureStore, source: Path, match: str) -> None:
    registry = store.config.repo_path / "data" / "registry.json"
    before = registry.read_bytes() if registry.exists() else None
    with pytest.raises(RegistryError, match=match):
        store.import_feast_registry(str(source))
    assert (registry.read_bytes() if registry.exists() else None) == before


def test_truncated_corrupt_or_foreign_files_change_nothing(
    feast_demo: Path, tmp_path: Path
) -> None:
    repo = _repast_repo(feast_demo, tmp_path)
    store = FeatureStore(repo_path=repo)
    data = (feast_demo / "data" / "registry.db").read_bytes()
    bad = tmp_path / "bad.db"
    for cut, match in [
        (0, "the file is empty"),
        (1, "ends inside a varint|runs past the end"),
        (100, "runs past the end of the data; the file is cut short or corrupt"),
        (len(data) // 2, "cut short or corrupt"),
        (len(data) - 1, "cut short or corrupt"),
    ]:
        bad.write_bytes(data[:cut])
        _refused(store, bad, match)
    bad.write_bytes(b'{"schema_version": 1}')
    _refused(store, bad, "is a JSON document, not a Feast")
    bad.write_bytes(data[:10] + b"\xff" * 20 + data[30:])
    _refused(store, bad, "not a readable Feast registry")
    _refused(store, repo / "data" / "missing.db", "the file does not exist")
    # Importing onto the registry Repast itself uses is refused before reading it.
    yaml = repo / "feature_store.yaml"
    yaml.write_text(yaml.read_text().replace("data/registry.json", "data/registry.db"))
    with pytest.raises(RegistryError, match="point `registry:` at a new file"):
        FeatureStore(repo_path=repo).import_feast_registry("data/registry.db")
    store.online_store.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_times_and_durations_out_of_range_are_format_errors() -> None:
    # Feast's header (version_id, last_updated) with a last_updated beyond year 9999.
    header = _field(4, b"id") + _field(5, _varint(1 << 3) + _varint(2**62))
    with pytest.raises(RegistryFormatError, match="field 5: time out of range"):
        read_registry(header, "demo")
    ok = _field(4, b"id") + _field(5, _varint(1 << 3) + _varint(1))
    spec = _field(1, b"v") + _field(2, b"demo") + _field(6, _varint(1 << 3) + _varint(2**62))
    with pytest.raises(RegistryFormatError, match="field 6: duration out of range"):
        read_registry(ok + _field(6, _field(1, spec)), "demo")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_never_imported(data: bytes) -> None:
    # Random input is refused with a RegistryFormatError, or (at worst) parses to nothing
    # for the project; never another exception.
    try:
        imported = read_registry(data, "demo")
    except RegistryFormatError:
        return
    assert imported.objects == []


# A Feast repo with what the template lacks: a Kafka source (its batch source listed after
# it), a stream view, field mapping, tags and owners, a Struct-free list type, a projection
# with an alias and a join key map; and stream views with aggregations (tiled and not, with
# Feast's aliases, names and slide intervals), which import as apply makes them.
STREAM_REPO = """
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, KafkaSource, ValueType
from feast.data_format import JsonFormat
from feast.stream_feature_view import StreamFeatureView
from feast.types import Array, Float32, Int64, String
rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64,
               description="a rider", tags={"team": "x"}, owner="me@x")
batch = FileSource(name="trips_batch", path="data/trips.parquet", timestamp_field="ts",
                   created_timestamp_column="created", field_mapping={"fare_usd": "fare"})
kafka = KafkaSource(name="trips_stream", kafka_bootstrap_servers="localhost:9092",
                    topic="trips", timestamp_field="ts", batch_source=batch,
                    message_format=JsonFormat(schema_json="rider_id integer, fare double"),
                    watermark_delay_threshold=timedelta(minutes=5))
trips = FeatureView(name="trips", entities=[rider], ttl=timedelta(hours=2), source=batch,
                    schema=[Field(name="rider_id", dtype=Int64),
                            Field(name="fare", dtype=Float32, tags={"unit": "usd"}),
                            Field(name="zones", dtype=Array(String))],
                    tags={"tier": "gold"}, owner="me@x", description="trips")
last = StreamFeatureView(name="trip_last", entities=[rider], ttl=timedelta(days=1),
                         schema=[Field(name="rider_id", dtype=Int64),
                                 Field(name="fare", dtype=Float32)],
                         source=kafka, timestamp_field="ts", mode="spark")
riders = FeatureService(name="riders", owner="me@x", description="svc", tags={"a": "b"},
                        features=[last, trips[["fare"]].with_name("trips_alias")
                                  .with_join_key_map({"rider_id": "passenger_id"})])
"""
AGGREGATED = """
from feast.aggregation import Aggregation
sums = StreamFeatureView(name="trip_sums", entities=[rider], ttl=timedelta(days=1),
                         schema=[Field(name="rider_id", dtype=Int64),
                                 Field(name="fare", dtype=Float32)],
                         source=kafka, timestamp_field="ts", mode="spark",
                         aggregations=[Aggregation(column="fare", function="sum",
                                                   time_window=timedelta(hours=1))])
tiled = StreamFeatureView(
    name="trip_tiled", entities=[rider], source=kafka, timestamp_field="ts", mode="spark",
    schema=[Field(name="rider_id", dtype=Int64), Field(name="fare", dtype=Float32)],
    enable_tiling=True, tiling_hop_size=timedelta(minutes=10),
    aggregations=[
        Aggregation(column="fare", function="avg", time_window=timedelta(hours=1),
                    slide_interval=timedelta(minutes=20)),
        Aggregation(column="fare", function="max", time_window=timedelta(days=1), name="top"),
        Aggregation(column="rider_id", function="count", time_window=timedelta(hours=2)),
        Aggregation(column="fare", function="std", time_window=timedelta(days=1)),
    ])
sums_service = FeatureService(name="sums", features=[sums, tiled])
"""
# Feast only: what Repast refuses at apply, which Feast 0.67 stores without checking; a
# projection of an aggregated view by input column (Repast's views serve the aggregations);
# a BatchFeatureView with aggregations, which Feast's registry stores without them.
FEAST_ONLY = """
from feast.batch_feature_view import BatchFeatureView
batch_sums = BatchFeatureView(name="batch_sums", entities=[rider], source=batch,
                              schema=[Field(name="rider_id", dtype=Int64),
                                      Field(name="fare", dtype=Float32)],
                              aggregations=[Aggregation(column="fare", function="sum",
                                                        time_window=timedelta(hours=1))])
fares = FeatureService(name="fares", features=[tiled[["fare"]]])
median = StreamFeatureView(name="trip_median", entities=[rider], source=kafka, timestamp_field="ts",
                           schema=[Field(name="rider_id", dtype=Int64),
                                   Field(name="fare", dtype=Float32)], mode="spark",
                           aggregations=[Aggregation(column="fare", function="median",
                                                     time_window=timedelta(hours=1))])
median_service = FeatureService(name="medians", features=[median])
"""


def test_stream_views_kafka_sources_and_projections_import_as_apply_makes_them(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def repo(root: Path, definitions: str, registry: str) -> Path:
        (root / "data").mkdir(parents=True)
        (root / "feature_store.yaml").write_text(
            f"project: streams\nregistry: data/{registry}\nprovider: local\n"
            "online_store:\n  type: sqlite\n  path: data/online.db\n"
        )
        (root / "definitions.py").write_text(definitions)
        stamps = pd.to_datetime(
            ["2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 02:30", "2024-01-01 01:00"],
            utc=True,
        )
        pq.write_table(
            pa.table({"rider_id": [1, 1, 1, 2],
                      "fare_usd": pa.array([1.5, 2.5, 8.0, 3.0], pa.float32()),
                      "zones": [["a"], [], None, ["b"]], "ts": pa.array(stamps),
                      "created": pa.array(stamps)}),
            root / "data" / "trips.parquet",
        )  # fmt: skip
        return root

    feast = repo(tmp_path / "feast", STREAM_REPO + AGGREGATED + FEAST_ONLY, "registry.db")
    run([str(feast_python().parent / "feast"), "apply"], feast, feast_env())
    imported_repo = repo(tmp_path / "imported", "", "registry.json")
    shutil.copy(feast / "data" / "registry.db", imported_repo / "data" / "registry.db")
    store = FeatureStore(repo_path=imported_repo)
    imported = store.import_feast_registry("data/registry.db")
    imported_repo_services = {s.name: s for s in store.list_feature_services()}
    # Feast's FeatureView record has no field for aggregations: Feast itself reads the
    # BatchFeatureView back as a plain view of its inputs, and so does the import.
    batch_sums = store.get_feature_view("batch_sums")
    assert [f.name for f in batch_sums.features] == ["fare"]
    assert getattr(batch_sums, "aggregations", []) == []
    tiled_view = store.get_stream_feature_view("trip_tiled")
    store.online_store.close()
    assert [(s.kind, s.name) for s in imported.skipped] == [
        ("stream feature view", "trip_median"),
        ("feature service", "medians"),
    ]
    assert imported.skipped[0].reason.startswith(
        "Repast refuses its definition: Aggregation 'median_fare': function must be one of sum,"
    ), imported.skipped[0].reason
    assert imported.skipped[1].reason == (
        "it uses stream feature view 'trip_median', which was skipped"
    )
    # Repast's own apply of the same definitions (imports changed, without the refused view)
    # makes the same records.
    applied_repo = repo(
        tmp_path / "applied",
        (STREAM_REPO + AGGREGATED).replace("from feast", "from repast"),
        "registry.json",
    )
    run(["repast", "apply"], applied_repo, repast_env())
    ours, theirs = _dump(imported_repo, "streams"), _dump(applied_repo, "streams")
    for kind in (
        "entities",
        "data_sources",
        "feature_views",
        "stream_feature_views",
        "feature_services",
    ):
        assert sorted(set(ours[kind]) - {"fares", "batch_sums"}) == sorted(theirs[kind]), kind
        for name in theirs[kind]:
            assert ours[kind][name]["spec"] == theirs[kind][name]["spec"], (kind, name)
    assert sorted(ours["data_sources"]) == ["trips_batch", "trips_stream"]
    # `fare` is all of trip_tiled's inputs but its join key: in Feast's registry that is the
    # same projection as the whole view's, and imports as the whole view.
    fares = imported_repo_services["fares"]
    assert fares.feature_view_projections[0].features == tiled_view.features
    assert ours["feature_services"]["riders"]["spec"]["features"][1]["join_key_map"] == {
        "rider_id": "passenger_id"
    }
    tiled = ours["stream_feature_views"]["trip_tiled"]["spec"]
    assert (tiled["enable_tiling"], tiled["tiling_hop_size"]) == (True, 600)
    assert [a["slide_interval"] for a in tiled["aggregations"]] == [1200, 86400, 7200, 86400]
    # ... and the imported views compute what the applied ones do, named as Feast names them.
    features = [
        "trip_sums:sum_fare_3600s",
        "trip_tiled:avg_fare_3600s",
        "trip_tiled:top",
        "trip_tiled:count_rider_id_7200s",
        "trip_tiled:std_fare_86400s",
    ]
    entity_df = pd.DataFrame(
        {"rider_id": [1, 1, 2, 1], "event_timestamp": pd.to_datetime(
            ["2024-01-01 00:30", "2024-01-01 03:00", "2024-01-01 00:30", "2024-01-01 04:00"],
            utc=True)}
    )  # fmt: skip
    frames = []
    for root in (imported_repo, applied_repo):
        store = FeatureStore(repo_path=root)
        frames.append(store.get_historical_features(entity_df, features).to_df())
        store.online_store.close()
    pd.testing.assert_frame_equal(frames[0], frames[1])
    first = frames[0].sort_values(["rider_id", "event_timestamp"]).reset_index(drop=True)
    assert first["sum_fare_3600s"].tolist()[:2] == pytest.approx([4.0, 8.0])
    assert first["sum_fare_3600s"][2:].isna().all()
    assert first["count_rider_id_7200s"].tolist() == [2, 1, 1, 0]
    assert first["top"].tolist()[:3] == pytest.approx([2.5, 8.0, 8.0])


def test_projection_of_some_inputs_selects_their_aggregations() -> None:
    from datetime import timedelta

    from repast import Aggregation, Field, FileSource, PushSource, StreamFeatureView
    from repast.feast_registry.convert import _aggregated_features
    from repast.types import Float64, Int64

    batch = FileSource(name="f", path="data/f.parquet", timestamp_field="ts")
    source = PushSource(name="p", batch_source=batch)
    view = StreamFeatureView(
        name="v",
        source=source,
        entities=["rider"],
        timestamp_field="ts",
        schema=[
            Field(name=n, dtype=t) for n, t in [("rider_id", Int64), ("a", Int64), ("b", Float64)]
        ],
        aggregations=[
            Aggregation(column=c, function=f, time_window=timedelta(hours=1))
            for c, f in [("a", "sum"), ("b", "max"), ("a", "count"), ("rider_id", "count")]
        ],
    )

    def names(selected: list[str]) -> list[str]:
        chosen = _aggregated_features(
            view, {"rider_id"}, [Field(name=n, dtype=Int64) for n in selected]
        )
        return [f.name for f in chosen]

    assert names(["a"]) == ["sum_a_3600s", "count_a_3600s"]
    assert names(["b"]) == ["max_b_3600s"]
    assert names(["a", "b"]) == []  # every input: the whole view
    assert names(["max_b_3600s"]) == ["max_b_3600s"]  # already Repast's names
