"""Reads started in one event-loop tick share one store call; each gets its own rows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from repast.online import redis_client
from repast.online.base import OnlineStoreError, OnlineView, ReadRequest, ViewRows
from repast_server.app import create_app
from repast_server.batching import TickBatcher
from server_helpers import (
    PARSERS,
    client_for,
    fresh_request,
    push_body,
    redis_config,
    run,
    server_store,
)
from services import RedisServer

VIEW = OnlineView("v", ("id",), ("f",), (3,), (pa.int64(),))


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        self.calls.append(len(requests))
        await asyncio.sleep(0)
        if self.fail:
            raise OnlineStoreError("down")
        # Echo each request's keys back as its one column, so the split can be checked.
        return [ViewRows(pa.array([None] * len(r.keys), pa.int64()), [r.keys]) for r in requests]


def _request(*keys: int) -> ReadRequest:
    return ReadRequest(VIEW, pa.array(keys), ["f"])


def test_one_tick_one_store_call_and_each_caller_gets_its_rows() -> None:
    store = FakeStore()
    batcher = TickBatcher(store)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        return await asyncio.gather(  # type: ignore[return-value]
            batcher.read_async([_request(1, 2)]),
            batcher.read_async([_request(3), _request(4, 5, 6)]),
            batcher.read_async([_request(7)]),
        )

    got = run(main)
    assert store.calls == [4]
    assert [[rows.columns[0].to_pylist() for rows in result] for result in got] == [
        [[1, 2]],
        [[3], [4, 5, 6]],
        [[7]],
    ]
    assert (batcher.batches, batcher.batched_reads) == (1, 3)


def test_a_store_error_reaches_every_caller_of_the_batch() -> None:
    batcher = TickBatcher(FakeStore(fail=True))  # type: ignore[arg-type]

    async def main() -> list[Any]:
        reads = [batcher.read_async([_request(i)]) for i in range(3)]
        return await asyncio.gather(*reads, return_exceptions=True)

    assert all(isinstance(r, OnlineStoreError) for r in run(main))


def test_sequential_reads_are_not_held_back() -> None:
    store = FakeStore()
    batcher = TickBatcher(store)  # type: ignore[arg-type]

    async def main() -> None:
        for i in range(3):
            await batcher.read_async([_request(i)])

    run(main)
    assert store.calls == [1, 1, 1]


@pytest.mark.parametrize("layout", ["packed", "feast"])
def test_concurrent_server_reads_are_batched(
    tmp_path: Path, redis_clean: RedisServer, layout: str
) -> None:
    store = server_store(tmp_path, redis_config(redis_clean, layout), steps=False)
    app = create_app(store)
    ids = list(range(40))

    async def main() -> None:
        async with client_for(app) as client:
            assert (await client.post("/push", json=push_body(ids, ids))).status_code == 200

            async def one(i: int) -> None:
                response = await client.post("/get-online-features", json=fresh_request([i]))
                assert response.json()["results"][1]["values"] == [i]

            await asyncio.gather(*(one(i) for i in ids))
            batcher = app.state.batcher
            assert batcher.batched_reads == len(ids)
            assert batcher.batches < len(ids)

    run(main)
    store.online_store.close()


def test_a_cancelled_leader_does_not_strand_its_batch() -> None:
    """The first read of a tick leads the batch; cancelling it (a request timeout) while it
    waits for the tick or for the store must still answer the reads that joined it."""

    class SlowStore(FakeStore):
        async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
            await asyncio.sleep(0.05)
            return await super().read_async(requests)

    for cancel_after in (0.0, 0.01):  # during the tick, during the store call
        store = SlowStore()
        batcher = TickBatcher(store)  # type: ignore[arg-type]

        async def main(delay: float = cancel_after, batcher: TickBatcher = batcher) -> list[Any]:
            leader = asyncio.ensure_future(batcher.read_async([_request(1)]))
            followers = [asyncio.ensure_future(batcher.read_async([_request(k)])) for k in (2, 3)]
            await asyncio.sleep(delay)
            leader.cancel()
            got = await asyncio.gather(*followers)
            assert leader.cancelled()
            return got

        got = run(main)
        assert [result[0].columns[0].to_pylist() for result in got] == [[2], [3]]


def test_a_full_batch_starts_the_next_one() -> None:
    store = FakeStore()
    batcher = TickBatcher(store, max_requests=2)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.read_async([_request(k)]) for k in range(5)))

    got = run(main)
    assert store.calls == [2, 2, 1]
    assert [result[0].columns[0].to_pylist() for result in got] == [[k] for k in range(5)]


class HangingStore(FakeStore):
    """Reads of key 13 never complete (a wedged connection); `resets` counts `reset_async`."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        if any(13 in r.keys.to_pylist() for r in requests):  # type: ignore[union-attr]
            await asyncio.Event().wait()
        return await super().read_async(requests)

    def reset_async(self) -> None:
        self.resets += 1


class PoisonStore(FakeStore):
    """Fails any store call that includes key 13 (a reply one request's data breaks)."""

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        if any(13 in r.keys.to_pylist() for r in requests):  # type: ignore[union-attr]
            raise OnlineStoreError("bad reply for key 13")
        return await super().read_async(requests)


def test_a_request_with_nothing_to_read_never_joins_or_waits_on_a_batch() -> None:
    store = HangingStore()
    batcher = TickBatcher(store, read_timeout=60)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        stuck = asyncio.ensure_future(batcher.read_async([_request(13)]))
        await asyncio.sleep(0)  # the stuck read leads an open batch
        # An empty read answers at once, whatever batch is open or wedged.
        empty = await asyncio.wait_for(batcher.read_async([_request()]), 10)
        stuck.cancel()
        return empty

    empty = run(main)
    assert [rows.columns[0].to_pylist() for rows in empty] == [[]]


def test_a_stuck_batch_fails_its_own_requests_and_resets_the_connection() -> None:
    store = HangingStore()
    batcher = TickBatcher(store, read_timeout=0.2)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        stuck = await asyncio.gather(
            batcher.read_async([_request(13)]),
            batcher.read_async([_request(1)]),
            return_exceptions=True,
        )
        # The next batch is served: nothing waits on the stuck one any more.
        later = await asyncio.wait_for(batcher.read_async([_request(2)]), 10)
        return [*stuck, later]

    first, second, later = run(main)
    assert isinstance(first, OnlineStoreError)
    assert "did not complete within 0.2 s" in str(first)
    # It shared the stuck batch, so it fails with it (503), never hangs.
    assert isinstance(second, OnlineStoreError)
    assert later[0].columns[0].to_pylist() == [2]
    assert (store.resets, batcher.stuck_batches) == (1, 1)


def test_a_failure_inside_a_batch_fails_only_the_request_it_belongs_to() -> None:
    batcher = TickBatcher(PoisonStore())  # type: ignore[arg-type]

    async def main() -> list[Any]:
        reads = [batcher.read_async([_request(i)]) for i in (1, 13, 2)]
        return await asyncio.gather(*reads, return_exceptions=True)

    one, bad, two = run(main)
    assert isinstance(bad, OnlineStoreError)
    assert one[0].columns[0].to_pylist() == [1]
    assert two[0].columns[0].to_pylist() == [2]


@pytest.mark.parametrize("parser", list(PARSERS))
def test_an_empty_entity_list_answers_200_at_once_and_wedges_no_read(
    tmp_path: Path, redis_clean: RedisServer, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 13: with hiredis this request waited for a reply that never comes, at the head
    # of the pipelined connection's queue, and every later read of the worker hung behind it.
    monkeypatch.setattr(redis_client, "HIREDIS", parser == "hiredis")
    store = server_store(tmp_path, redis_config(redis_clean))
    empty = {"entities": {"driver_id": []}, "features": ["driver_hourly_stats:conv_rate"]}

    async def main() -> None:
        async with client_for(store) as client:
            assert (await client.post("/push", json=push_body([1], [5]))).status_code == 200
            for _ in range(2):
                response = await asyncio.wait_for(
                    client.post("/get-online-features", json=empty), 10
                )
                assert response.status_code == 200
                assert response.json() == {
                    "results": [
                        {"values": [], "statuses": [], "event_timestamps": []},
                        {"values": [], "statuses": [], "event_timestamps": []},
                    ],
                    "metadata": {"feature_names": ["driver_id", "conv_rate"]},
                }
                reads = [
                    client.post("/get-online-features", json=fresh_request([1])),
                    client.post("/get-online-features", json=empty),
                ]
                full, none = await asyncio.wait_for(asyncio.gather(*reads), 10)
                assert full.json()["results"][1]["values"] == [5]
                assert none.status_code == 200
            assert (await asyncio.wait_for(client.get("/health"), 10)).status_code == 200

    run(main)
    store.online_store.close()


def test_a_lost_backend_fails_the_batch_without_a_round_trip_per_request() -> None:
    class DownStore(FakeStore):
        async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
            self.calls.append(len(requests))
            raise OnlineStoreError("Redis: reading failed") from ConnectionRefusedError(111)

    store = DownStore()
    batcher = TickBatcher(store)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        reads = [batcher.read_async([_request(i)]) for i in range(3)]
        return await asyncio.gather(*reads, return_exceptions=True)

    assert all(isinstance(r, OnlineStoreError) for r in run(main))
    assert store.calls == [3]
