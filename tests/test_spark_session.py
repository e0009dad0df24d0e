"""`repast.spark.session.spark_session`: one session per process and configuration, and a
configured master that the running SparkContext does not use is refused, not ignored."""

from __future__ import annotations

import pytest

from repast.errors import ConfigError
from repast.spark.session import spark_session
from spark_helpers import SPARK_CONF


def test_the_same_configuration_gets_the_same_session() -> None:
    first = spark_session(SPARK_CONF)
    assert spark_session(dict(SPARK_CONF)) is first
    assert first.sparkContext.master == "local[2]"
    assert first.conf.get("spark.sql.session.timeZone") == "UTC"


def test_another_master_is_refused_while_a_context_runs() -> None:
    running = spark_session(SPARK_CONF)
    conf = {**SPARK_CONF, "spark.master": "spark://127.0.0.1:7077"}
    with pytest.raises(ConfigError) as raised:
        spark_session(conf)
    message = str(raised.value)
    assert "spark.master spark://127.0.0.1:7077" in message
    assert "already runs a SparkContext on local[2]" in message
    # The running session is untouched and still works.
    assert running.range(5).count() == 5
    assert spark_session(SPARK_CONF) is running


def test_no_master_uses_the_running_session() -> None:
    running = spark_session(SPARK_CONF)
    conf = {k: v for k, v in SPARK_CONF.items() if k != "spark.master"}
    session = spark_session(conf)
    assert session.sparkContext is running.sparkContext
    assert session.range(3).count() == 3
