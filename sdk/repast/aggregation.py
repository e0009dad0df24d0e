"""`Aggregation` (`feast.aggregation`): a windowed aggregate a StreamFeatureView or a
BatchFeatureView declares; `AggregatingView`, what those two views share about them.

What each function computes, over which events, and in which tiles: docs/aggregations.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pyarrow as pa

from repast._spec import check_duration, check_str, duration, fail, seconds, where
from repast.entity import Entity
from repast.feature_view import FeatureView
from repast.field import Field
from repast.projection import FeatureViewProjection
from repast.types import (
    Bytes,
    FeastType,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
)

__all__ = [
    "AGGREGATION_FUNCTIONS",
    "DEFAULT_TILING_HOP_SIZE",
    "Aggregation",
    "AggregatingView",
    "aggregation_fields",
    "tile_size",
]

# Feast 0.67's names and aliases (its tiling engine's `avg`, `std`, `var`, ...); `core-rs`
# `aggregate::Function::parse` accepts the same set.
AGGREGATION_FUNCTIONS = (
    "sum",
    "count",
    "mean",
    "avg",
    "min",
    "max",
    "last",
    "var",
    "variance",
    "stddev",
    "std",
    "count_distinct",
)

# Feast's default `tiling_hop_size`.
DEFAULT_TILING_HOP_SIZE = timedelta(minutes=5)
# The tile of views without tiling: exact windows for whole-second timestamps.
UNTILED = timedelta(seconds=1)

_INTEGERS = (Int32, Int64)
_NUMBERS = (Int32, Int64, Float32, Float64)


class Aggregation:
    """`function` over `column` in windows of `time_window`, sliding by `slide_interval`.

    Positional arguments are allowed, as in Feast; `slide_interval` defaults to
    `time_window` (tumbling windows).

    >>> a = Aggregation(column="trips", function="sum", time_window=timedelta(hours=1))
    >>> a.resolved_name(a.time_window)
    'sum_trips_3600s'
    """

    def __init__(
        self,
        column: str = "",
        function: str = "",
        time_window: timedelta | None = None,
        slide_interval: timedelta | None = None,
        name: str | None = None,
    ) -> None:
        at = where("Aggregation", name or (f"{function}_{column}" if function and column else ""))
        self.column: str = check_str(at, "column", column)
        self.function: str = check_str(at, "function", function)
        if function not in AGGREGATION_FUNCTIONS:
            fail(
                at, f"function must be one of {', '.join(AGGREGATION_FUNCTIONS)}, got {function!r}"
            )
        self.time_window = check_duration(at, "time_window", time_window)
        self.slide_interval = (
            check_duration(at, "slide_interval", slide_interval) or self.time_window
        )
        self.name: str | None = check_str(at, "name", name or None, optional=True)

    def resolved_name(self, time_window: timedelta | None = None) -> str:
        """The output feature name: `name`, else `<function>_<column>` (+ `_<secs>s` if given)."""
        if self.name:
            return self.name
        base = f"{self.function}_{self.column}"
        if time_window is not None and time_window > timedelta(0):
            base += f"_{int(time_window.total_seconds())}s"
        return base

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "function": self.function,
            "time_window": seconds(self.time_window),
            "slide_interval": seconds(self.slide_interval),
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregation:
        return cls(
            column=d.get("column", ""),
            function=d.get("function", ""),
            time_window=duration(d.get("time_window")),
            slide_interval=duration(d.get("slide_interval")),
            name=d.get("name"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.column, self.function, self.time_window, self.name))

    def __repr__(self) -> str:
        return (
            f"Aggregation(column={self.column!r}, function={self.function!r}, "
            f"time_window={self.time_window!r}, slide_interval={self.slide_interval!r}, "
            f"name={self.name!r})"
        )


def check_aggregations(at: str, value: object) -> list[Aggregation]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(a, Aggregation) for a in value):
        fail(at, f"aggregations must be a list of Aggregation, got {value!r}")
    return list(value)


def tile_size(enable_tiling: bool, tiling_hop_size: timedelta | None) -> timedelta:
    """The tile of a view's windows: `tiling_hop_size` (default 5 minutes) with tiling on,
    else 1 second."""
    if enable_tiling:
        return tiling_hop_size or DEFAULT_TILING_HOP_SIZE
    return UNTILED


def _output_type(at: str, agg: Aggregation, dtype: FeastType) -> FeastType:
    function = agg.function
    if function == "count":
        return Int64
    if function == "count_distinct":
        if dtype not in (*_INTEGERS, String, Bytes):
            why = "count_distinct needs an integer, string or bytes column"
            fail(at, f"{why}; {agg.column!r} is {dtype}")
        return Int64
    if function == "last":
        return dtype
    if dtype not in _NUMBERS:
        fail(at, f"{function} needs an integer or float column; {agg.column!r} is {dtype}")
    if function == "sum":
        return Int64 if dtype in _INTEGERS else Float64
    if function in ("min", "max"):
        return dtype
    return Float64  # mean, avg, var, variance, stddev, std


def aggregation_fields(
    at: str,
    aggregations: list[Aggregation],
    inputs: list[Field],
    tile: timedelta,
    tiling: bool,
) -> list[Field]:
    """The features an aggregated view serves, one per aggregation, typed from its input column;
    refuses what docs/aggregations.md does not define (no window, unknown column, a column type
    the function cannot take, a window not longer than the tile with tiling on)."""
    types = {f.name: f.dtype for f in inputs}
    fields: list[Field] = []
    for agg in aggregations:
        window = agg.time_window
        where_ = f"{at}: aggregation {agg.resolved_name(window)!r}"
        if window is None or window <= timedelta(0):
            fail(where_, "time_window is required (a positive timedelta)")
        if tiling and window <= tile:
            fail(where_, f"time_window ({window}) must be longer than tiling_hop_size ({tile})")
        dtype = types.get(agg.column)
        if dtype is None:
            known = ", ".join(map(repr, types)) or "none"
            fail(
                where_,
                f"column {agg.column!r} must be declared in the view's schema so its type is "
                f"known (schema columns: {known})",
            )
        fields.append(Field(name=agg.resolved_name(window), dtype=_output_type(where_, agg, dtype)))
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        fail(at, f"aggregations {', '.join(map(repr, dupes))} have the same name; set name=")
    return fields


class AggregatingView(FeatureView):
    """What the views that may declare aggregations (StreamFeatureView, BatchFeatureView)
    share: the declared schema becomes the aggregations' inputs, and the features are the
    aggregations."""

    aggregations: list[Aggregation]
    aggregation_inputs: list[Field]

    @property
    def tile(self) -> timedelta:
        """The tile of the aggregations' windows (docs/aggregations.md)."""
        raise NotImplementedError

    def _declare_aggregations(self, at: str, aggregations: object, tiling: bool) -> None:
        """Checks `aggregations`; with any, the declared features become their inputs and the
        features the aggregations, typed from their input columns (join keys included)."""
        self.aggregations = check_aggregations(at, aggregations)
        self.aggregation_inputs = []
        if not self.aggregations:
            return
        self.aggregation_inputs = list(self.features)
        self.features = aggregation_fields(
            at,
            self.aggregations,
            [*self.entity_columns, *self.aggregation_inputs],
            self.tile,
            tiling,
        )
        self.projection = FeatureViewProjection.from_definition(self)

    def infer_schema(
        self, source_schema: pa.Schema, entities_by_name: Mapping[str, Entity]
    ) -> None:
        super().infer_schema(source_schema, entities_by_name)
        # An entity given by name left its join key among the inputs until now.
        keys = set(self.join_keys)
        self.aggregation_inputs = [f for f in self.aggregation_inputs if f.name not in keys]

    def input_types(self) -> dict[str, Any]:
        """Each input column's declared type, join keys included."""
        return {f.name: f.dtype for f in [*self.entity_columns, *self.aggregation_inputs]}
