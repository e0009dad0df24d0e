"""Task failures in the `spark` batch engine, on a real local Spark with retries (`local[2,3]`:
two threads, a task may fail twice) and a real redis-server. The fault is injected into the
Python workers only, by `tests/spark_faults/sitecustomize.py` (through Spark's
`spark.executorEnv`): a partition's task raises after it has written its first batch of rows.
A fault that passes is retried by Spark and leaves exactly the online rows of a clean run,
counted once; one that persists fails the job, and no interval is recorded."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from online_stores import online_config
from repast import FeatureStore
from repast.config import MaterializationConfig
from repast.errors import MaterializationError
from services import RedisServer
from spark_helpers import SPARK_CONF, own_spark, spark_store
from test_spark_materialize import T0, _read_all, _view_repo, intervals

FAULTS = Path(__file__).with_name("spark_faults")
START, END = T0 + timedelta(hours=6), T0 + timedelta(hours=60)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "repast.online.read.now_micros", lambda: int((T0 + timedelta(days=3)).timestamp() * 1e6)
    )


def _conf(fault: str) -> dict[str, str]:
    return {
        **SPARK_CONF,
        "spark.master": "local[2,3]",
        "spark.executorEnv.PYTHONPATH": str(FAULTS),
        "spark.executorEnv.REPAST_TEST_SPARK_FAULT": fault,
    }


def _store(tmp: Path, server: RedisServer, project: str, conf: dict[str, str]) -> FeatureStore:
    base, _ = _view_repo(tmp, online_config("redis-packed", server), project)
    # Small write batches: each partition writes several, so the fault strikes half-way.
    config = base.config.model_copy(
        update={"materialization": MaterializationConfig(online_write_batch_size=20)}
    )
    return spark_store(FeatureStore(config=config), engine=True, conf=conf)


def _job_line(caplog: pytest.LogCaptureFixture) -> tuple[int, int, int]:
    """(rows read, rows written, partitions retried) of the last Spark materialization."""
    records = [r for r in caplog.records if r.getMessage().startswith("materialized stats on")]
    assert records, "the job logged no statistics"
    args = records[-1].args
    assert isinstance(args, tuple)
    read, written, retried = args[3], args[5], args[2]
    assert isinstance(read, int), args
    assert isinstance(written, int), args
    assert isinstance(retried, int), args
    return read, written, retried


@pytest.fixture
def clean(tmp_path: Path, redis_clean: RedisServer) -> Iterator[FeatureStore]:
    store = spark_store(
        _view_repo(tmp_path / "clean", online_config("redis-packed", redis_clean), "clean")[0],
        engine=True,
    )
    yield store
    store.online_store.close()


def test_a_partition_that_fails_once_is_retried_without_second_effects(
    tmp_path: Path,
    redis_clean: RedisServer,
    clean: FeatureStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repast.spark.materialize")
    clean.materialize(START, END)
    clean_read, clean_written, clean_retried = _job_line(caplog)
    want = _read_all(clean)
    assert clean_retried == 0
    assert clean_written > 600

    with own_spark(_conf("1:1")) as conf:
        store = _store(tmp_path / "faulty", redis_clean, "faulty", conf)
        store.materialize(START, END)
        read, written, retried = _job_line(caplog)
        got = _read_all(store)
        store.online_store.close()
    assert retried == 1  # partition 1's second attempt succeeded
    assert got == want
    assert intervals(store, "stats") == [["2024-05-01T06:00:00Z", "2024-05-03T12:00:00Z"]]
    # Rows read once: the failed attempt's rows are not counted, the retry's are.
    assert read == clean_read
    # The failed attempt wrote its first batch (20 rows, not in the statistics: it returned
    # none); the retry rewrote them as no-ops (equal event times), so the successful attempts
    # account for the clean run's rows less those 20, and no row is counted twice.
    assert written == clean_written - 20
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    try:
        # One key per entity in each project, none twice.
        assert client.dbsize() == 2 * clean_written
    finally:
        client.close()


def test_a_partition_that_always_fails_fails_the_job_and_records_nothing(
    tmp_path: Path, redis_clean: RedisServer
) -> None:
    with own_spark(_conf("2:99")) as conf:
        store = _store(tmp_path / "broken", redis_clean, "broken", conf)
        with pytest.raises(MaterializationError) as failure:
            store.materialize(START, END)
        message = str(failure.value)
        assert "materializing stats" in message
        assert "nothing recorded" in message
        # The last of Spark's three attempts, and what failed it (the store's error).
        assert "MaterializationError: partition 2 failed on attempt 3: OnlineStoreError" in message
        assert "injected fault: partition 2, attempt 2" in message
        assert intervals(store, "stats") == []
        store.online_store.close()
