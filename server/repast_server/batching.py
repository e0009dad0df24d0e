"""Concurrent online reads of one event-loop tick share one store round trip.

Under load many requests become ready in the same loop iteration (one epoll wake-up
delivers several connections' bodies). Each would send its own pipelined `HMGET` payload and
wait for its own reply; `TickBatcher` lets the first read of an iteration lead a batch: it
yields once (`asyncio.sleep(0)`), so the reads started by the other callbacks of that
iteration join it, then makes one store call for all of them and hands each its rows. A lone
request pays one trip through the ready queue, and no task is created for it.

No request can hold up another through a batch: a request with nothing to read (no entity)
never joins one, a failure of a batch's store call is retried request by request (unless the
backend is down) so it fails only the request it belongs to, and a store call that outlives
`read_timeout` is stuck: its requests fail (503) and the store's connections are reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from repast.online.base import (
    OnlineStore,
    OnlineStoreError,
    OnlineView,
    PackedRows,
    ReadRequest,
    ViewRows,
    WriteBatch,
    packed_row_store,
)
from repast_server.errors import CONNECTION_ERRORS

if TYPE_CHECKING:
    from repast.feature_store import FeatureStore

__all__ = ["STUCK_READ_SECONDS", "TickBatcher", "batch_reads"]

_Pending = tuple[list[ReadRequest], "asyncio.Future[list[Any]]"]

logger = logging.getLogger("repast.server")

# A store read of one batch taking longer than this is stuck (Redis answers in
# milliseconds; its own socket timeout, if any, would have fired).
STUCK_READ_SECONDS = 5.0


class TickBatcher:
    """Wraps an online store: `read_async` and `read_packed_async` are batched per loop tick
    (each kind in its own batch, at most `max_requests` reads each), the rest delegates."""

    def __init__(
        self,
        store: OnlineStore,
        max_requests: int = 256,
        read_timeout: float = STUCK_READ_SECONDS,
    ) -> None:
        self.store = store
        self.max_requests = max_requests
        self.read_timeout = read_timeout
        """A batch whose store read takes longer is stuck: its requests fail (503), the
        store's connections are reset, and later batches start afresh."""
        self.batches = 0
        self.batched_reads = 0
        self.stuck_batches = 0
        # The open batch per read method; its first entry is its leader's.
        self._pending: dict[str, list[_Pending]] = {}
        self._handed_off: set[asyncio.Future[None]] = set()

    def __getattr__(self, name: str) -> Any:
        # Store-specific extras (the Redis store's `async_client`, used by /health, and
        # `holds_packed_rows`).
        return getattr(self.store, name)

    def write_batch(self, view: OnlineView, batch: WriteBatch) -> int:
        return self.store.write_batch(view, batch)

    def read(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        return self.store.read(requests)

    def read_packed(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        store = packed_row_store(self.store)
        if store is None:
            raise OnlineStoreError(f"{self.store!r} keeps no packed rows")
        return store.read_packed(requests)

    def update(
        self, views_to_keep: Sequence[OnlineView], views_to_delete: Sequence[OnlineView]
    ) -> None:
        self.store.update(views_to_keep, views_to_delete)

    def teardown(self, views: Sequence[OnlineView]) -> None:
        self.store.teardown(views)

    def infra(self) -> dict[str, object]:
        return self.store.infra()

    def close(self) -> None:
        self.store.close()

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        rows: list[ViewRows] = await self._batched("read_async", requests)
        return rows

    async def read_packed_async(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        rows: list[PackedRows] = await self._batched("read_packed_async", requests)
        return rows

    async def _batched(self, method: str, requests: Sequence[ReadRequest]) -> list[Any]:
        if not any(len(request.keys) for request in requests):
            # Nothing to read (an empty entity list): the store answers without I/O, and a
            # batch must never wait on a request that sends nothing.
            rows: list[Any] = await getattr(self.store, method)(requests)
            return rows
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        batch = self._pending.get(method)
        if batch is not None and len(batch) < self.max_requests:
            batch.append((list(requests), future))
            return await future
        # Lead a new batch.
        batch = [(list(requests), future)]
        self._pending[method] = batch
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self._close(method, batch)
            self._hand_off(method, batch[1:])  # the leader is first
            raise
        self._close(method, batch)
        try:
            await self._read(method, batch)
        except asyncio.CancelledError:
            # This request timed out or its client left: the others are still owed rows.
            self._hand_off(method, [p for p in batch if p[1] is not future])
            raise
        return future.result()

    def _close(self, method: str, batch: list[_Pending]) -> None:
        if self._pending.get(method) is batch:
            del self._pending[method]

    def _hand_off(self, method: str, batch: list[_Pending]) -> None:
        waiting = [p for p in batch if not p[1].done()]
        if waiting:
            task = asyncio.ensure_future(self._read(method, waiting))
            self._handed_off.add(task)
            task.add_done_callback(self._handed_off.discard)

    async def _read(self, method: str, batch: list[_Pending]) -> None:
        self.batches += 1
        self.batched_reads += len(batch)
        flat = [request for requests, _ in batch for request in requests]
        try:
            async with asyncio.timeout(self.read_timeout):
                rows = await getattr(self.store, method)(flat)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._stuck(method, batch)
            return
        except BaseException as exc:
            if isinstance(exc, Exception) and len(batch) > 1 and not _backend_down(exc):
                # Whatever failed (one request's data, a reply it got) fails only the
                # requests it belongs to: each is read again on its own. A lost backend
                # fails them all alike, without a round trip each.
                await asyncio.gather(*(self._read(method, [pending]) for pending in batch))
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for requests, future in batch:
            end = start + len(requests)
            if not future.done():  # a cancelled request (timeout) just drops its rows
                future.set_result(rows[start:end])
            start = end

    def _stuck(self, method: str, batch: list[_Pending]) -> None:
        self.stuck_batches += 1
        logger.error(
            "online store %s of %d request(s) did not complete in %g s; resetting its connections",
            method,
            len(batch),
            self.read_timeout,
        )
        error = OnlineStoreError(
            f"the online store read did not complete within {self.read_timeout:g} s"
        )
        for _, future in batch:
            if not future.done():
                future.set_exception(error)
        # The connection the batch waits on may be wedged: later reads get a fresh one.
        reset = getattr(self.store, "reset_async", None)
        if reset is not None:
            reset()


def _backend_down(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a lost or refused connection: the same for every
    request of the batch, unlike a bad reply or value that belongs to one of them."""
    seen: BaseException | None = exc
    for _ in range(5):  # the store's error, the client's, the socket's
        if seen is None:
            return False
        if isinstance(seen, CONNECTION_ERRORS):
            return True
        seen = seen.__cause__
    return False


@contextlib.contextmanager
def batch_reads(
    store: FeatureStore, read_timeout: float = STUCK_READ_SECONDS
) -> Iterator[TickBatcher]:
    """Route `store`'s online reads through a `TickBatcher` while the app runs (the store's
    context puts it in front of the online store, and puts the original back after)."""
    original = store.online_store
    batcher = (
        original
        if isinstance(original, TickBatcher)
        else TickBatcher(original, read_timeout=read_timeout)
    )
    store.context.replace_online_store(batcher)
    try:
        yield batcher
    finally:
        store.context.replace_online_store(original)
