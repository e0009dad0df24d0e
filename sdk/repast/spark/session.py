"""The one place that makes a SparkSession (the `spark` offline store and batch engine).

`spark_conf` is Feast's mapping: `spark.master` picks a cluster (`local[*]` by default,
`spark://host:7077` for a standalone cluster), `spark.remote` (`sc://host:15002`) Spark
Connect instead; every other key is passed to the builder. The session clock is forced to UTC:
the point-in-time join reads naive timestamps as UTC, as the local store does.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from repast.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["is_connect", "require_pyspark", "spark_session"]

# PySpark warns about pandas >= 3 on every import of its pandas helpers; Repast hands Spark
# Arrow tables only, so the warning is not about anything Repast does.
_PANDAS_WARNING = "PySpark does not yet fully support pandas"

_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
_lock = threading.Lock()
_sessions: dict[tuple[tuple[str, str], ...], Any] = {}


def require_pyspark() -> None:
    """Raise `MissingExtraError` naming the extra when pyspark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "the spark offline store and batch engine need pyspark: "
            "install `repast[spark]` (pip install 'repast[spark]')"
        ) from exc
    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)


def spark_session(spark_conf: Mapping[str, str] | None = None) -> SparkSession:
    """The session for `spark_conf`, made once per process and configuration.

    >>> spark = spark_session({"spark.master": "local[2]"})  # doctest: +SKIP
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    conf = {**_DEFAULTS, **(spark_conf or {})}
    conf["spark.sql.session.timeZone"] = "UTC"
    key = tuple(sorted(conf.items()))
    with _lock:
        cached: SparkSession | None = _sessions.get(key)
        if cached is not None and not _stopped(cached):
            return cached
        builder: Any = SparkSession.builder
        remote = conf.pop("spark.remote", None)
        if remote is not None:
            if SparkSession._instantiatedSession is not None:
                # pyspark allows one kind of session per process.
                raise ConfigError(
                    f"spark.remote {remote}: this process already runs a Spark session of its "
                    "own (spark.master); Spark Connect needs a process without one"
                )
            builder = builder.remote(remote)
        else:
            master = conf.pop("spark.master", None)
            if master is not None:
                _check_running_master(SparkSession._instantiatedSession, master)
            builder = builder.master(master or "local[*]")
            # Local workers must run this interpreter (it has repast and pyarrow); a cluster
            # sets PYSPARK_PYTHON on its nodes.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for name, value in conf.items():
            builder = builder.config(name, value)
        session: SparkSession = builder.getOrCreate()
        _sessions[key] = session
        return session


def _check_running_master(running: Any, master: str) -> None:
    """Refuse a configured `spark.master` that the process's running SparkContext does not
    use: `getOrCreate` would hand back that context, and the job would silently run on the
    other cluster (one JVM holds one SparkContext). Without `spark.master` the running
    session is used, as a notebook or a cluster's own driver expects."""
    if running is None or is_connect(running) or _stopped(running):
        return
    current = running.sparkContext.master
    if current != master:
        raise ConfigError(
            f"spark.master {master}: this process already runs a SparkContext on {current}, "
            "and a process holds one; stop that session first, or configure the same master "
            "(or none, to use the running session)"
        )


def is_connect(session: Any) -> bool:
    """True for a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def _stopped(session: Any) -> bool:
    if is_connect(session):
        return bool(session.is_stopped)
    context = session.sparkContext
    return context._jsc is None  # pyspark's own test for a stopped context
