"""`OnlineResponse` → Feast's `/get-online-features` JSON bytes
(docs/feast-compatibility.md §4.1).

orjson writes numpy arrays natively (OPT_SERIALIZE_NUMPY), so numeric and bool columns
without nulls go from Arrow to JSON without one Python object per value. Columns with nulls,
strings, bytes and lists go through `to_pylist` (Arrow's C loop). Statuses and event
timestamps are shared by every feature of a view, so they are converted once per view.

Feast's value rules: float32 is widened to double and printed as Python prints the double
(`0.20000000298023224`), NaN/±Inf are the strings "NaN"/"Infinity"/"-Infinity", bytes are
base64, UnixTimestamp features are integer seconds, event timestamps are RFC 3339 with `Z`
and 0, 3 or 6 fraction digits (only as many as needed).
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.online import read as online_read
from repast.online.read import PackedRead
from repast.online.stored_types import is_json, parsed_values
from repast.online_response import FIELD_STATUS, OnlineResponse
from repast.value_type import ValueType

__all__ = ["encode_online_response", "encode_packed_read", "format_timestamps", "json_values"]

_STATUS_NAMES = np.array([FIELD_STATUS.get(i, "INVALID") for i in range(8)], dtype=object)
_EPOCH_TEXT = "1970-01-01T00:00:00Z"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _special(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _b64(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def _nested(value: Any, leaf: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_nested(v, leaf) for v in value]
    return leaf(value)


def _float_values(array: pa.Array) -> Any:
    if array.null_count == 0:
        values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        if np.isfinite(values).all():
            return values
        return [_special(v) for v in values.tolist()]
    items: list[Any] = array.cast(pa.float64()).to_pylist()
    if not pc.any(pc.invert(pc.is_finite(array))).as_py():
        return items
    return [v if v is None else _special(v) for v in items]


def _seconds(micros: int) -> int:
    return micros // 1_000_000


_SMALL = 16
_PLAIN = frozenset(
    [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()]
    + [pa.uint64(), pa.bool_(), pa.string(), pa.large_string()]
)
_FLOATS = frozenset([pa.float32(), pa.float64()])


def _finite_or_none(values: list[Any]) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def json_values(array: pa.Array) -> Any:
    """One column's values as something orjson writes the way Feast's server does."""
    kind = array.type
    if is_json(kind):
        # Map, Struct and Json features: objects in the response, as Feast's server writes them.
        return parsed_values(array)
    if len(array) <= _SMALL:
        # A few values: Python objects cost less than the fixed cost of numpy calls (the
        # 1-entity read is the common request). pyarrow widens float32 when it makes floats.
        if kind in _PLAIN:
            return array.to_pylist()
        if kind in _FLOATS:
            items: list[Any] = array.to_pylist()
            if _finite_or_none(items):
                return items
            return [v if v is None else _special(v) for v in items]
    if pa.types.is_floating(kind):
        return _float_values(array)
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if array.null_count == 0:
            return array.to_numpy(zero_copy_only=False)
        return array.to_pylist()
    if pa.types.is_timestamp(kind):
        micros = array.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        if micros.null_count == 0:
            return micros.to_numpy() // 1_000_000
        return [None if v is None else _seconds(v) for v in micros.to_pylist()]
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [None if v is None else _b64(v) for v in array.to_pylist()]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = kind.value_type
        if pa.types.is_floating(inner):
            items = array.cast(pa.list_(pa.float64())).to_pylist()
            if pc.any(pc.invert(pc.is_finite(array.flatten()))).as_py():
                return [_nested(v, _special) for v in items]
            return items
        if pa.types.is_binary(inner) or pa.types.is_large_binary(inner):
            return [_nested(v, _b64) for v in array.to_pylist()]
        if pa.types.is_timestamp(inner):
            seconds = array.cast(pa.list_(pa.timestamp("us", tz="UTC"))).cast(pa.list_(pa.int64()))
            return [_nested(v, _seconds) for v in seconds.to_pylist()]
        return array.to_pylist()
    return array.to_pylist()


_ZONED = int(ValueType.ZONED_TIMESTAMP)


def _zoned_isoformat(array: pa.Array) -> pa.Array:
    """A ZONED_TIMESTAMP's stored `<isoformat>[<zone>]` as Feast's server writes the value:
    its `isoformat()` in its zone."""
    return pc.replace_substring_regex(array, pattern=r"\[[^\[]*\]$", replacement="")


def format_timestamps(array: pa.Array) -> list[str]:
    """RFC 3339 UTC strings with `Z`; nulls (nothing stored) are the epoch, as in Feast."""
    if array.null_count:
        array = array.fill_null(pa.scalar(0, array.type))
    micros = array.cast(pa.int64()).to_numpy()
    stamps = micros.astype("datetime64[us]")
    text = np.datetime_as_string(stamps, unit="s", timezone="UTC")
    fraction = micros % 1_000_000
    if fraction.any():
        # Only the rows with a fraction get 3 or 6 digits, as Feast prints each value.
        text = text.astype(object)
        millis = (fraction != 0) & (fraction % 1000 == 0)
        if millis.any():
            text[millis] = np.datetime_as_string(stamps[millis], unit="ms", timezone="UTC")
        micro = fraction % 1000 != 0
        if micro.any():
            text[micro] = np.datetime_as_string(stamps[micro], unit="us", timezone="UTC")
    result: list[str] = text.tolist()
    return result


def _status_names(codes: pa.Array) -> list[str]:
    names: list[str] = _STATUS_NAMES[codes.to_numpy(zero_copy_only=False)].tolist()
    return names


def _default(value: Any) -> Any:
    # A numpy array orjson declines (not C-contiguous) goes as a list.
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _entity_order(response: OnlineResponse, entities: Sequence[str]) -> list[int]:
    """Column indices with the leading join-key columns (no statuses) in the order the
    request's `entities` object names them, as Feast echoes them."""
    keys = 0
    while keys < len(response.statuses) and response.statuses[keys] is None:
        keys += 1
    position = {name: i for i, name in enumerate(entities)}
    names = response.feature_names
    head = sorted(range(keys), key=lambda i: position.get(names[i], len(position)))
    return [*head, *range(keys, len(names))]


def encode_online_response(
    response: OnlineResponse,
    entities: Sequence[str] = (),
    views: list[dict[str, str]] | None = None,
) -> bytes:
    """Feast's JSON for one read: `results` (one object per column) then `metadata`."""
    n = len(response)
    present = ["PRESENT"] * n
    epoch = [_EPOCH_TEXT] * n
    # Per-view arrays are the same objects for every feature of the view: convert each once.
    converted: dict[int, list[str]] = {}
    results = []
    order = _entity_order(response, entities)
    for i in order:
        values, codes, stamps = (
            response.values[i],
            response.statuses[i],
            response.event_timestamps[i],
        )
        if codes is None:
            statuses = present
        else:
            statuses = converted.get(id(codes)) or converted.setdefault(
                id(codes), _status_names(codes)
            )
        if stamps is None:
            times = epoch
        else:
            times = converted.get(id(stamps)) or converted.setdefault(
                id(stamps), format_timestamps(stamps)
            )
        results.append(
            {
                "values": json_values(_zoned_isoformat(values))
                if response.value_types[i] == _ZONED
                else json_values(values),
                "statuses": statuses,
                "event_timestamps": times,
            }
        )
    names = [response.feature_names[i] for i in order]
    metadata: dict[str, Any] = {"feature_names": names}
    if views is not None:
        metadata["feature_view_metadata"] = views
    document = {"results": results, "metadata": metadata}
    return orjson.dumps(document, option=_OPTIONS, default=_default)


def encode_packed_read(
    read: PackedRead,
    entities: Sequence[str] = (),
    views: list[dict[str, str]] | None = None,
) -> bytes:
    """The same bytes as `encode_online_response` for a read left as packed rows: Rust writes
    the feature columns' objects straight from the stored rows; the few entity key columns
    go through orjson here."""
    n = read.rows
    features = _core.packed_response_json(read.views, read.outputs, n, online_read.now_micros())
    position = {name: i for i, name in enumerate(entities)}
    order = sorted(
        range(len(read.key_names)),
        key=lambda i: position.get(read.key_names[i], len(position)),
    )
    parts = []
    if order:
        statuses = ["PRESENT"] * n
        times = [_EPOCH_TEXT] * n
        for i in order:
            column = read.key_columns[i]
            # Plain keys arrive as the request's own exact ints / strs: printed as given.
            values = column if isinstance(column, list) else json_values(column)
            result = {"values": values, "statuses": statuses, "event_timestamps": times}
            parts.append(orjson.dumps(result, option=_OPTIONS, default=_default))
    parts.append(features)
    names = [read.key_names[i] for i in order] + read.feature_names
    return b"".join(
        (
            b'{"results":[',
            b",".join(parts),
            b'],"metadata":{"feature_names":',
            orjson.dumps(names),
            b"" if views is None else b',"feature_view_metadata":' + orjson.dumps(views),
            b"}}",
        )
    )
