"""The connections of one Redis online store: redis-py's clients (standalone, Cluster or a
Sentinel-managed master), and raw-RESP round trips — a pooled connection for synchronous
callers, one pipelined asyncio connection per event loop (`redis_pipe.py`) where nothing
needs redis-py's client, else its asyncio pool. `redis.py` builds the commands and reads the
replies' meaning; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from repast.config import RedisOnlineStoreConfig
from repast.online.base import OnlineStoreError
from repast.online.redis_pipe import PIPE_OPTIONS, PipelinedConnection, open_pipelined

__all__ = ["HIREDIS", "PARSER_ENV", "RedisClients", "is_no_script", "parse_connection_string"]


def parse_connection_string(text: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Feast's format: `host:port` nodes and `key=value` options, comma separated; option
    values are JSON-decoded when they parse (`ssl=true` → True, `db=0` → 0)."""
    nodes: list[tuple[str, int]] = []
    options: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" in item:
            key, value = item.split("=", 1)
            try:
                options[key.strip()] = json.loads(value)
            except ValueError:
                options[key.strip()] = value
        else:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise OnlineStoreError(f"online_store.connection_string: '{item}' is not host:port")
            nodes.append((host, int(port)))
    if not nodes:
        nodes.append(("localhost", 6379))
    return nodes, options


class RedisClients:
    """Clients and round trips for one `online_store` configuration (created on first use)."""

    def __init__(self, config: RedisOnlineStoreConfig) -> None:
        self.cluster = config.redis_type == "redis_cluster"
        self.sentinel = config.redis_type == "redis_sentinel"
        """The nodes are Sentinels: the master `sentinel_master` is asked of them (and asked
        again after a failover, by redis-py's sentinel-managed connections)."""
        self.sentinel_master = config.sentinel_master
        self._nodes, self._options = parse_connection_string(config.connection_string)
        self._sync: Any = None
        self._async: Any = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        # The clients of the Sentinels themselves (master discovery), closed with the rest.
        self._sentinel_clients: list[Any] = []
        self._async_sentinel_clients: list[Any] = []
        # The asyncio round trips go through one pipelined connection per event loop when
        # nothing needs redis-py's client (cluster routing, a Sentinel-managed master, TLS
        # and the like).
        self._pipe_ok = (
            not self.cluster and not self.sentinel and set(self._options) <= PIPE_OPTIONS
        )
        self._pipe: PipelinedConnection | None = None
        self._pipe_loop: asyncio.AbstractEventLoop | None = None
        self._pipe_opening: asyncio.Future[PipelinedConnection] | None = None
        self._resetting: set[asyncio.Future[Any]] = set()

    def client(self) -> Any:
        """The synchronous redis-py client (created on first use)."""
        if self._sync is None:
            if self.cluster:
                from redis.cluster import ClusterNode, RedisCluster

                nodes = [ClusterNode(h, p) for h, p in self._nodes]  # type: ignore[no-untyped-call, unused-ignore]
                self._sync = RedisCluster(startup_nodes=nodes, **self._options)
            elif self.sentinel:
                from redis.sentinel import Sentinel

                # As Feast: the client options are the master's connection options (redis-py
                # gives the Sentinels only the socket ones).
                sentinels = Sentinel(self._nodes, **self._options)  # type: ignore[no-untyped-call, unused-ignore]
                master = self.sentinel_master
                self._sync = sentinels.master_for(master)  # type: ignore[no-untyped-call, unused-ignore]
                self._sentinel_clients = list(sentinels.sentinels)
            else:
                from redis import Redis

                host, port = self._nodes[0]
                self._sync = Redis(host=host, port=port, **self._options)
            _pure_python_parser(self._sync, asynchronous=False)
        return self._sync

    def async_client(self) -> Any:
        """The asyncio client, bound to the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            if self.cluster:
                from redis.asyncio.cluster import ClusterNode, RedisCluster

                nodes = [ClusterNode(h, p) for h, p in self._nodes]
                self._async = RedisCluster(startup_nodes=nodes, **self._options)
            elif self.sentinel:
                from redis.asyncio.sentinel import Sentinel as AsyncSentinel

                sentinels = AsyncSentinel(self._nodes, **self._options)  # type: ignore[no-untyped-call, unused-ignore]
                self._async = sentinels.master_for(self.sentinel_master)
                self._async_sentinel_clients = list(sentinels.sentinels)
            else:
                from redis.asyncio import Redis

                host, port = self._nodes[0]
                self._async = Redis(host=host, port=port, **self._options)
            _pure_python_parser(self._async, asynchronous=True)
            self._async_loop = loop
        return self._async

    def roundtrip(self, payload: bytes, count: int) -> list[Any]:
        """Send pipelined commands and read `count` replies (error replies as exceptions)."""
        import redis

        if count == 0:
            return []

        pool = self.client().connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([payload], check_health=False)
            sock = getattr(conn, "_sock", None)
            if not HIREDIS or sock is None or getattr(conn, "_parser", None) is None:
                replies: list[Any] = []
                for _ in range(count):
                    try:
                        replies.append(conn.read_response())
                    except redis.ResponseError as exc:
                        replies.append(exc)
            else:
                replies = _read_replies(sock, count)
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        return replies

    async def _pipelined(self) -> PipelinedConnection:
        """This loop's pipelined connection, opened on first use and after a loss (one
        opening shared by the callers that arrive meanwhile)."""
        import redis

        loop = asyncio.get_running_loop()
        pipe = self._pipe
        if pipe is not None and self._pipe_loop is loop and not pipe.closed:
            return pipe
        opening = self._pipe_opening
        if opening is None or self._pipe_loop is not loop or opening.done():
            host, port = self._nodes[0]
            opening = self._pipe_opening = asyncio.ensure_future(
                open_pipelined(
                    host, port, self._options, redis.ResponseError, redis.ConnectionError
                )
            )
            self._pipe_loop = loop
        try:
            pipe = await asyncio.shield(opening)
        finally:
            if opening.done():
                self._pipe_opening = None
        self._pipe = pipe
        return pipe

    async def roundtrip_async(self, payload: bytes, count: int) -> list[Any]:
        if count == 0:  # nothing to send (an empty entity list): nothing to wait for
            return []
        if self._pipe_ok and HIREDIS:
            pipe = await self._pipelined()
            return await pipe.roundtrip(payload, count, self._options.get("socket_timeout"))
        return await self._roundtrip_pooled(payload, count)

    async def _roundtrip_pooled(self, payload: bytes, count: int) -> list[Any]:
        import redis

        pool = self.async_client().connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command([payload], check_health=False)
            # redis-py's hiredis parser: replies that already arrived are taken from it
            # directly instead of one `read_response` coroutine each (~5 us a reply).
            reader = getattr(getattr(conn, "_parser", None), "_reader", None)
            drain = getattr(reader, "gets", None)
            replies: list[Any] = []
            while len(replies) < count:
                try:
                    replies.append(await conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
                while drain is not None and len(replies) < count:
                    reply = drain()
                    if reply is _NOT_ENOUGH_DATA or reply is False:  # nothing complete buffered
                        break
                    replies.append(reply)
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        return replies

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        for client in self._sentinel_clients:
            client.close()
        self._sentinel_clients = []

    def reset_async(self) -> None:
        """Drop this loop's connections after a read got stuck on one: waiters on them fail
        (as a lost connection), and the next round trip connects afresh."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        pool = getattr(self._async, "connection_pool", None)
        if pool is not None:
            task = asyncio.ensure_future(pool.disconnect())
            self._resetting.add(task)
            task.add_done_callback(self._resetting.discard)

    async def close_async(self) -> None:
        """Close the asyncio client; call it on the loop that used it."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = self._pipe_loop = None
        if self._async is not None:
            await self._async.aclose()
            self._async = self._async_loop = None
        for client in self._async_sentinel_clients:
            await client.aclose()
        self._async_sentinel_clients = []


def _pure_python_parser(client: Any, asynchronous: bool) -> None:
    """With `REPAST_REDIS_PARSER=python`, make `client`'s connections use redis-py's own reply
    parser even though hiredis is installed (redis-py has no switch of its own: its default
    parser is fixed at import). Standalone and Sentinel clients; a cluster keeps its parser."""
    if HIREDIS or _hiredis is None:
        return
    from redis._parsers import _AsyncRESP2Parser, _RESP2Parser

    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.connection_kwargs["parser_class"] = _AsyncRESP2Parser if asynchronous else _RESP2Parser


def is_no_script(reply: Any) -> bool:
    """A NOSCRIPT error reply: redis-py's `NoScriptError` (its parser drops the prefix), or
    the pipelined connection's plain error with the prefix kept."""
    import redis

    return isinstance(reply, redis.exceptions.NoScriptError) or (
        isinstance(reply, Exception) and str(reply).startswith("NOSCRIPT")
    )


_hiredis: Any
# What redis-py's hiredis reader returns while no complete reply is buffered.
_NOT_ENOUGH_DATA: Any
try:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - another redis-py layout: hiredis' own default
    _NOT_ENOUGH_DATA = False
try:  # hiredis parses a whole pipelined reply stream in C; redis-py's reader costs ~µs per reply
    import hiredis as _hiredis
except ImportError:  # pragma: no cover - hiredis comes with the redis extra
    _hiredis = None

PARSER_ENV = "REPAST_REDIS_PARSER"
HIREDIS = _hiredis is not None and os.environ.get(PARSER_ENV, "").lower() != "python"
"""Whether the Redis connections parse replies with hiredis: installed, and not turned off
with `REPAST_REDIS_PARSER=python` (read at import, so set it before starting the process)."""


def _read_replies(sock: Any, count: int) -> list[Any]:
    """Read `count` replies straight off a redis-py connection's socket (which holds nothing
    buffered: every command on it was read to the end). Error replies come back as
    `redis.ResponseError` values."""
    import redis

    reader = _hiredis.Reader(replyError=redis.ResponseError)
    replies: list[Any] = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is False:
            data = sock.recv(1 << 16)
            if not data:
                raise redis.ConnectionError("Redis closed the connection")
            reader.feed(data)
            continue
        replies.append(reply)
    return replies
