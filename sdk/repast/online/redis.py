"""The Redis online store (redis-py with hiredis), in two layouts.

Both key one Redis hash per entity: `serialize_entity_key(v3) ++ project`.
- `feast`: Feast's fields, byte for byte (docs/feast-compatibility.md §2):
  `mmh3_le32("<view>:<feature>")` → Value protobuf, `_ts:<view>` → Timestamp protobuf.
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
import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from repast import _core
from repast.config import RedisOnlineStoreConfig
from repast.online import resp
from repast.online.base import (
    AsyncBatchWriter,
    Merge,
    OnlineStore,
    OnlineStoreError,
    OnlineView,
    PackedRows,
    PackedRowStore,
    PackedRowWriter,
    ReadRequest,
    ViewRows,
    WriteBatch,
)
from repast.online.redis_client import RedisClients, is_no_script, parse_connection_string
from repast.online.redis_eval import EvalCommands, cells, parse_bulks
from repast.online.stored_types import check_feast_layout

__all__ = ["RedisOnlineStore", "parse_connection_string"]

# Requests grouped by their key array: (keys with the project, request indices, HMGET fields).
_ReadPlan = list[tuple[list[bytes], list[int], list[bytes]]]

logger = logging.getLogger(__name__)

_SCAN_COUNT = 1000
_GLOB_SPECIAL = frozenset(b"*?[]\\")


def _glob_escape(data: bytes) -> bytes:
    return b"".join(b"\\" + bytes([c]) if c in _GLOB_SPECIAL else bytes([c]) for c in data)


# Compare-and-set of one entity's tile set of one view (online/tiles.py).
# KEYS[1] the entity hash; ARGV[1] the field (the view's name); ARGV[2] the SHA-1 (hex) of the
# value read, "" when none was stored; ARGV[3] the new value; ARGV[4] EXPIRE seconds (0: none).
# Returns 1 when written, 0 when the stored value changed since it was read.
_TILES_CAS = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local digest = ''
if current then digest = redis.sha1hex(current) end
if digest ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local ttl = tonumber(ARGV[4]) or 0
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""
_TILES_ATTEMPTS = 20


def tiles_need_packed(view: str) -> str:
    """Why an aggregated view cannot be stored in Redis's `feast` layout."""
    return (
        f"feature view '{view}' serves windowed aggregations, which need the Redis "
        "layout: packed (standalone, Sentinel or cluster): the feast layout stores Feast's "
        "one protobuf value per feature, and Feast has no stored form for aggregation tiles "
        "(its aggregates exist only inside its Spark/Ray jobs)"
    )


class _NoScript(Exception):
    """The server lost the tiles script (restart, SCRIPT FLUSH): load it again."""


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
        self._clients = RedisClients(config)
        self.cluster = self._clients.cluster
        self._commands = EvalCommands(self.layout, self.suffix, self.ttl)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.config.connection_string!r}, layout={self.layout!r})"

    # -- connections -------------------------------------------------------------------------

    def client(self) -> Any:
        """The synchronous redis-py client (created on first use)."""
        return self._clients.client()

    def async_client(self) -> Any:
        """The asyncio client, bound to the running event loop (created on first use)."""
        return self._clients.async_client()

    def reset_async(self) -> None:
        """Drop the asyncio connections (a read got stuck on one); the next read reconnects."""
        self._clients.reset_async()

    def _error(self, what: str, exc: BaseException) -> OnlineStoreError:
        return OnlineStoreError(f"Redis {self.config.connection_string}: {what} failed: {exc}")

    def _roundtrip(self, payload: bytes, count: int) -> list[Any]:
        return self._clients.roundtrip(payload, count)

    async def _roundtrip_async(self, payload: bytes, count: int) -> list[Any]:
        return await self._clients.roundtrip_async(payload, count)

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
                    at, name = view.index(feature), f"{view.name}:{feature}"
                    vt = view.feast_types[at]
                    if _core.is_native_feast_type(vt):
                        declared = view.arrow_types[at]
                        cols.append(_core.decode_nested(cells(column), vt, declared, name))
                    else:
                        cols.append(_core.decode_values(cells(column), view.value_types[at], name))
                    column += 1
                ts = _core.decode_timestamps(cells(column), f"_ts:{view.name}")
                column += 1
                out[i] = ViewRows(ts, cols)
        return [rows for rows in out if rows is not None]

    def _replies(self, plan: _ReadPlan) -> list[Any]:
        if not any(keys for keys, _, _ in plan):
            return []  # no entity to read: no round trip
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
        if not any(keys for keys, _, _ in plan):
            return []  # no entity to read: no round trip
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
        """Full packed rows, already encoded (`online/small_write.py`), in one EVAL from the
        event loop; merged with what is stored exactly as `write_batch_async` merges."""
        what = f"writing view '{view.name}'"
        try:
            (reply,) = await self._roundtrip_async(
                self._commands.packed_rows_eval(view, keys, rows), 1
            )
            if is_no_script(reply):
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

    def update_tiles(self, view: OnlineView, keys: list[bytes], merge: Merge) -> None:
        """An aggregated view's tile sets (`online/tiles.py`): read (pipelined HGETs), merged,
        and written back by a compare-and-set script per key (`_TILES_CAS`: the stored value
        must still hash to what was read). Keys another writer changed in between are read and
        merged again. A standalone server is spoken to in raw RESP round trips (no client
        object per command); a cluster through redis-py's cluster pipeline, which sends each
        key's commands to the node holding its slot (one key per script, as on any cluster)."""
        if self.layout != "packed":
            raise OnlineStoreError(tiles_need_packed(view.name))
        field = view.name.encode()
        full = [k + self.suffix for k in keys]
        stored: list[bytes | None] = [None] * len(keys)
        pending = list(range(len(keys)))
        what = f"updating the tiles of view '{view.name}'"
        for _ in range(_TILES_ATTEMPTS):
            read = [full[i] for i in pending]
            get = self._tiles_get_cluster if self.cluster else self._tiles_get
            replies = get(what, read, field)
            for i, value in zip(pending, replies, strict=True):
                stored[i] = value
            sets, _ = merge(stored)
            writes = []
            for i in pending:
                seen = stored[i]
                digest = b"" if seen is None else hashlib.sha1(seen).hexdigest().encode()
                writes.append((full[i], digest, sets[i]))
            try:
                cas = self._tiles_cas_cluster if self.cluster else self._tiles_cas
                done = cas(what, field, writes)
            except _NoScript:
                self._tiles_script = None
                continue
            pending = [i for i, ok in zip(pending, done, strict=True) if not ok]
            if not pending:
                return
        raise OnlineStoreError(
            f"Redis {self.config.connection_string}: the tiles of view '{view.name}' kept "
            f"changing under {len(pending)} concurrent writes; nothing else was lost"
        )

    def _tiles_get(self, what: str, keys: list[bytes], field: bytes) -> list[Any]:
        head = b"*3\r\n$4\r\nHGET\r\n"
        name = resp.bulk(field)
        return self._checked(what, b"".join(head + resp.bulk(k) + name for k in keys), len(keys))

    def _tiles_cas(
        self, what: str, field: bytes, writes: list[tuple[bytes, bytes, bytes]]
    ) -> list[Any]:
        head = b"*8\r\n$7\r\nEVALSHA\r\n" + resp.bulk(self._tiles_sha()) + b"$1\r\n1\r\n"
        tail = resp.bulk(str(self.ttl).encode())
        name = resp.bulk(field)
        commands = [
            head + resp.bulk(key) + name + resp.bulk(digest) + resp.bulk(value) + tail
            for key, digest, value in writes
        ]
        return self._checked(what, b"".join(commands), len(commands))

    def _cluster_pipeline(self, what: str, commands: list[tuple[Any, ...]]) -> list[Any]:
        pipe = self.client().pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            replies = list(pipe.execute(raise_on_error=False))
        except Exception as exc:
            raise self._error(what, exc) from exc
        for reply in replies:
            if isinstance(reply, Exception):
                raise self._error(what, reply)
        return replies

    def _tiles_get_cluster(self, what: str, keys: list[bytes], field: bytes) -> list[Any]:
        return self._cluster_pipeline(what, [("HGET", key, field) for key in keys])

    def _tiles_cas_cluster(
        self, what: str, field: bytes, writes: list[tuple[bytes, bytes, bytes]]
    ) -> list[Any]:
        # EVAL with the script's text: each node caches it on first use, so a node that
        # restarted or joined never answers NOSCRIPT.
        return self._cluster_pipeline(
            what,
            [
                ("EVAL", _TILES_CAS, 1, key, field, digest, value, self.ttl)
                for key, digest, value in writes
            ],
        )

    _tiles_script: bytes | None = None

    def _tiles_sha(self) -> bytes:
        if self._tiles_script is None:
            sha = self.client().script_load(_TILES_CAS)
            self._tiles_script = sha.encode() if isinstance(sha, str) else sha
        return self._tiles_script

    def _checked(self, what: str, payload: bytes, count: int) -> list[Any]:
        try:
            replies = self._roundtrip(payload, count)
        except Exception as exc:
            raise self._error(what, exc) from exc
        for reply in replies:
            if is_no_script(reply):
                raise _NoScript()
            if isinstance(reply, Exception):
                raise self._error(what, reply)
        return replies

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
        if self.layout == "feast":
            for view in views_to_keep:
                check_feast_layout(view.name, view.features, view.feast_types)
        if self.config.full_scan_for_deletion:
            for view in views_to_delete:
                self._delete_view(view)
            return
        kept = {v.name for v in views_to_keep}
        for view in views_to_delete:
            if view.name in kept and self.layout == "packed":
                # Packed rows hold features by position: a renamed, retyped or reordered
                # feature would be read from the old rows' positions.
                logger.warning(
                    "feature view '%s' changed in a way its stored rows cannot follow, and "
                    "full_scan_for_deletion is false: its old rows stay in Redis and would be "
                    "read under the new schema; rematerialize the view, or set "
                    "full_scan_for_deletion: true to drop them on apply",
                    view.name,
                )

    def teardown(self, views: Sequence[OnlineView]) -> None:
        for view in views:
            self._delete_view(view)

    def infra(self) -> dict[str, object]:
        return {"type": "redis", "layout": self.layout}

    def close(self) -> None:
        self._clients.close()

    async def close_async(self) -> None:
        """Close the asyncio connections; call it on the loop that used them."""
        await self._clients.close_async()


if TYPE_CHECKING:
    # mypy checks that the store has every capability it declares (online/base.py).
    def _capabilities(
        store: RedisOnlineStore,
    ) -> tuple[OnlineStore, PackedRowStore, PackedRowWriter, AsyncBatchWriter]:
        return store, store, store, store
