"""The pipelined asyncio Redis connection: replies in order per caller, callers that give up,
lost connections, AUTH and SELECT — against the real redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from repast.online.redis_pipe import PipelinedConnection, open_pipelined
from services import RedisServer


def _command(*args: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]
    return b"".join(parts)


async def _open(server: RedisServer, **options: Any) -> PipelinedConnection:
    return await open_pipelined(
        server.host, server.port, options, redis.ResponseError, redis.ConnectionError
    )


def test_concurrent_callers_get_their_own_replies(redis_clean: RedisServer) -> None:
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    client.mset({f"k{i}": f"v{i}" for i in range(200)})

    async def main() -> list[list[Any]]:
        pipe = await _open(redis_clean)
        try:
            calls = [pipe.roundtrip(_command(b"GET", b"k%d" % i) * 3, 3, None) for i in range(200)]
            return await asyncio.gather(*calls)
        finally:
            pipe.close()

    assert asyncio.run(main()) == [[b"v%d" % i] * 3 for i in range(200)]


def test_error_replies_come_back_in_place(redis_clean: RedisServer) -> None:
    async def main() -> list[Any]:
        pipe = await _open(redis_clean)
        try:
            payload = _command(b"SET", b"a", b"1") + _command(b"HGET", b"a", b"f")
            return await pipe.roundtrip(payload + _command(b"GET", b"a"), 3, None)
        finally:
            pipe.close()

    ok, wrong_type, value = asyncio.run(main())
    assert ok == b"OK"
    assert isinstance(wrong_type, redis.ResponseError)
    assert "WRONGTYPE" in str(wrong_type)
    assert value == b"1"


def test_a_caller_that_gives_up_does_not_shift_the_next_ones_replies(
    redis_clean: RedisServer,
) -> None:
    redis.Redis(host=redis_clean.host, port=redis_clean.port).mset({"x": "1", "y": "2"})

    async def main() -> list[Any]:
        pipe = await _open(redis_clean)
        try:
            # BLPOP on an empty list holds this connection's replies, so the first caller is
            # still waiting when cancelled.
            slow = asyncio.ensure_future(
                pipe.roundtrip(
                    _command(b"BLPOP", b"nothing", b"0.2") + _command(b"GET", b"x"), 2, None
                )
            )
            await asyncio.sleep(0.05)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            return await pipe.roundtrip(_command(b"GET", b"y"), 1, None)
        finally:
            pipe.close()

    assert asyncio.run(main()) == [b"2"]


def test_a_timeout_or_a_lost_connection_fails_the_callers_clearly(
    redis_clean: RedisServer,
) -> None:
    async def timed_out() -> None:
        pipe = await _open(redis_clean)
        with pytest.raises(redis.ConnectionError, match="no reply from Redis within 0.05 s"):
            await pipe.roundtrip(_command(b"BLPOP", b"nothing", b"0.3"), 1, 0.05)
        assert pipe.closed
        with pytest.raises(redis.ConnectionError, match="closed"):
            await pipe.roundtrip(_command(b"PING"), 1, None)

    asyncio.run(timed_out())

    async def lost() -> None:
        pipe = await _open(redis_clean)
        waiting = asyncio.ensure_future(
            pipe.roundtrip(_command(b"BLPOP", b"nothing", b"1"), 1, None)
        )
        await asyncio.sleep(0.1)
        redis_clean.stop()
        with pytest.raises(redis.ConnectionError, match="Redis closed the connection"):
            await waiting

    try:
        asyncio.run(lost())
    finally:
        redis_clean.start()


def test_password_and_db_are_applied(redis_clean: RedisServer) -> None:
    client = redis.Redis(host=redis_clean.host, port=redis_clean.port)
    redis.Redis(host=redis_clean.host, port=redis_clean.port, db=3).set("where", "db3")
    client.config_set("requirepass", "s3cret")
    try:

        async def main() -> list[Any]:
            pipe = await _open(redis_clean, password="s3cret", db=3)
            try:
                return await pipe.roundtrip(_command(b"GET", b"where"), 1, None)
            finally:
                pipe.close()

        assert asyncio.run(main()) == [b"db3"]

        async def wrong() -> None:
            await _open(redis_clean, password="nope")

        with pytest.raises(redis.ResponseError):
            asyncio.run(wrong())
    finally:
        authed = redis.Redis(host=redis_clean.host, port=redis_clean.port, password="s3cret")
        authed.config_set("requirepass", "")


def test_a_round_trip_of_no_command_answers_at_once_and_blocks_no_one(
    redis_clean: RedisServer,
) -> None:
    # Issue 13: a waiter for zero replies was never completed and, first in the queue, took
    # every later caller's replies: one empty read wedged every read of the worker.
    async def main() -> tuple[list[Any], list[Any]]:
        pipe = await _open(redis_clean)
        try:
            empty = await asyncio.wait_for(pipe.roundtrip(b"", 0, None), 10)
            after = await asyncio.wait_for(pipe.roundtrip(_command(b"PING"), 1, None), 10)
            return empty, after
        finally:
            pipe.close()

    assert asyncio.run(main()) == ([], [b"PONG"])
