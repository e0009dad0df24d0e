"""Redis protocol (RESP2) bytes built column-wise with Arrow compute, and the Lua write scripts.

A batch of commands of one shape (e.g. `HMGET <key> f1 f2` for 10 000 keys) becomes one
`bytes` payload without a Python object per key: each argument column is turned into
`$<len>\\r\\n<bytes>\\r\\n` cells by `binary_join_element_wise`, the cells of a row are
joined the same way, and the data buffer of the result is the payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FEAST_SET", "bulk", "bulk_cells", "command", "concat", "data_bytes", "row_values"]

Part: TypeAlias = bytes | pa.Array


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def bulk_cells(values: pa.Array) -> pa.Array:
    """`$<len>\\r\\n<value>\\r\\n` per cell; a null cell becomes the empty string."""
    if not pa.types.is_binary(values.type):
        values = values.cast(pa.binary())
    values = values.fill_null(b"")
    lengths = pc.cast(pc.cast(pc.binary_length(values), pa.string()), pa.binary())
    return pc.binary_join_element_wise(b"$", lengths, b"\r\n", values, b"\r\n", b"")


def row_values(part: Part, rows: int) -> list[bytes]:
    """A few rows' values of an argument as Python bytes (what `bulk_cells` wraps): a constant
    repeated, or a column's cells with null as the empty string. For small batches only: one
    Python object per value."""
    if isinstance(part, bytes):
        return [part] * rows
    # Text (the feast layout's decimal event times) as its UTF-8 bytes, as the binary cast.
    return [
        b"" if v is None else v if isinstance(v, bytes) else str(v).encode()
        for v in part.to_pylist()
    ]


def concat(parts: Sequence[Part]) -> pa.Array:
    """Row-wise concatenation of byte columns and constants (constants repeat on every row)."""
    scalars = [pa.scalar(p, pa.binary()) if isinstance(p, bytes) else p for p in parts]
    return pc.binary_join_element_wise(*scalars, pa.scalar(b"", pa.binary()))


def data_bytes(cells: pa.Array) -> bytes:
    """Every cell of a binary column, back to back, as one `bytes` (no per-cell objects)."""
    if len(cells) == 0:
        return b""
    offsets = np.frombuffer(cells.buffers()[1], dtype=np.int32)
    start, end = int(offsets[cells.offset]), int(offsets[cells.offset + len(cells)])
    data: bytes = cells.buffers()[2].to_pybytes()
    return data[start:end]


def command(args: Sequence[Part], rows: int) -> bytes:
    """`rows` commands of the same arity: constants and per-row columns, as one payload."""
    head = b"*%d\r\n" % len(args)
    parts: list[Part] = [head]
    for arg in args:
        parts.append(bulk(arg) if isinstance(arg, bytes) else bulk_cells(arg))
    if rows == 0:
        return b""
    if all(isinstance(p, bytes) for p in parts):
        return b"".join(p for p in parts if isinstance(p, bytes)) * rows
    return data_bytes(concat(parts))


# Feast's write rule for the `feast` layout, done atomically on the server: a row is written
# only when its event time is newer than the stored `_ts:<view>` (a protobuf Timestamp).
# KEYS: hash keys. ARGV[1]: "_ts:<view>". ARGV[2]: key ttl seconds (0 = none). ARGV[3]: m,
# the number of feature fields; ARGV[4 .. 3+m]: their names. Then per key i, from
# b = 3 + m + (i-1)*(m+2): ARGV[b+1] the event time in microseconds (decimal text),
# ARGV[b+2] the Timestamp bytes, ARGV[b+3 .. b+2+m] the Value bytes.
# Reply: the number of keys written.
FEAST_SET = b"""
local function varint(s, pos)
  local v, mul = 0, 1
  while true do
    local b = string.byte(s, pos)
    pos = pos + 1
    v = v + (b % 128) * mul
    if b < 128 then return v, pos end
    mul = mul * 128
  end
end
local function micros(s)
  local sec, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local v
    v, pos = varint(s, pos + 1)
    if tag == 8 then sec = v elseif tag == 16 then nanos = v end
  end
  if sec >= 9223372036854775808 then sec = sec - 18446744073709551616 end
  return sec * 1000000 + math.floor(nanos / 1000)
end
local tsfield, ttl, m = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local written = 0
for i = 1, #KEYS do
  local b = 3 + m + (i - 1) * (m + 2)
  local old = redis.call('HGET', KEYS[i], tsfield)
  -- Feast treats a zero stored time as "never written".
  if old and old ~= '' and micros(old) >= tonumber(ARGV[b + 1]) then
    -- kept: the stored row is as new or newer
  else
    local args = {tsfield, ARGV[b + 2]}
    for j = 1, m do
      args[#args + 1] = ARGV[3 + j]
      args[#args + 1] = ARGV[b + 2 + j]
    end
    redis.call('HSET', KEYS[i], unpack(args))
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    written = written + 1
  end
end
return written
"""
