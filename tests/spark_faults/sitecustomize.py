"""Fault injection for the Spark engine tests, loaded only by the Python workers of a session
whose `spark.executorEnv.PYTHONPATH` names this directory (Python imports `sitecustomize` at
start-up). `REPAST_TEST_SPARK_FAULT=<partition>:<failing attempts>` makes that partition's
task raise after its first online write batch, in each of its first `<failing attempts>`
attempts: a task that dies half-way through its writes, as a lost connection would leave it.
Repast's code is not changed; Spark's own retry (`local[N,F]`) does the rest."""

from __future__ import annotations

import os
from typing import Any

_SPEC = os.environ.get("REPAST_TEST_SPARK_FAULT", "")


def _install(partition: int, failing: int) -> None:
    import repast.online.write as write

    original = write.write_batch
    calls: dict[tuple[int, int], int] = {}

    def write_batch(*args: Any, **kwargs: Any) -> Any:
        from pyspark import TaskContext

        context = TaskContext.get()
        if context is not None and context.partitionId() == partition:
            attempt = (context.stageId(), context.attemptNumber())
            calls[attempt] = calls.get(attempt, 0) + 1
            if context.attemptNumber() < failing and calls[attempt] > 1:
                raise ConnectionError(
                    f"injected fault: partition {partition}, attempt {context.attemptNumber()}"
                )
        return original(*args, **kwargs)

    write.write_batch = write_batch


if _SPEC:
    _partition, _failing = (int(part) for part in _SPEC.split(":"))
    _install(_partition, _failing)
