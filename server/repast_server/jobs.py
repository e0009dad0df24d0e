"""The materialization jobs of one server: which feature views are being materialized now,
and the asyncio tasks running them.

Both `/materialize` endpoints, synchronous or `?async=true`, run their job as a task started
here, so a second request for a view already being materialized can be refused (409) whichever
kind started the first, and the lifespan can wait for every job at shutdown. Everything runs on
the event loop thread: checking and claiming views is atomic as long as no `await` separates
them, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from repast_server.metrics import Metrics

__all__ = ["CANCEL_WAIT_SECONDS", "SHUTDOWN_WAIT_SECONDS", "JobTracker"]

logger = logging.getLogger("repast.server")

# A job runs in a worker thread; shutdown waits this long (`repast serve` passes what is left
# of its --graceful-timeout) for it, so that the rows it writes and the interval it records
# are complete. Past the bound its `cancel` event is set: the job stops at its next batch and
# records nothing, so its views are not marked materialized and running it again redoes them.
SHUTDOWN_WAIT_SECONDS = 300.0
# How long a cancelled job gets to reach its next batch boundary and stop.
CANCEL_WAIT_SECONDS = 3.0


class JobTracker:
    """Running materialization jobs and the views they hold (one count per job holding a view,
    since `force=true` lets two jobs hold the same view)."""

    def __init__(self, metrics: Metrics, shutdown_wait: float = SHUTDOWN_WAIT_SECONDS) -> None:
        self.shutdown_wait = shutdown_wait
        self._metrics = metrics
        self._holders: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancels: dict[asyncio.Task[None], threading.Event] = {}

    def busy(self, views: Iterable[str]) -> list[str]:
        """Those of `views` a running job is materializing, in the given order."""
        return [v for v in dict.fromkeys(views) if self._holders[v] > 0]

    def running_views(self) -> list[str]:
        return sorted(v for v, n in self._holders.items() if n > 0)

    def running_jobs(self) -> int:
        return len(self._tasks)

    def start(
        self,
        endpoint: str,
        views: Sequence[str],
        work: Callable[[], object],
        *,
        background: bool,
        cancel: threading.Event | None = None,
    ) -> asyncio.Task[None]:
        """Claim `views` and run `work` in a worker thread. The views are claimed before this
        returns (callers check `busy` just before, with no `await` between).

        A background job's failure is logged here, since no request is left to answer with it;
        a foreground job's exception is the task's, for the request handler to answer with.
        """
        names = list(dict.fromkeys(views))
        self._holders.update(names)
        self._metrics.materialize_running.inc()
        task = asyncio.get_running_loop().create_task(
            self._run(endpoint, names, work, background), name=f"materialize {names}"
        )
        self._tasks.add(task)
        if cancel is not None:
            # Set at shutdown when the job outlives the grace period (`drain`).
            self._cancels[task] = cancel
        # A done callback, not a `finally` in `_run`: it runs even for a task cancelled before
        # its first step, so the views are always released.
        task.add_done_callback(lambda t: self._finished(t, endpoint, names))
        return task

    async def _run(
        self, endpoint: str, views: list[str], work: Callable[[], object], background: bool
    ) -> None:
        try:
            await asyncio.to_thread(work)
        except Exception as exc:
            if not background:
                raise
            logger.error(
                "async %s of feature views %s failed: %s: %s",
                endpoint,
                views,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            self._metrics.materialize_jobs.labels(endpoint, "error").inc()
            return
        self._metrics.materialize_jobs.labels(endpoint, "success").inc()

    def _finished(self, task: asyncio.Task[None], endpoint: str, views: list[str]) -> None:
        self._tasks.discard(task)
        self._cancels.pop(task, None)
        self._holders.subtract(views)
        for view in views:
            if self._holders[view] <= 0:
                del self._holders[view]
        self._metrics.materialize_running.dec()
        if task.cancelled():
            self._metrics.materialize_jobs.labels(endpoint, "cancelled").inc()
        elif task.exception() is not None:  # a foreground job's failure, answered by its request
            self._metrics.materialize_jobs.labels(endpoint, "error").inc()

    async def drain(self, timeout: float | None = None) -> list[str]:
        """Wait for the running jobs, at most `timeout` seconds (default `shutdown_wait`);
        the views still being materialized when it gives up (empty when all finished)."""
        tasks = set(self._tasks)
        if not tasks:
            return []
        wait = self.shutdown_wait if timeout is None else timeout
        logger.info(
            "waiting up to %.0f s for %d materialization job(s) of %s",
            wait,
            len(tasks),
            self.running_views(),
        )
        _, pending = await asyncio.wait(tasks, timeout=max(wait, 0.0))
        if not pending:
            return []
        left = self.running_views()
        logger.warning(
            "%d materialization job(s) still running after %.0f s, cancelling them: %s "
            "(not recorded as materialized; run them again)",
            len(pending),
            wait,
            left,
        )
        for task in pending:
            cancel = self._cancels.get(task)
            if cancel is not None:
                cancel.set()
        cancellable = {t for t in pending if t in self._cancels}
        if cancellable:
            await asyncio.wait(cancellable, timeout=CANCEL_WAIT_SECONDS)
        return left
