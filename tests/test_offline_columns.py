"""Column helpers of the point-in-time join: the fixed-width gather against Arrow's own take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from repast.offline.columns import gather

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    "values",
    [
        pa.array([1.5, None, 3.5, 4.5, None], type=pa.float32()),
        pa.array([1, 2, None, 4, 5], type=pa.int16()),
        pa.array([True, None, False, True, False]),
        pa.array([T0, None, T0 + H, T0, T0], type=pa.timestamp("us", tz="UTC")),
        pa.array([1, 2, 3, 4, 5], type=pa.uint64()),
        pa.array([1, 2, 3, 4, 5, 6, None], type=pa.int64()).slice(1),
    ],
    ids=lambda a: str(a.type),
)
@pytest.mark.parametrize("sliced", [False, True])
def test_fixed_width_gather_matches_arrow_take(values: pa.Array, sliced: bool) -> None:
    indices = pa.array([4, None, 0, 2, 2, None, 1, 3], type=pa.uint64())
    if sliced:
        indices = indices.slice(1)
    (got,) = gather([(pa.table({"v": values}), "v", indices)])
    assert got.equals(values.take(indices))
    assert got.null_count == values.take(indices).null_count
