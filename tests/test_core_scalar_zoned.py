"""SCALAR_MAP and ZONED_TIMESTAMP kernels of `repast._core` under generated input: typed keys
and zoned instants survive Python values → stored text → Feast Value bytes → Python values as
Feast's SDK reads them; a bad value anywhere in a column is an error naming that row; a zone is
accepted exactly when Python's `zoneinfo` (or Feast's fixed-offset rule) resolves it."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from repast import _core
from repast.errors import InvalidValueError
from repast.online.stored_types import json_column, python_values, zoned_inputs

SM, ZT = 47, 48

floats = st.floats(allow_nan=False, allow_infinity=False)
int64s = st.integers(-(2**63), 2**63 - 1)
# A ScalarMap's keys: Python ints, floats and bools (Feast's int64_key, double_key, bool_key).
map_keys = int64s | floats | st.booleans()
# Its values: what Feast infers a Value for (no empty or mixed lists, no nulls inside lists).
leaves = st.none() | st.booleans() | int64s | floats | st.text(max_size=5)
values = st.recursive(
    leaves
    | st.one_of(
        *(st.lists(s, min_size=1, max_size=3) for s in (st.booleans(), int64s, st.text(max_size=3)))
    ),
    lambda inner: st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
scalar_maps = st.dictionaries(map_keys, values, max_size=5)


def _texts(maps: Sequence[dict[Any, Any] | None]) -> pa.Array:
    return pa.array(
        [
            None if m is None else orjson.dumps(m, option=orjson.OPT_NON_STR_KEYS).decode()
            for m in maps
        ],
        pa.string(),
    )


def _same(got: list[Any], want: list[Any]) -> None:
    assert got == want
    for g, w in zip(got, want, strict=True):
        if w is not None:
            assert [(type(k), k) for k in g] == [(type(k), k) for k in w]  # types and order


@settings(max_examples=150, deadline=None)
@given(st.lists(scalar_maps | st.none(), max_size=6))
def test_scalar_maps_round_trip_with_typed_keys(maps: list[dict[Any, Any] | None]) -> None:
    stored = _core.nested_json_text(_texts(maps), SM, None, "m")
    _same(python_values(json_column(stored), SM), maps)
    encoded = _core.encode_nested(stored, SM, "m")
    assert encoded == _core.encode_nested(_texts(maps), SM, "m")
    decoded = _core.decode_nested(encoded, SM, None, "m")
    _same(python_values(json_column(decoded), SM), maps)


bad_keys = st.text(min_size=1, max_size=6).filter(
    lambda k: not re.fullmatch(r"-?[0-9.eE+-]+|true|false", k)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(scalar_maps, min_size=1, max_size=6), st.data())
def test_a_string_key_anywhere_names_its_row(good: list[dict[Any, Any]], data: Any) -> None:
    row = data.draw(st.integers(0, len(good) - 1))
    key = data.draw(bad_keys)
    texts = _texts(good).to_pylist()
    texts[row] = orjson.dumps({key: 1}).decode()
    column = pa.array(texts, pa.string())
    with pytest.raises(InvalidValueError, match=rf"column 'm' row {row}: not a SCALAR_MAP value"):
        _core.nested_json_text(column, SM, None, "m")
    with pytest.raises(InvalidValueError, match=rf"column 'm' row {row}"):
        _core.encode_nested(column, SM, "m")


ZONES = sorted(zoneinfo.available_timezones())
tzinfos = (
    st.sampled_from(ZONES).map(zoneinfo.ZoneInfo)
    | st.just(UTC)
    | st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
)
instants = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=tzinfos
)


def _feasts_read(value: datetime) -> datetime:
    """What Feast's SDK reads back for a datetime it stored (whole seconds toward zero)."""
    tz: tzinfo = value.tzinfo or UTC
    if isinstance(tz, timezone) and tz != UTC:
        return datetime.fromtimestamp(int(value.timestamp()), tz=tz)
    name = getattr(tz, "key", None) or "UTC"
    return datetime.fromtimestamp(int(value.timestamp()), tz=zoneinfo.ZoneInfo(name))


@settings(max_examples=200, deadline=None)
@given(st.lists(instants | st.none(), max_size=6))
def test_zoned_timestamps_round_trip_in_their_zones(given_values: list[datetime | None]) -> None:
    assume(all(v is None or 1 < v.astimezone(UTC).year < 2200 for v in given_values))
    text = _core.zoned_text(pa.array(zoned_inputs(given_values, "z"), pa.string()), "z")
    want = [None if v is None else _feasts_read(v) for v in given_values]
    got = python_values(text, ZT)
    assert got == want
    assert [None if g is None else g.utcoffset() for g in got] == [
        None if w is None else w.utcoffset() for w in want
    ]
    encoded = _core.encode_nested(text, ZT, "z")
    assert _core.decode_nested(encoded, ZT, None, "z").to_pylist() == text.to_pylist()


def _python_resolves(zone: str) -> bool:
    """Whether Feast's SDK reads `zone` as itself: an IANA name or a fixed offset it parses."""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return bool(re.fullmatch(r"(?:UTC|GMT)?[+-]\d{2}:?\d{2}|UTC|GMT", zone))
    return True


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES)
    | st.sampled_from(ZONES).map(str.lower)
    | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/_+-:0123456789", max_size=20),
    st.integers(0, 3),
)
def test_a_zone_is_accepted_exactly_when_python_resolves_it(zone: str, row: int) -> None:
    assume(zone and "[" not in zone and not zone.startswith("/"))
    texts = ["2024-01-01T00:00:00Z"] * 4
    texts[row] = f"2024-06-01T12:00:00+00:00[{zone}]"
    column = pa.array(texts)
    if _python_resolves(zone):
        assert _core.zoned_text(column, "z")[row].as_py().endswith(f"[{zone}]")
    else:
        with pytest.raises(InvalidValueError, match=rf"column 'z' row {row}: .*unknown time zone"):
            _core.zoned_text(column, "z")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=25), st.integers(0, 2))
def test_text_that_is_not_a_timestamp_names_its_row(text: str, row: int) -> None:
    try:
        datetime.fromisoformat(text.split("[")[0])
    except ValueError:
        pass
    else:
        assume(False)  # an ISO text Python reads is covered above
    texts = ["2024-01-01T00:00:00Z"] * 3
    texts[row] = text
    with pytest.raises(InvalidValueError, match=rf"column 'z' row {row}: not a ZONED_TIMESTAMP"):
        _core.zoned_text(pa.array(texts), "z")
