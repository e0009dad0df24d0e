"""`exact_array` / `exact_cast`: request values become Arrow arrays of their declared type
exactly, or a typed error names the column, the first bad row and the expected type."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repast.conversion import exact_array, exact_cast, first_bad_row
from repast.errors import InvalidValueError, RepastError


@pytest.mark.parametrize(
    ("values", "target", "expected"),
    [
        ([1001, -3], pa.int64(), [1001, -3]),
        ([1001.0, 2.0], pa.int64(), [1001, 2]),
        (["1001", "-7"], pa.int32(), [1001, -7]),
        ([None, 5], pa.int64(), [None, 5]),
        ([], pa.int64(), []),
        (np.array([3, 4]), pa.int32(), [3, 4]),
        (pa.array([1.0, None]), pa.int64(), [1, None]),
        ([0.5, 1], pa.float32(), [0.5, 1.0]),
        (["a"], pa.string(), ["a"]),
    ],
)
def test_values_that_spell_the_type_are_taken(
    values: Any, target: pa.DataType, expected: Any
) -> None:
    array = exact_array(values, target, "column 'c'")
    assert array.type == target
    assert array.to_pylist() == expected


@pytest.mark.parametrize(
    ("values", "target", "row"),
    [
        ([1001.7], pa.int64(), 0),  # issue 13: was read as 1001
        ([1, 2, 2.5], pa.int32(), 2),
        ([True], pa.int64(), 0),
        ([1000.0, True], pa.int64(), 1),  # inferred as doubles [1000.0, 1.0]
        ([1, "x"], pa.int64(), 1),
        (["1.5"], pa.int64(), 0),
        ([math.nan], pa.int64(), 0),
        ([math.inf], pa.int64(), 0),
        ([2**63], pa.int64(), 0),
        ([1.0, -9.223372036854776e18], pa.int64(), 1),  # orjson's reading of -(2**63) - 1
        ([2.0**53 + 2], pa.int64(), 0),
        ([2**31], pa.int32(), 0),
        ([[1]], pa.int64(), 0),
        ([{"a": 1}], pa.int64(), 0),
        ([1, "x"], pa.float64(), 1),
        ([1], pa.string(), 0),
    ],
)
def test_values_that_do_not_are_refused_naming_the_row(
    values: list[Any], target: pa.DataType, row: int
) -> None:
    with pytest.raises(InvalidValueError) as refused:
        exact_array(values, target, "request data 'val_to_add'")
    message = str(refused.value)
    assert message.startswith(f"request data 'val_to_add': row {row} is ")
    assert str(target) in message


def test_the_error_class_is_the_callers() -> None:
    class Mine(RepastError):
        pass

    with pytest.raises(Mine):
        exact_array([1.5], pa.int64(), "x", Mine)
    with pytest.raises(Mine, match="row 0"):
        exact_cast(pa.array([True]), pa.int64(), "x", Mine)


def test_a_value_that_is_no_list_is_refused_whole() -> None:
    with pytest.raises(InvalidValueError, match="must be a list of int64 values"):
        exact_array(5, pa.int64(), "entity column 'driver_id'")


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats()), max_size=8))
def test_integers_are_exactly_the_whole_numbers_given(values: list[Any]) -> None:
    whole = all(
        v is None or isinstance(v, int) or (math.isfinite(v) and v.is_integer() and abs(v) <= 2**53)
        for v in values
    )
    try:
        got = exact_array(values, pa.int64(), "c").to_pylist()
    except InvalidValueError:
        assert not whole or first_bad_row(values, pa.int64()) is None
        return
    assert whole
    assert got == [None if v is None else int(v) for v in values]
