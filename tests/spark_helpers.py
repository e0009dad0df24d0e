"""One small local Spark for the tests: `local[2]`, four shuffle partitions, no UI, bound to
127.0.0.1. `repast.spark.session` makes one session per configuration, so every test that
passes `SPARK_CONF` shares one JVM."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repast import FeatureStore
from repast.config import SparkBatchEngineConfig, SparkOfflineStoreConfig

__all__ = ["SPARK_CONF", "own_spark", "spark_store"]

SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    # Tables the tests create go to a scratch directory, not the working directory.
    "spark.sql.warehouse.dir": tempfile.mkdtemp(prefix="repast-spark-warehouse-"),
}


def spark_store(
    repo: Path | FeatureStore,
    *,
    engine: bool = False,
    remote: str | None = None,
    conf: dict[str, str] | None = None,
) -> FeatureStore:
    """The repo's store with `offline_store: {type: spark}` (and the spark batch engine), on the
    tests' local Spark or, with `remote`, on a Spark Connect server."""
    base = repo if isinstance(repo, FeatureStore) else FeatureStore(repo_path=repo)
    conf = {"spark.remote": remote} if remote else (conf or SPARK_CONF)
    update: dict[str, Any] = {"offline_store": SparkOfflineStoreConfig(spark_conf=conf)}
    if engine:
        update["batch_engine"] = SparkBatchEngineConfig(spark_conf=conf)
    return FeatureStore(config=base.config.model_copy(update=update))


@contextmanager
def own_spark(conf: dict[str, str]) -> Iterator[dict[str, str]]:
    """A Spark session of its own for `conf` (another master, executor environment, ...):
    one JVM holds one SparkContext, so the shared one is stopped first, and this one after;
    the next test that asks for `SPARK_CONF` gets a fresh local session."""
    from pyspark.sql import SparkSession

    from repast.spark.session import spark_session

    def stop_active() -> None:
        active = SparkSession.getActiveSession() or SparkSession._instantiatedSession
        if active is not None:
            active.stop()

    stop_active()
    try:
        spark_session(conf)
        yield conf
    finally:
        stop_active()
