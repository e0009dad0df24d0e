"""Feast 0.67's own Python client, `online_store: {type: remote}`, against `repast serve`.

Feast's template is applied and materialized twice over the same range: by Feast (whose
registry the remote client reads, as a Feast deployment's clients do) and, converted by its
imports, by Repast, which serves it. A script run in the Feast venv then reads, pushes and
provokes errors through Feast's client against the Repast server, and the same reads and
pushes run in-process with Feast against Feast's own store: successful calls must give Feast's
values, and errors must come out as Feast's typed exceptions (feast.errors classes, parsed by
Feast's client from the body) with Repast's messages, never `RuntimeError` or a warning.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from feast_venv import FEAST_DEMO_TIMES, convert, feast_env, feast_python, repast_env, run
from server_helpers import serve_process

pytestmark = pytest.mark.timeout(900)

# Run by the Feast venv's python in a repo dir: `probe.py <mode> <server url>`; prints one JSON
# document {case: {"ok": value} | {"error": [module, class, message]}, "warnings": [...]}.
PROBE = r"""
import json, logging, sys
from datetime import datetime, timezone
import pandas as pd
import requests
from feast import FeatureStore
from feast.data_source import PushMode
from feast.feature_service import FeatureService
from feast.rest_error_handler import rest_error_handling_decorator

mode, url = sys.argv[1], sys.argv[2]
warnings = []
class Collect(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(f"{record.name}: {record.getMessage()}")
logging.getLogger().addHandler(Collect())
store = FeatureStore(repo_path=".")
out = {}

def case(name, call):
    try:
        out[name] = {"ok": call()}
    except Exception as exc:
        out[name] = {"error": [type(exc).__module__, type(exc).__name__, str(exc)]}

def read(features, rows, **kw):
    return lambda: store.get_online_features(features=features, entity_rows=rows, **kw).to_dict()

ROWS = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 1003}, {"driver_id": 9}]
PLAIN = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips",
         "driver_hourly_stats:driver_metadata", "driver_hourly_stats:driver_config",
         "driver_hourly_stats:driver_profile"]
case("read", read(PLAIN, ROWS))
case("read_full_names", read(PLAIN[:2], ROWS, full_feature_names=True))
WITH_REQUEST = [dict(r, val_to_add=1, val_to_add_2=2) for r in ROWS]
case("read_service", read(store.get_feature_service("driver_activity_v1"), WITH_REQUEST))
case("read_odfv", read(["transformed_conv_rate:conv_rate_plus_val1"],
                       [dict(r, val_to_add=10, val_to_add_2=20) for r in ROWS]))
event = pd.DataFrame({
    "driver_id": [1001],
    "event_timestamp": [datetime(2030, 1, 1, 12, 0, 0)],
    "created": [datetime(2030, 1, 1, 12, 0, 0)],
    "conv_rate": [1.0], "acc_rate": [0.5], "avg_daily_trips": [1000],
    "driver_metadata": [{"vehicle_type": "truck", "rating": "5.0"}],
    "driver_config": [json.dumps({"max_distance_km": 500, "preferred_zones": ["north"]})],
    "driver_profile": [{"name": "driver_1001_updated", "age": "30"}],
})
case("push", lambda: store.push("driver_stats_push_source", event, to=PushMode.ONLINE))
case("read_pushed", read(store.get_feature_service("driver_activity_v3"), WITH_REQUEST))
# Lenient as Feast: a join key as a string that parses as its integer type, the entity's name
# for its join key, and Feast's metadata flag (the views read, each once, listed by name).
case("read_string_key", read(PLAIN[:2], [{"driver_id": "1001"}, {"driver_id": "1002"}]))
case("read_entity_name", read(PLAIN[:2], [{"driver": 1001}, {"driver": 1002}]))
def views_read():
    response = store.get_online_features(
        features=["transformed_conv_rate:conv_rate_plus_val1", "driver_hourly_stats:acc_rate"],
        entity_rows=WITH_REQUEST, include_feature_view_version_metadata=True)
    listed = response.proto.metadata.feature_view_metadata
    return [response.to_dict(), [(m.name, m.version) for m in listed]]
case("read_version_metadata", views_read)

# An integer event time in a push: Feast reads nanoseconds. Feast's client turns a frame's
# times into text before it calls the server, so the server's own /push gets the integers.
EPOCH = 1_893_456_000 * 10**9
epoch_df = {"driver_id": [1003], "event_timestamp": [EPOCH], "created": [EPOCH],
            "conv_rate": [0.25], "acc_rate": [0.5], "avg_daily_trips": [77],
            "driver_metadata": [{"a": "b"}], "driver_config": ["{}"],
            "driver_profile": [{"name": "x", "age": "1"}]}
def epoch_push():
    fresh = ["driver_hourly_stats_fresh:avg_daily_trips"]
    if mode == "remote":
        body = {"push_source_name": "driver_stats_push_source", "df": epoch_df}
        requests.post(url + "/push", json=body).raise_for_status()
        got = requests.post(url + "/get-online-features",
                            json={"entities": {"driver_id": [1003]}, "features": fresh}).json()
        return [got["results"][1]["values"][0], got["results"][1]["event_timestamps"][0]]
    store.push("driver_stats_push_source", pd.DataFrame(epoch_df), to=PushMode.ONLINE)
    got = store.get_online_features(features=fresh, entity_rows=[{"driver_id": 1003}])
    return [got.to_dict()["avg_daily_trips"][0],
            got.proto.results[1].event_timestamps[0].ToJsonString()]
case("epoch_push", epoch_push)

if mode == "remote":
    case("unknown_view", read(["nope:conv_rate"], ROWS))
    case("unknown_feature", read(["driver_hourly_stats:nope"], ROWS))
    case("unknown_service", read(FeatureService(name="nope_service", features=[]), ROWS))
    case("bad_key", read(["driver_hourly_stats:conv_rate"], [{"driver_id": "abc"}]))
    case("missing_key", read(["driver_hourly_stats:conv_rate"], [{"rider": 1}]))
    case("missing_request_data", read(["transformed_conv_rate:conv_rate_plus_val1"], ROWS))

    # Feast's client never calls /push (it writes through /write-to-online-store), so the
    # push errors go through Feast's own REST error handling, as its clients' calls do.
    @rest_error_handling_decorator
    def post(session, config, path, body):
        return session.post(url + path, json=body)

    def push(body):
        return lambda: post(store.config, "/push", body).status_code

    case("unknown_push_source", push({"push_source_name": "nope_push", "df": {"driver_id": [1]}}))
    case("bad_push", push({"push_source_name": "driver_stats_push_source",
                           "df": {"driver_id": [1001], "conv_rate": ["fast"]}}))
    case("unknown_write_view", lambda: post(store.config, "/write-to-online-store",
         {"feature_view_name": "nope", "df": {"driver_id": [1]}}).status_code)
out["warnings"] = warnings
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def repos(feast_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(Feast's applied and materialized template, the same converted to Repast and
    materialized over the same range)."""
    root = tmp_path_factory.mktemp("feast-remote")
    feast_repo, repast_repo = (root / name / "feature_repo" for name in ("feast", "repast"))
    shutil.copytree(feast_demo.parent, feast_repo.parent)
    shutil.copytree(feast_demo.parent, repast_repo.parent)
    convert(repast_repo)
    yaml = repast_repo / "feature_store.yaml"
    text = yaml.read_text().replace("data/registry.db", "data/registry.json")
    # Step one of a migration: Feast's online semantics (docs/migrating-from-feast.md).
    yaml.write_text(text.replace("data/online_store.db", "data/online.db") + "online_ttl: feast\n")
    run(["repast", "apply"], repast_repo, repast_env())
    start, _, end = FEAST_DEMO_TIMES
    run(["repast", "materialize", start, end], repast_repo, repast_env())
    return feast_repo, repast_repo


def probe(repo: Path, mode: str, url: str) -> dict[str, Any]:
    (repo / "probe.py").write_text(PROBE)
    result: dict[str, Any] = json.loads(
        run([str(feast_python()), "probe.py", mode, url], repo, feast_env())
    )
    return result


def remote_client(feast_repo: Path, url: str, tmp_path: Path) -> Path:
    """A Feast client repo: Feast's registry, the online store at `url`."""
    client = tmp_path / "client"
    client.mkdir()
    (client / "feature_store.yaml").write_text(
        "project: demo\n"
        f"registry: {feast_repo / 'data' / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n  type: remote\n  path: {url}\n"
        "entity_key_serialization_version: 3\n"
    )
    return client


def test_feasts_remote_client_reads_pushes_and_gets_typed_errors(
    repos: tuple[Path, Path], tmp_path: Path
) -> None:
    feast_repo, repast_repo = repos
    with serve_process(repast_repo, tmp_path) as server:
        ours = probe(remote_client(feast_repo, server.url, tmp_path), "remote", server.url)
    # Feast in-process on its own store: the values the remote client must see.
    theirs = probe(feast_repo, "local", "")

    assert ours.pop("warnings") == []  # no "Invalid error detail" from Feast's client
    for name in (
        "read",
        "read_full_names",
        "read_service",
        "read_odfv",
        "push",
        "read_pushed",
        "read_string_key",
        "read_entity_name",
        "read_version_metadata",
        "epoch_push",
    ):
        assert "ok" in theirs[name], (name, theirs[name])
        assert ours[name] == theirs[name], name
    assert ours["read"]["ok"]["driver_id"] == [1001, 1002, 1003, 9]
    assert ours["read"]["ok"]["conv_rate"][3] is None
    assert ours["read_pushed"]["ok"]["avg_daily_trips"][0] == 1000
    assert ours["read_string_key"]["ok"]["driver_id"] == [1001, 1002]
    assert ours["read_version_metadata"]["ok"][1] == [["driver_hourly_stats", 0]]
    assert ours["epoch_push"]["ok"] == [77, "2030-01-01T00:00:00Z"]

    def error(name: str) -> tuple[str, str]:
        module, cls, message = ours[name]["error"]
        assert module == "feast.errors", ours[name]
        return cls, message

    cls, message = error("unknown_view")
    assert cls == "FeatureViewNotFoundException"
    assert message.startswith("feature view 'nope' does not exist in project 'demo'; known:")
    cls, message = error("unknown_feature")
    assert cls == "FeastObjectNotFoundException"
    assert "feature view 'driver_hourly_stats' has no feature 'nope'" in message
    cls, message = error("unknown_service")
    assert cls == "FeatureServiceNotFoundException"
    assert "feature service 'nope_service' does not exist in project 'demo'" in message
    assert "driver_activity_v1" in message
    cls, message = error("bad_key")
    assert cls == "FeastError"
    assert "entity column 'driver_id'" in message
    assert "row 0 is 'abc', expected an integer" in message
    cls, message = error("missing_key")
    assert cls == "FeastError"
    assert "needs entity column 'driver_id'" in message
    cls, message = error("missing_request_data")
    assert cls == "RequestDataNotFoundInEntityRowsException"
    assert "needs request data 'val_to_add'" in message
    cls, message = error("unknown_push_source")
    assert cls == "PushSourceNotFoundException"
    assert "nope_push" in message
    cls, message = error("bad_push")
    assert cls == "FeastError"
    assert "conv_rate" in message
    cls, message = error("unknown_write_view")
    assert cls == "FeatureViewNotFoundException"
    assert "feature view 'nope' does not exist" in message
