"""Request values (JSON lists, numpy, Arrow) as Arrow arrays of a declared type, exactly.

`pa.array([1001.7], pa.int64())` silently truncates to 1001, and a bool casts to 1: a read
would then serve another entity, a push would store another value. Here integer columns are
built by inference first and then cast *safely* (one Arrow call on the whole column), so
`1001.0` and `"1001"` become 1001 while `1001.7`, `True`, `NaN`, `1e30` or a float past 2**53
(which may stand for a neighbouring integer) are refused. Only when a column is refused is it
walked value by value, to name the first bad row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.errors import InvalidValueError, RepastError

__all__ = ["BAD_VALUES", "exact_array", "exact_cast", "first_bad_row", "has_hidden_bools"]

# What pyarrow raises for values it cannot convert.
BAD_VALUES = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def _castable_to_integer(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
    )


def exact_array(
    values: Sequence[Any] | pa.Array | Any,
    target: pa.DataType,
    what: str,
    error: type[RepastError] = InvalidValueError,
) -> pa.Array:
    """`values` as an array of `target`; `error` naming `what`, the first bad row and the
    expected type when a value does not convert exactly."""
    if pa.types.is_integer(target):
        try:
            array = values if isinstance(values, pa.Array) else pa.array(values)
        except BAD_VALUES as exc:
            raise error(_message(values, target, what, exc)) from None
        kind = array.type
        if kind == target:  # the common case: Python ints as int64
            return array
        if has_hidden_bools(values, array):
            raise error(_message(values, target, what))
        return exact_cast(array, target, what, error, values)
    if isinstance(values, pa.Array):
        return exact_cast(values, target, what, error, values)
    try:
        return pa.array(values, target)
    except BAD_VALUES as exc:
        raise error(_message(values, target, what, exc)) from None


def exact_cast(
    array: pa.Array,
    target: pa.DataType,
    what: str,
    error: type[RepastError] = InvalidValueError,
    source: Any = None,
) -> pa.Array:
    """`array` cast safely to `target` (an integer target takes no booleans and no
    fractions); `error` naming the first bad row when a value does not convert."""
    if array.type == target:
        return array
    if pa.types.is_integer(target) and (
        not _castable_to_integer(array.type) or _beyond_exact_floats(array)
    ):
        raise error(_message(array if source is None else source, target, what))
    try:
        return array.cast(target, safe=not pa.types.is_timestamp(target))
    except _CAST_ERRORS as exc:
        raise error(_message(array if source is None else source, target, what, exc)) from None


# Every integer up to 2**53 is a float64 exactly; past it a float may stand for a neighbouring
# integer (orjson reads an integer literal outside 64 bits as the nearest float), so a float
# that large is no integer key or value.
FLOAT_EXACT = 2**53


def _beyond_exact_floats(array: pa.Array) -> bool:
    if not pa.types.is_floating(array.type) or len(array) == array.null_count:
        return False
    largest = pc.max(pc.abs(array)).as_py()
    return largest is not None and largest > FLOAT_EXACT


def has_hidden_bools(values: Any, array: pa.Array) -> bool:
    """Whether inference turned booleans of a Python list into numbers: `[1000.0, True]`
    infers as doubles `[1000.0, 1.0]` (other mixes with booleans are refused by Arrow). Only
    float columns are looked at, in one C-level pass over the value types."""
    return (
        pa.types.is_floating(array.type)
        and isinstance(values, list | tuple)
        and bool in set(map(type, values))
    )


def first_bad_row(values: Sequence[Any] | pa.Array | Any, target: pa.DataType) -> int | None:
    """The index of the first value that does not convert exactly to `target` (a walk over
    the values: only called once a whole-column conversion failed)."""
    items = values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else values
    for row, value in enumerate(items):
        if not _converts(value, target):
            return row
    return None


def _converts(value: Any, target: pa.DataType) -> bool:
    if pa.types.is_integer(target):
        if isinstance(value, bool):
            return False
        try:
            array = pa.array([value])
        except BAD_VALUES:
            return False
        if not _castable_to_integer(array.type) or _beyond_exact_floats(array):
            return False
        try:
            array.cast(target)
        except _CAST_ERRORS:
            return False
        return True
    try:
        pa.array([value], target)
    except BAD_VALUES:
        return False
    return True


def _message(values: Any, target: pa.DataType, what: str, cause: Exception | None = None) -> str:
    row = None
    with contextlib.suppress(TypeError):  # not iterable: the whole value is wrong
        row = first_bad_row(values, target)
    why = "" if cause is None else f" ({cause})"
    if row is None:
        return f"{what} must be a list of {target} values, got {_shown(values)}{why}"
    value = values[row] if not isinstance(values, pa.Array) else values[row].as_py()
    return f"{what}: row {row} is {_shown(value)}, expected {_expected(target)}{why}"


def _expected(target: pa.DataType) -> str:
    if pa.types.is_integer(target):
        return f"an integer ({target}; a whole number or a string of one)"
    return str(target)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
