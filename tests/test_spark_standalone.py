"""The same jobs on a real Spark standalone cluster (a master and a worker from the pyspark
package on 127.0.0.1, executors in their own JVM): a historical retrieval and a Spark
materialization into Redis, each equal to the local store's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from online_stores import online_config
from repast import FeatureStore
from repast.errors import MaterializationError
from repast.spark.retrieval import SparkRetrievalJob
from repast.spark.session import spark_session
from services import RedisServer
from spark_connect_job import FEATURES
from spark_helpers import SPARK_CONF, own_spark, spark_store
from spark_standalone import SparkStandalone
from test_spark_materialize import T0, _read_all, _view_repo, intervals
from test_spark_offline import DEFINITIONS, _entity, _write_data


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    standalone = SparkStandalone()
    conf = {
        **SPARK_CONF,
        "spark.master": standalone.url,
        "spark.executor.memory": "512m",
        "spark.executor.cores": "1",
        "spark.cores.max": "1",
    }
    try:
        with own_spark(conf):
            _wait_for_executor(conf)
            yield conf
    except BaseException:
        print(standalone.logs())
        raise
    finally:
        standalone.stop()


def _executors(conf: dict[str, str]) -> int:
    """Block managers the driver knows of: its own, plus one per registered executor."""
    context = spark_session(conf).sparkContext
    return int(context._jsc.sc().getExecutorMemoryStatus().size())


def _wait_for_executor(conf: dict[str, str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while _executors(conf) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no executor registered with the driver in {timeout}s")
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "repast.online.read.now_micros", lambda: int((T0 + timedelta(days=3)).timestamp() * 1e6)
    )


def test_the_jobs_run_on_executors_of_the_cluster(cluster: dict[str, str]) -> None:
    context = spark_session(cluster).sparkContext
    assert context.master == cluster["spark.master"]
    # An executor besides the driver: the work leaves this process.
    assert _executors(cluster) == 2


def test_historical_retrieval_on_a_standalone_cluster(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: standalone\nregistry: data/registry.json\nprovider: local\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
    )
    (repo / "definitions.py").write_text(DEFINITIONS)
    trips = _write_data(repo / "data")
    local = FeatureStore(repo_path=repo)
    local.apply_repo()
    entity = _entity(trips)
    want = local.get_historical_features(entity, FEATURES).to_arrow()
    store = spark_store(local, conf=cluster)
    assert store.get_historical_features(entity, FEATURES).to_arrow().equals(want)
    job = store.get_historical_features(entity, FEATURES)
    assert isinstance(job, SparkRetrievalJob)
    assert job.to_spark_df().toArrow().column("note").to_pylist() == want.column("note").to_pylist()


def test_materialization_on_a_standalone_cluster(
    cluster: dict[str, str], tmp_path: Path, redis_clean: RedisServer
) -> None:
    local, _ = _view_repo(tmp_path / "local", online_config("redis-packed", redis_clean), "local")
    local.materialize(T0, T0 + timedelta(hours=50))
    base, _ = _view_repo(tmp_path / "remote", online_config("redis-packed", redis_clean), "remote")
    store = spark_store(base, engine=True, conf=cluster)
    store.materialize(T0, T0 + timedelta(hours=50))
    assert intervals(store, "stats") == [["2024-05-01T00:00:00Z", "2024-05-03T02:00:00Z"]]
    assert _read_all(store) == _read_all(local)
    for each in (local, store):
        each.online_store.close()


def test_a_sqlite_online_store_is_refused_on_a_cluster(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    base, _ = _view_repo(tmp_path, online_config("sqlite", None), "on_sqlite")
    store = spark_store(base, engine=True, conf=cluster)
    with pytest.raises(MaterializationError, match="only with a local master"):
        store.materialize(T0, T0 + timedelta(hours=50))
    assert intervals(store, "stats") == []
