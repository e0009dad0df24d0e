"""The `packed` layout's write script (`repast/online/packed_merge.lua`) against a real Redis."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import redis

from repast import _core
from services import RedisServer

SCRIPT = Path(_core.__file__).parent / "online" / "packed_merge.lua"
FIELD = "driver_stats"
T0 = dt.datetime(2024, 1, 1, 11, tzinfo=dt.UTC)
# The view: INT64, STRING, DOUBLE
TYPES = [4, 2, 5]
ARROW = {2: pa.string(), 4: pa.int64(), 5: pa.float64(), 6: pa.float32(), 14: pa.list_(pa.int64())}


@pytest.fixture
def client(redis_clean: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis(host=redis_clean.host, port=redis_clean.port) as r:
        yield r


def row(
    values: Sequence[Any],
    seconds: float,
    types: Sequence[int] = TYPES,
) -> bytes:
    """One packed row of `values` (feature i has type `types[i]`) at T0 + `seconds`."""
    columns = [pa.array([v], ARROW[t]) for v, t in zip(values, types, strict=True)]
    ts = pa.array([T0 + dt.timedelta(seconds=seconds)], pa.timestamp("us", "UTC"))
    result = _core.encode_packed_rows(columns, list(types), ts)[0].as_py()
    assert isinstance(result, bytes)
    return result


def merge(
    r: redis.Redis,
    writes: Sequence[tuple[str, bytes, str]],
    *,
    feature_count: int = len(TYPES),
    ttl: int | str = "",
) -> int:
    """Runs the script once for every (key, row, mask) in `writes`."""
    script = r.register_script(SCRIPT.read_text())
    args: list[Any] = [FIELD, feature_count, ttl]
    for _, data, mask in writes:
        args += [data, mask]
    result = script(keys=[k for k, _, _ in writes], args=args)
    assert isinstance(result, int)
    return result


def stored(r: redis.Redis, key: str, types: Sequence[int] = TYPES) -> tuple[Any, list[Any]]:
    """(event time, values) of the row stored at `key`, decoded by the Rust decoder."""
    data = r.hget(key, FIELD)
    rows = pa.array([data], pa.binary())
    ts, columns = _core.decode_packed_rows(rows, list(types), list(range(len(types))))
    return ts[0].as_py(), [c[0].as_py() for c in columns]


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_newer_wins_equal_and_older_are_skipped(client: redis.Redis) -> None:
    assert merge(client, [("k", row([1, "a", 1.5], 10), "")]) == 1
    assert stored(client, "k") == (at(10), [1, "a", 1.5])
    assert merge(client, [("k", row([2, "b", 2.5], 10), "")]) == 0  # equal: skipped
    assert merge(client, [("k", row([3, "c", 3.5], 9), "")]) == 0  # older: skipped
    assert stored(client, "k") == (at(10), [1, "a", 1.5])
    assert merge(client, [("k", row([4, None, None], 10.000001), "")]) == 1
    assert stored(client, "k") == (at(10.000001), [4, None, None])


def test_times_before_the_epoch_order_correctly(client: redis.Redis) -> None:
    old = dt.datetime(1960, 1, 1, tzinfo=dt.UTC)
    ts = pa.array([old, old + dt.timedelta(microseconds=1)], pa.timestamp("us", "UTC"))
    rows = _core.encode_packed_rows([pa.array([1, 2])], [4], ts).to_pylist()
    assert merge(client, [("k", rows[1], "")], feature_count=1) == 1
    assert merge(client, [("k", rows[0], "")], feature_count=1) == 0
    assert stored(client, "k", [4])[1] == [2]


def test_partial_write_updates_only_its_features(client: redis.Redis) -> None:
    merge(client, [("k", row([1, "a", 1.5], 10), "")])
    # A row holding DOUBLE then INT64, at positions 2 and 0.
    partial = row([9.5, 7], 11, types=[5, 4])
    assert merge(client, [("k", partial, "2,0")]) == 1
    assert stored(client, "k") == (at(11), [7, "a", 9.5])
    # An older partial row is skipped like a full one.
    assert merge(client, [("k", row(["z"], 5, types=[2]), "1")]) == 0
    assert stored(client, "k") == (at(11), [7, "a", 9.5])


def test_partial_write_without_a_stored_row_leaves_the_rest_null(client: redis.Redis) -> None:
    assert merge(client, [("k", row(["s"], 1, types=[2]), "1")]) == 1
    assert stored(client, "k") == (at(1), [None, "s", None])


def test_partial_write_pads_a_short_stored_row(client: redis.Redis) -> None:
    """The view gained a feature after the stored row was written."""
    merge(client, [("k", row([1], 1, types=[4]), "")], feature_count=1)
    assert merge(client, [("k", row([2.5], 2, types=[5]), "2")]) == 1
    assert stored(client, "k") == (at(2), [1, None, 2.5])


def test_partial_merge_keeps_every_stored_byte(client: redis.Redis) -> None:
    """Values are spliced, not decoded into Lua numbers: int64 > 2^53, float32, nested lists,
    long strings and 20 features (a 16-bit array header) survive untouched."""
    types = [4, 6, 14, 2] + [5] * 16
    values = [2**63 - 1, 0.1, [2**60, None], "x" * 300] + [float(i) for i in range(16)]
    full = row(values, 1, types=types)
    merge(client, [("k", full, "")], feature_count=20)
    assert merge(client, [("k", row([-1.0], 2, types=[5]), "19")], feature_count=20) == 1
    merged = client.hget("k", FIELD)
    assert isinstance(merged, bytes)
    # Only the timestamp and the last element differ.
    assert merged[9:-9] == full[9:-9]
    _, got = stored(client, "k", types)
    assert got[:4] == [2**63 - 1, pytest.approx(0.1), [2**60, None], "x" * 300]
    assert got[4:] == [float(i) for i in range(15)] + [-1.0]


def test_a_batch_with_duplicate_keys_keeps_the_newest_in_any_order(client: redis.Redis) -> None:
    writes = [("k", row([i, str(i), float(i)], i), "") for i in (1, 3, 2, 0)]
    for n, order in enumerate(itertools.permutations(writes)):
        key = f"k{n}"
        accepted = merge(client, [(key, data, mask) for _, data, mask in order])
        assert stored(client, key) == (at(3), [3, "3", 3.0])
        # Rows are accepted while each beats the row accepted before it.
        times = [(1, 3, 2, 0)[writes.index(w)] for w in order]
        assert accepted == _running_maxima(times)
    # Equal times: the first row of the batch stays.
    merge(client, [("e", row([1, "first", 1.0], 5), ""), ("e", row([2, "second", 2.0], 5), "")])
    assert stored(client, "e") == (at(5), [1, "first", 1.0])


def _running_maxima(times: list[int]) -> int:
    count, best = 0, None
    for t in times:
        if best is None or t > best:
            count, best = count + 1, t
    return count


def test_many_keys_in_one_call(client: redis.Redis) -> None:
    client.hset("other", FIELD, row([0, "", 0.0], 500))
    writes = [(f"k{i % 700}", row([i, "v", 0.5], i), "") for i in range(2000)]
    writes.append(("other", row([1, "old", 1.0], 100), ""))
    accepted = merge(client, writes)
    # Every row of a key is newer than the one before it in the batch; `other` is older.
    assert accepted == 2000
    for k in (0, 1, 699):
        last = max(i for i in range(2000) if i % 700 == k)
        assert stored(client, f"k{k}") == (at(last), [last, "v", 0.5])
    assert stored(client, "other")[1] == [0, "", 0.0]
    # Partial duplicates within a batch merge in order.
    merge(
        client,
        [
            ("p", row([1, "a", 1.0], 1), ""),
            ("p", row([2], 2, types=[4]), "0"),
            ("p", row([3.0], 3, types=[5]), "2"),
            ("p", row(["old"], 2, types=[2]), "1"),
        ],
    )
    assert stored(client, "p") == (at(3), [2, "a", 3.0])


def test_ttl(client: redis.Redis) -> None:
    merge(client, [("a", row([1, "a", 1.0], 1), "")], ttl=3600)
    assert 3590 < client.ttl("a") <= 3600
    merge(client, [("b", row([1, "a", 1.0], 1), "")], ttl=0)
    merge(client, [("c", row([1, "a", 1.0], 1), "")])
    assert client.ttl("b") == -1
    assert client.ttl("c") == -1
    # A skipped row does not refresh the expiry; an accepted one does.
    client.expire("a", 10)
    merge(client, [("a", row([1, "a", 1.0], 0), "")], ttl=3600)
    assert client.ttl("a") <= 10
    merge(client, [("a", row([1, "a", 1.0], 2), "")], ttl=3600)
    assert client.ttl("a") > 10


@pytest.mark.parametrize(
    ("data", "mask", "message"),
    [
        (b"\x01\x00", "", "shorter than a row header"),
        (b"\x02" + b"\x00" * 9, "", "unknown format version 0x02"),
        (b"\x01" + b"\x80" * 8 + b"\x92\x01", "0,1", "truncated"),
        (b"\x01" + b"\x80" * 8 + b"\x92\x01\x02", "0", "holds 2 features but the mask names 1"),
        (b"\x01" + b"\x80" * 8 + b"\x91\x01", "x", 'bad feature mask "x"'),
        (b"\x01" + b"\x80" * 8 + b"\x92\x01\x02", "1,1", 'bad feature mask "1,1"'),
        (b"\x01" + b"\x80" * 8 + b"\x91\x01\x00", "0", "1 trailing bytes"),
    ],
)
def test_bad_rows_write_nothing(client: redis.Redis, data: bytes, mask: str, message: str) -> None:
    good = row([1, "a", 1.0], 1)
    with pytest.raises(redis.ResponseError, match=f"new row 2 .*{message}"):
        merge(client, [("a", good, ""), ("b", data, mask)])
    assert client.exists("a", "b") == 0


def test_corrupt_stored_rows_and_bad_arguments(client: redis.Redis) -> None:
    client.hset("k", FIELD, b"\x07" + b"\x00" * 12)
    with pytest.raises(redis.ResponseError, match="stored row of key 2 is not a version 1"):
        merge(client, [("a", row([1, "a", 1.0], 1), ""), ("k", row([1, "a", 1.0], 1), "")])
    assert client.exists("a") == 0
    client.hset("k", FIELD, b"\x01" + b"\x00" * 8 + b"\x93\x01")
    with pytest.raises(redis.ResponseError, match="stored row of key 1 is corrupt"):
        merge(client, [("k", row([1.0], 1, types=[5]), "2")])
    script = client.register_script(SCRIPT.read_text())
    with pytest.raises(redis.ResponseError, match="expected 5 arguments for 1 keys"):
        script(keys=["k"], args=[FIELD, 3, ""])
    with pytest.raises(redis.ResponseError, match="feature count must be a whole number"):
        script(keys=[], args=[FIELD, "x", ""])
