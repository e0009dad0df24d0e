"""The same jobs through Spark Connect (`spark.remote: sc://...`): a real Connect server from
the pyspark package on 127.0.0.1; a historical retrieval and a materialization into Redis run in
a separate process (pyspark allows one kind of session per process, and the other Spark tests
hold a local one), each compared with the local store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from online_stores import online_config
from repast import FeatureStore
from services import RedisServer
from spark_connect import SparkConnectServer
from spark_connect_job import FEATURES
from test_spark_materialize import T0, _read_all, _view_repo
from test_spark_offline import DEFINITIONS, _entity, _write_data

JOB = Path(__file__).with_name("spark_connect_job.py")


@pytest.fixture(scope="module")
def connect() -> Iterator[SparkConnectServer]:
    server = SparkConnectServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "repast.online.read.now_micros", lambda: int((T0 + timedelta(days=3)).timestamp() * 1e6)
    )


def _run(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(JOB), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_historical_retrieval_through_spark_connect(
    connect: SparkConnectServer, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: connected\nregistry: data/registry.json\nprovider: local\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
    )
    (repo / "definitions.py").write_text(DEFINITIONS)
    trips = _write_data(repo / "data")
    local = FeatureStore(repo_path=repo)
    local.apply_repo()
    entity = _entity(trips)
    pq.write_table(entity, tmp_path / "entity.parquet")
    out = str(tmp_path / "out.parquet")
    _run("historical", connect.url, str(repo), str(tmp_path / "entity.parquet"), out)
    want = local.get_historical_features(entity, FEATURES).to_arrow()
    assert pq.read_table(out).equals(want)
    ordered = pq.read_table(out + ".spark.parquet")
    assert ordered.column("note").to_pylist() == want.column("note").to_pylist()


def test_materialization_through_spark_connect(
    connect: SparkConnectServer, tmp_path: Path, redis_clean: RedisServer
) -> None:
    local, _ = _view_repo(tmp_path / "local", online_config("redis-packed", redis_clean), "local")
    local.materialize(T0, T0 + timedelta(hours=50))
    out = tmp_path / "out.json"
    _run(
        "materialize",
        connect.url,
        str(tmp_path / "remote"),
        redis_clean.connection_string,
        str(out),
    )
    assert json.loads(out.read_text())["intervals"] == [
        ["2024-05-01T00:00:00Z", "2024-05-03T02:00:00Z"]
    ]
    remote, _ = _view_repo(
        tmp_path / "remote", online_config("redis-packed", redis_clean), "remote"
    )
    assert _read_all(remote) == _read_all(local)
    for store in (local, remote):
        store.online_store.close()
