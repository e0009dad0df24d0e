"""The grace period of a shutdown, counted from the signal that asked for it.

uvicorn handles SIGTERM/SIGINT itself: it stops accepting, waits for the requests in flight
(up to its `timeout_graceful_shutdown`), then runs the lifespan shutdown. Materialization
jobs are not requests, so the lifespan waits for them, and it must know how much of the grace
period the requests already used: `ShutdownClock` chains itself in front of the server's
signal handler to note when the first signal came.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["DEFAULT_GRACEFUL_TIMEOUT", "ShutdownClock"]

# Kubernetes sends SIGKILL 30 s after SIGTERM by default: finish (or cancel) everything
# before that, with time left to close the store and exit.
DEFAULT_GRACEFUL_TIMEOUT = 25.0

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownClock:
    """`remaining()`: seconds left of `grace` since the first SIGTERM/SIGINT (all of it when
    no signal came, e.g. a shutdown the embedding program started)."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.signalled_at: float | None = None

    def remaining(self) -> float:
        if self.signalled_at is None:
            return self.grace
        return max(0.0, self.grace - (time.monotonic() - self.signalled_at))

    def install(self) -> Callable[[], None]:
        """Chain in front of the current handlers (uvicorn's, installed before the lifespan
        starts); returns the function that puts them back. Only the main thread can."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}
        for sig in _SIGNALS:
            handler = signal.getsignal(sig)
            if not callable(handler):
                continue  # default or ignored: nobody shuts down gracefully on it
            previous[sig] = handler
            signal.signal(sig, self._chained(handler))

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _chained(self, handler: Callable[[int, FrameType | None], Any]) -> Any:
        def on_signal(sig: int, frame: FrameType | None) -> None:
            if self.signalled_at is None:
                self.signalled_at = time.monotonic()
            handler(sig, frame)

        return on_signal
