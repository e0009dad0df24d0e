"""`frame`: pushed `{column: [values]}` rows become Arrow columns typed by their views."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from repast.online import frame

_ODD_VALUES: list[list[Any]] = [
    [1, 2.5],
    [1.5, None],
    [True, 0],
    ["1", 2],
    [None, None],
    [2**53 + 1, 1],
    [2**63, 1],
    [1e300, -0.0],
    [1, "a"],
    [[1], 2],
]


@pytest.mark.parametrize("odd", _ODD_VALUES, ids=repr)
@pytest.mark.parametrize("rows", [2, 200])  # grouped, and above _GROUP_ROWS (per column)
def test_pushed_numeric_columns_built_per_type_equal_those_built_per_column(
    odd: list[Any], rows: int
) -> None:
    # `frame` builds the numeric features as one pa.array per Arrow type and slices it; each
    # slice must be what the column's own _array call gives, and any failure must send the
    # whole frame back to the per-column path (whose errors are the 400s clients see).
    types = {"a": pa.float32(), "b": pa.float32(), "c": pa.int64(), "d": pa.int64()}
    types |= {"e": pa.float64(), "f": pa.float64(), "g": pa.int32(), "h": pa.int32()}
    for odd_column in types:
        columns = {name: [i % 7 for i in range(rows)] for name in types}
        columns[odd_column] = (odd * rows)[:rows]
        grouped = frame._numeric_groups(columns, rows, types, frozenset())
        if rows > frame._GROUP_ROWS:
            assert grouped is None
            continue
        expected: dict[str, Any] = {}
        failed = False
        for name, values in columns.items():
            try:
                expected[name] = frame._typed(values, types[name])
            except frame._BAD_VALUES:
                failed = True
        if failed:
            assert grouped is None, (odd_column, odd)
        else:
            assert grouped is not None
            assert set(grouped) == set(expected)
            for name, array in expected.items():
                assert grouped[name].type == array.type
                assert grouped[name].equals(array), (name, grouped[name], array)
    # A timestamp column is never grouped, whatever its name's numeric type.
    one = {"a": [1.0] * 2, "b": [2.0] * 2}
    grouped = frame._numeric_groups(one, 2, types, frozenset({"a"}))
    assert grouped is not None
    assert set(grouped) == {"b"}
