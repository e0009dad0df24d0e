"""The Redis online store (redis-py with hiredis), in two layouts.

Both key one Redis hash per entity: `serialize_entity_key(v3) ++ project`.
- `feast`: Feast's fields, byte for byte (reference §2): `mmh3_le32("<view>:<feature>")` →
  Value protobuf, `_ts:<view>` → Timestamp protobuf.
- `packed` (default): one field per view, `<view>` → the packed row (packed.rs).

Standalone Redis is spoken to in raw RESP: a read is one payload of `HMGET` commands (one
per distinct entity key, all views of that key in one command) sent in one round trip; a
write is a few `EVAL` commands (built in `redis_eval.py`), pipelined, running the
newer-event-time-wins scripts atomically on the server. Payloads are built column-wise
(`resp.py`), so no Python object is made per value. Redis Cluster goes
through redis-py's cluster pipeline (one key per command) instead. With Sentinel
(`redis_type: redis_sentinel`) the same payloads go to the master the Sentinels name, over
redis-py's sentinel-managed connections, which find the new master after a failover.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from repast import _core
from repast.config import RedisOnlineStoreConfig
from repast.online import resp
from repast.online.base import (
    OnlineStoreError,
    OnlineView,
    PackedRows,
    ReadRequest,
    ViewRows,
    WriteBatch,
)
from repast.online.redis_eval import EvalCommands, cells, parse_bulks
from repast.online.redis_pipe import PIPE_OPTIONS, PipelinedConnection, open_pipelined

__all__ = ["RedisOnlineStore", "parse_connection_string"]

# Requests grouped by their key array: (keys with the project, request indices, HMGET fields).
_ReadPlan = list[tuple[list[bytes], list[int], list[bytes]]]

_SCAN_COUNT = 1000
_GLOB_SPECIAL = frozenset(b"*?[]\\")


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


def _glob_escape(data: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in _GLOB_SPECIAL else bytes([c]) for c in data)


class RedisOnlineStore:
    """`online_store: {type: redis, ...}`; see the module docstring for the layouts."""

    def __init__(self, config: RedisOnlineStoreConfig, project: str) -> None:
        try:
            import redis  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise OnlineStoreError(
                "the redis online store needs redis-py: install `repast[redis]`"
            ) from exc
        self.config = config
        self.project = project
        self.suffix = project.encode()
        self.layout = config.layout
        self.ttl = config.key_ttl_seconds or 0
        self.cluster = config.redis_type == "redis_cluster"
        self.sentinel = config.redis_type == "redis_sentinel"
        """The nodes are Sentinels: the master `config.sentinel_master` is asked of them (and
        asked again after a failover, by redis-py's sentinel-managed connections)."""
        self._nodes, self._options = parse_connection_string(config.connection_string)
        self._sync: Any = None
        self._async: Any = None
        # The clients of the Sentinels themselves (master discovery), closed with the store.
        self._sentinel_clients: list[Any] = []
        self._async_sentinel_clients: list[Any] = []
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._commands = EvalCommands(self.layout, self.suffix, self.ttl)
        # The asyncio round trips go through one pipelined connection per event loop when
        # nothing needs redis-py's client (cluster routing, a Sentinel-managed master, TLS
        # and the like).
        self._pipe_ok = (
            not self.cluster and not self.sentinel and set(self._options) <= PIPE_OPTIONS
        )
        self._pipe: PipelinedConnection | None = None
        self._pipe_loop: asyncio.AbstractEventLoop | None = None
        self._pipe_opening: asyncio.Future[PipelinedConnection] | None = None

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.config.connection_string!r}, layout={self.layout!r})"

    # -- clients -----------------------------------------------------------------------------

    def client(self) -> Any:
        """The synchronous redis-py client (created on first use)."""
        if self._sync is None:
            if self.cluster:
                from redis.cluster import ClusterNode, RedisCluster

                nodes = [ClusterNode(h, p) for h, p in self._nodes]  # type: ignore[no-untyped-call]
                self._sync = RedisCluster(startup_nodes=nodes, **self._options)
            elif self.sentinel:
                from redis.sentinel import Sentinel

                # As Feast: the client options are the master's connection options (redis-py
                # gives the Sentinels only the socket ones).
                sentinels = Sentinel(self._nodes, **self._options)  # type: ignore[no-untyped-call]
                master = self.config.sentinel_master
                self._sync = sentinels.master_for(master)  # type: ignore[no-untyped-call]
                self._sentinel_clients = list(sentinels.sentinels)
            else:
                from redis import Redis

                host, port = self._nodes[0]
                self._sync = Redis(host=host, port=port, **self._options)
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

                sentinels = AsyncSentinel(self._nodes, **self._options)  # type: ignore[no-untyped-call]
                self._async = sentinels.master_for(self.config.sentinel_master)
                self._async_sentinel_clients = list(sentinels.sentinels)
            else:
                from redis.asyncio import Redis

                host, port = self._nodes[0]
                self._async = Redis(host=host, port=port, **self._options)
            self._async_loop = loop
        return self._async

    def _error(self, what: str, exc: BaseException) -> OnlineStoreError:
        return OnlineStoreError(f"Redis {self.config.connection_string}: {what} failed: {exc}")

    def _roundtrip(self, payload: bytes, count: int) -> list[Any]:
        """Send pipelined commands and read `count` replies (error replies as exceptions)."""
        import redis

        pool = self.client().connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([payload], check_health=False)
            sock = getattr(conn, "_sock", None)
            if _hiredis is None or sock is None or getattr(conn, "_parser", None) is None:
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

    async def _roundtrip_async(self, payload: bytes, count: int) -> list[Any]:
        if self._pipe_ok and _hiredis is not None:
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

    # -- reading -----------------------------------------------------------------------------

    def _fields(self, request: ReadRequest) -> list[bytes]:
        if self.layout == "packed":
            return [request.view.name.encode()]
        names = list(request.features) or list(request.view.features)
        fields = _core.feature_field_names(request.view.name, names)
        return [*fields, b"_ts:" + request.view.name.encode()]

    def _plan(self, requests: Sequence[ReadRequest]) -> _ReadPlan:
        """Requests grouped by their key array: (keys with project, request indices, fields)."""
        groups: dict[int, tuple[list[bytes], list[int], list[bytes]]] = {}
        for i, request in enumerate(requests):
            group = groups.get(id(request.keys))
            if group is None:
                keys = [k + self.suffix for k in request.key_list()]
                group = groups[id(request.keys)] = (keys, [], [])
            group[1].append(i)
            group[2].extend(self._fields(request))
        return list(groups.values())

    @staticmethod
    def _payload(plan: _ReadPlan) -> tuple[bytes, int]:
        # A read has few entities (per-entity Python is fine here; writes are column-wise).
        parts: list[bytes] = []
        for keys, _, fields in plan:
            head = b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields))
            tail = b"".join(resp.bulk(f) for f in fields)
            parts.extend(head + resp.bulk(k) + tail for k in keys)
        return b"".join(parts), sum(len(keys) for keys, _, _ in plan)

    def _decode(
        self,
        requests: Sequence[ReadRequest],
        plan: _ReadPlan,
        replies: list[Any],
    ) -> list[ViewRows]:
        out: list[ViewRows | None] = [None] * len(requests)
        for members, flat, width in self._reply_groups(plan, replies):
            column = 0

            def cells(j: int, flat: list[Any] = flat, width: int = width) -> pa.Array:
                return pa.array(flat[j::width], pa.binary())

            for i in members:
                request = requests[i]
                view = request.view
                if self.layout == "packed":
                    select = view.positions(request.features)
                    ts, cols = _core.decode_packed_rows(
                        cells(column), list(view.value_types), select
                    )
                    column += 1
                    out[i] = ViewRows(ts, list(cols))
                    continue
                cols = []
                for feature in request.features:
                    vt = view.value_types[view.index(feature)]
                    cols.append(_core.decode_values(cells(column), vt, f"{view.name}:{feature}"))
                    column += 1
                ts = _core.decode_timestamps(cells(column), f"_ts:{view.name}")
                column += 1
                out[i] = ViewRows(ts, cols)
        return [rows for rows in out if rows is not None]

    def _replies(self, plan: _ReadPlan) -> list[Any]:
        try:
            if self.cluster:
                pipe = self.client().pipeline(transaction=False)
                for keys, _, fields in plan:
                    for key in keys:
                        pipe.hmget(key, fields)
                return list(pipe.execute(raise_on_error=False))
            payload, count = self._payload(plan)
            return self._roundtrip(payload, count)
        except OnlineStoreError:
            raise
        except Exception as exc:
            raise self._error("reading", exc) from exc

    async def _replies_async(self, plan: _ReadPlan) -> list[Any]:
        try:
            if self.cluster:
                pipe = self.async_client().pipeline(transaction=False)
                for keys, _, fields in plan:
                    for key in keys:
                        pipe.hmget(key, fields)
                return list(await pipe.execute(raise_on_error=False))
            payload, count = self._payload(plan)
            return await self._roundtrip_async(payload, count)
        except OnlineStoreError:
            raise
        except Exception as exc:
            raise self._error("reading", exc) from exc

    def read(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        plan = self._plan(requests)
        return self._decode(requests, plan, self._replies(plan))

    async def read_async(self, requests: Sequence[ReadRequest]) -> list[ViewRows]:
        plan = self._plan(requests)
        return self._decode(requests, plan, await self._replies_async(plan))

    @property
    def holds_packed_rows(self) -> bool:
        return self.layout == "packed"

    def _packed_rows(
        self, requests: Sequence[ReadRequest], plan: _ReadPlan, replies: list[Any]
    ) -> list[PackedRows]:
        if self.layout != "packed":
            raise OnlineStoreError("only the packed layout stores packed rows")
        out: list[PackedRows] = [[] for _ in requests]
        for members, flat, width in self._reply_groups(plan, replies):
            for column, i in enumerate(members):
                out[i] = flat[column::width]
        return out

    def _reply_groups(
        self, plan: _ReadPlan, replies: list[Any]
    ) -> Iterator[tuple[list[int], list[Any], int]]:
        """Per key group of the plan: its request indices, every reply cell in one flat list
        (field j of the group is the slice `j::width`, taken at C level) and the width."""
        start = 0
        for keys, members, fields in plan:
            chunk = replies[start : start + len(keys)]
            start += len(keys)
            for reply in chunk:
                if isinstance(reply, Exception):
                    raise self._error("HMGET", reply)
            yield members, list(itertools.chain.from_iterable(chunk)), len(fields)

    def read_packed(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        plan = self._plan(requests)
        return self._packed_rows(requests, plan, self._replies(plan))

    async def read_packed_async(self, requests: Sequence[ReadRequest]) -> list[PackedRows]:
        plan = self._plan(requests)
        return self._packed_rows(requests, plan, await self._replies_async(plan))

    # -- writing -----------------------------------------------------------------------------

    def _evals(self, view: OnlineView, batch: WriteBatch) -> list[bytes]:
        """The EVAL commands writing one batch (standalone Redis); see `redis_eval.py`."""
        return self._commands.evals(view, batch)

    def write_batch(self, view: OnlineView, batch: WriteBatch) -> int:
        return self.write_batches(view, [batch])

    async def write_batch_async(self, view: OnlineView, batch: WriteBatch) -> int:
        """`write_batch` from the event loop: the EVALs go out on the asyncio client (no
        worker thread; a few rows encode in microseconds)."""
        if len(batch) == 0:
            return 0
        if self.cluster:
            return await asyncio.to_thread(self.write_batch, view, batch)
        what = f"writing view '{view.name}'"
        evals = self._evals(view, batch)
        try:
            replies = await self._roundtrip_async(b"".join(evals), len(evals))
        except Exception as exc:
            raise self._error(what, exc) from exc
        for reply in replies:
            if isinstance(reply, Exception):
                raise self._error(what, reply)
        return sum(int(r) for r in replies)

    @property
    def writes_packed_rows(self) -> bool:
        """`write_packed_rows_async` applies: the packed layout on a standalone server."""
        return self.layout == "packed" and not self.cluster

    async def write_packed_rows_async(
        self, view: OnlineView, keys: list[bytes], rows: list[bytes]
    ) -> int:
        """Full packed rows, already encoded (`online_small_write`), in one EVAL from the
        event loop; merged with what is stored exactly as `write_batch_async` merges."""
        what = f"writing view '{view.name}'"
        try:
            (reply,) = await self._roundtrip_async(
                self._commands.packed_rows_eval(view, keys, rows), 1
            )
            if _no_script(reply):
                # Not cached yet (a new or restarted server, SCRIPT FLUSH): EVAL caches it.
                command = self._commands.packed_rows_eval(view, keys, rows, by_sha=False)
                (reply,) = await self._roundtrip_async(command, 1)
        except Exception as exc:
            raise self._error(what, exc) from exc
        if isinstance(reply, Exception):
            raise self._error(what, reply)
        return int(reply)

    def write_batches(self, view: OnlineView, batches: Iterable[WriteBatch]) -> int:
        """Write a stream of batches with one batch in flight: batch i+1 is encoded and sent
        while Redis still runs batch i, whose replies are read afterwards. Returns the rows
        written; the first failure raises (batches before it may be written)."""
        what = f"writing view '{view.name}'"
        if self.cluster:
            return sum(self._write_cluster(view, b, what) for b in batches if len(b))
        import redis

        pool = self.client().connection_pool
        try:
            # Connects (and, under Sentinel, asks for the master): a down Redis is reported
            # as the store's error, as every other failure here.
            conn = pool.get_connection()
        except Exception as exc:
            raise self._error(what, exc) from exc
        written, pending, failure = 0, 0, None

        def collect() -> None:
            nonlocal written, failure
            for _ in range(pending):
                try:
                    written += int(conn.read_response())
                except redis.ResponseError as exc:
                    failure = failure or exc  # keep reading: the connection stays in step

        try:
            for batch in batches:
                if len(batch) == 0:
                    continue
                evals = self._evals(view, batch)
                conn.send_packed_command([b"".join(evals)], check_health=False)
                collect()
                pending = len(evals)
                if failure is not None:
                    break
            collect()
            pending = 0
        except Exception as exc:
            conn.disconnect()
            raise self._error(what, exc) from exc
        finally:
            pool.release(conn)
        if failure is not None:
            raise self._error(what, failure)
        return written

    def _write_cluster(self, view: OnlineView, batch: WriteBatch, what: str) -> int:
        # A script's keys must share a slot: one key per EVAL, sent through redis-py's cluster
        # pipeline. The per-key argument cells are parsed back out of their RESP form.
        keys = resp.concat([batch.keys, self.suffix])
        script, head, parts = self._commands.args(view, batch)
        pipe = self.client().pipeline(transaction=False)
        for key, cell in zip(keys.to_pylist(), cells(parts).to_pylist(), strict=True):
            pipe.execute_command("EVAL", script, 1, key, *head, *parse_bulks(cell))
        try:
            replies = pipe.execute()
        except Exception as exc:
            raise self._error(what, exc) from exc
        return sum(int(r) for r in replies)

    # -- apply and teardown ------------------------------------------------------------------

    def _delete_view(self, view: OnlineView) -> None:
        if self.layout == "packed":
            fields = [view.name.encode()]
        else:
            fields = [*_core.feature_field_names(view.name, list(view.features))]
            fields.append(b"_ts:" + view.name.encode())
        prefix = _core.entity_key_prefix(list(view.join_keys))
        pattern = _glob_escape(prefix) + b"*" + _glob_escape(self.suffix)
        client = self.client()
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
                # SCAN's glob also matches keys whose project merely ends like this one.
                if key.endswith(self.suffix):
                    batch.append(key)
                if len(batch) >= _SCAN_COUNT:
                    self._hdel(client, batch, fields)
                    batch = []
            self._hdel(client, batch, fields)
        except Exception as exc:
            raise self._error(f"deleting the data of view '{view.name}'", exc) from exc

    @staticmethod
    def _hdel(client: Any, keys: list[bytes], fields: list[bytes]) -> None:
        if not keys:
            return
        pipe = client.pipeline(transaction=False)
        for key in keys:
            # Redis removes a hash when its last field goes, as Feast's DEL would.
            pipe.hdel(key, *fields)
        pipe.execute()

    def update(
        self, views_to_keep: Sequence[OnlineView], views_to_delete: Sequence[OnlineView]
    ) -> None:
        if self.config.full_scan_for_deletion:
            for view in views_to_delete:
                self._delete_view(view)

    def teardown(self, views: Sequence[OnlineView]) -> None:
        for view in views:
            self._delete_view(view)

    def infra(self) -> dict[str, object]:
        return {"type": "redis", "layout": self.layout}

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        for client in self._sentinel_clients:
            client.close()
        self._sentinel_clients = []

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


def _no_script(reply: Any) -> bool:
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
