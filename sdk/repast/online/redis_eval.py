"""The RESP encoding of Redis online store writes: `EVAL` commands for the `packed` and
`feast` layouts.

Kept apart from the store (`redis.py`: connections, reads, teardown) so the byte-level
write encoding reads on its own. The scripts' ARGV layouts are documented with the scripts
(`packed_merge.lua`, `resp.FEAST_SET`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.online import resp
from repast.online.base import OnlineView, WriteBatch

__all__ = ["EvalCommands", "cells", "parse_bulks"]

# Keys per EVAL: large enough to amortize the command, small enough that one script call
# blocks Redis for well under a millisecond.
_KEYS_PER_EVAL = 256
# Up to this many rows a write's EVAL is joined from Python bytes (`_small_eval`); above it,
# column-wise with Arrow compute, whose fixed cost per call is then amortized.
_SMALL_BATCH = 16

# An EVAL argument per row: a column (one value per row) or a constant repeated on every row.
_Part = resp.Part


def cells(parts: list[_Part]) -> pa.Array:
    """Per row, the RESP bulk strings of its arguments back to back (column-wise)."""
    return resp.concat(
        [resp.bulk(p) if isinstance(p, bytes) else resp.bulk_cells(p) for p in parts]
    )


def parse_bulks(data: bytes) -> list[bytes]:
    """The arguments of one `cells` cell (redis-py's cluster pipeline wants them apart)."""
    out, pos = [], 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        size = int(data[pos + 1 : end])
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 4 + size
    return out


@dataclass(frozen=True)
class EvalCommands:
    """The write commands of one store: its layout, key suffix (the project) and key TTL."""

    layout: str
    suffix: bytes
    ttl: int

    def args(self, view: OnlineView, batch: WriteBatch) -> tuple[bytes, list[bytes], list[_Part]]:
        """(script, the ARGV before the per-key ones, the per-key ARGV parts)."""
        if self.layout == "feast":
            return self._feast_args(view, batch)
        return self._packed_args(view, batch)

    def evals(self, view: OnlineView, batch: WriteBatch) -> list[bytes]:
        """The EVAL commands writing one batch (standalone Redis), `_KEYS_PER_EVAL` keys each."""
        script, head, parts = self.args(view, batch)
        n = len(batch)
        if n <= _SMALL_BATCH:
            columns = [resp.row_values(p, n) for p in parts]
            call = resp.bulk(b"EVAL") + resp.bulk(script)
            return [self._small_eval(call, head, batch.keys.to_pylist(), columns)]
        keys = resp.concat([batch.keys, self.suffix])
        row_cells = cells(parts)
        per_row = len(parts)
        evals = []
        for start in range(0, n, _KEYS_PER_EVAL):
            k = keys.slice(start, _KEYS_PER_EVAL)
            n = len(k)
            evals.append(
                b"".join(
                    [
                        b"*%d\r\n" % (3 + n + len(head) + n * per_row),
                        resp.bulk(b"EVAL"),
                        resp.bulk(script),
                        resp.bulk(b"%d" % n),
                        resp.data_bytes(resp.bulk_cells(k)),
                        *(resp.bulk(h) for h in head),
                        resp.data_bytes(row_cells.slice(start, _KEYS_PER_EVAL)),
                    ]
                )
            )
        return evals

    def packed_rows_eval(
        self, view: OnlineView, keys: list[bytes], rows: list[bytes], by_sha: bool = True
    ) -> bytes:
        """The command writing full packed rows already encoded (`encode_small_write`): what
        `evals` sends for the same rows when every feature is given, as `EVALSHA` (the 8 KB
        script is neither sent nor hashed again on every one-row push) or, after a
        NOSCRIPT answer, as `EVAL`."""
        call = _packed_evalsha() if by_sha else _packed_eval()
        return self._small_eval(call, self._packed_head(view), keys, [rows, [b""] * len(rows)])

    def _small_eval(
        self, call: bytes, head: list[bytes], keys: list[bytes], columns: list[list[bytes]]
    ) -> bytes:
        """One EVAL for a few rows, joined from Python bytes (`call`: the EVAL or EVALSHA
        bulk strings; `columns`: the per-key ARGV values, one list per argument): cheaper
        than the ~10 Arrow compute calls of the column-wise path (each ~10 us whatever the
        length) below ~16 rows."""
        n = len(keys)
        suffix = self.suffix
        bulk = resp.bulk
        out = [
            b"*%d\r\n" % (3 + n + len(head) + n * len(columns)),
            call,
            bulk(b"%d" % n),
            *(bulk(key + suffix) for key in keys),
            *(bulk(h) for h in head),
        ]
        for row in zip(*columns, strict=True):
            out.extend(map(bulk, row))
        return b"".join(out)

    def _packed_head(self, view: OnlineView) -> list[bytes]:
        return [view.name.encode(), b"%d" % len(view.features), b"%d" % self.ttl]

    def _packed_args(
        self, view: OnlineView, batch: WriteBatch
    ) -> tuple[bytes, list[bytes], list[_Part]]:
        # packed_merge.lua: ARGV = field, feature count, ttl, then (row, mask) per key. A
        # partial row holds only the given features; the mask names their schema positions.
        columns = batch.columns
        given = [i for i, f in enumerate(view.features) if f in columns]
        rows = _core.encode_packed_rows(
            [columns[view.features[i]] for i in given],
            [view.value_types[i] for i in given],
            batch.event_timestamps,
            [view.features[i] for i in given],
        )
        mask = b"" if len(given) == len(view.features) else ",".join(map(str, given)).encode()
        return _packed_merge_script(), self._packed_head(view), [rows, mask]

    def _feast_args(
        self, view: OnlineView, batch: WriteBatch
    ) -> tuple[bytes, list[bytes], list[_Part]]:
        names = [f for f in view.features if f in batch.columns]
        fields = _core.feature_field_names(view.name, names)
        micros = pc.cast(pc.cast(batch.event_timestamps, pa.int64()), pa.string())
        parts: list[_Part] = [
            micros,
            _core.encode_timestamps(batch.event_timestamps, "event_timestamp"),
        ]
        for name in names:
            i = view.index(name)
            vt = view.feast_types[i]
            if _core.is_native_feast_type(vt):
                # Maps, structs, sets, UUIDs, decimals: in Feast's own oneof, not as stored
                # by the packed layout (JSON text, lists, strings).
                parts.append(_core.encode_nested(batch.columns[name], vt, name))
            else:
                parts.append(_core.encode_values(batch.columns[name], view.value_types[i], name))
        head = [b"_ts:" + view.name.encode(), b"%d" % self.ttl, b"%d" % len(names), *fields]
        return resp.FEAST_SET, head, parts


@functools.cache
def _packed_merge_script() -> bytes:
    return (Path(__file__).parent / "packed_merge.lua").read_bytes()


@functools.cache
def _packed_eval() -> bytes:
    return resp.bulk(b"EVAL") + resp.bulk(_packed_merge_script())


@functools.cache
def _packed_evalsha() -> bytes:
    sha = hashlib.sha1(_packed_merge_script(), usedforsecurity=False).hexdigest().encode()
    return resp.bulk(b"EVALSHA") + resp.bulk(sha)
