"""Run as a script (its own process: pyspark allows one kind of session per process) by
tests/test_spark_connect.py: the Spark Connect half of each comparison.

    python spark_connect_job.py historical <sc://url> <repo> <entity.parquet> <out.parquet>
    python spark_connect_job.py materialize <sc://url> <tmp> <redis host:port> <out.json>
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

from online_stores import online_config
from repast import FeatureStore
from repast.spark.retrieval import SparkRetrievalJob
from repast.spark.session import is_connect, spark_session
from spark_helpers import spark_store

FEATURES = ["trips:trips", "trips:note", "rate_plus_bonus:rate_plus_bonus", "by_city:busy"]


def historical(url: str, repo: str, entity: str, out: str) -> None:
    store = spark_store(FeatureStore(repo_path=repo), remote=url)
    assert is_connect(spark_session({"spark.remote": url}))
    job = store.get_historical_features(pq.read_table(entity), FEATURES)
    pq.write_table(job.to_arrow(), out)
    ordered = store.get_historical_features(pq.read_table(entity), FEATURES)
    assert isinstance(ordered, SparkRetrievalJob)
    pq.write_table(ordered.to_spark_df().toArrow(), out + ".spark.parquet")


def materialize(url: str, tmp: str, redis_address: str, out: str) -> None:
    import test_spark_materialize as cases

    class Server:
        connection_string = redis_address

    base, _ = cases._view_repo(Path(tmp), online_config("redis-packed", Server()), "remote")  # type: ignore[arg-type]
    store = spark_store(base, engine=True, remote=url)
    store.materialize(cases.T0, cases.T0 + timedelta(hours=50))
    Path(out).write_text(json.dumps({"intervals": cases.intervals(store, "stats")}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    try:
        {"historical": historical, "materialize": materialize}[command](*args)
    finally:
        for url in args[:1]:
            spark_session({"spark.remote": url}).stop()
