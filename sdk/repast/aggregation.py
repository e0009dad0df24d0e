"""`Aggregation` (`feast.aggregation`): a windowed aggregate a StreamFeatureView declares."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from repast._spec import check_duration, check_str, duration, fail, seconds, where

__all__ = ["AGGREGATION_FUNCTIONS", "Aggregation"]

AGGREGATION_FUNCTIONS = ("sum", "max", "min", "count", "mean", "count_distinct")


class Aggregation:
    """`function` over `column` in windows of `time_window`, sliding by `slide_interval`.

    Positional arguments are allowed, as in Feast; `slide_interval` defaults to
    `time_window` (tumbling windows).

    >>> Aggregation(column="trips", function="sum", time_window=timedelta(hours=1)).resolved_name()
    'sum_trips'
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
        if time_window is not None:
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
            f"time_window={self.time_window!r}, name={self.name!r})"
        )


def check_aggregations(at: str, value: object) -> list[Aggregation]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(a, Aggregation) for a in value):
        fail(at, f"aggregations must be a list of Aggregation, got {value!r}")
    return list(value)
