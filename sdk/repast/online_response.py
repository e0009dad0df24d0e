"""`OnlineResponse`: what `get_online_features` returns, in Feast's shape.

Columns stay Arrow arrays (one per output name: join keys first, then features in request
order) until a caller asks for Python objects with `to_dict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from repast.online.stored_types import is_json, parsed_values, python_values
from repast.value_type import ValueType

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FIELD_STATUS", "NOT_FOUND", "OUTSIDE_MAX_AGE", "OnlineResponse", "PRESENT"]

# FieldStatus enum numbers (docs/feast-compatibility.md §4.3).
PRESENT = 1
NOT_FOUND = 3
OUTSIDE_MAX_AGE = 4
FIELD_STATUS = {0: "INVALID", 1: "PRESENT", 2: "NULL_VALUE", 3: "NOT_FOUND", 4: "OUTSIDE_MAX_AGE"}

_EPOCH = pa.scalar(0, pa.timestamp("us", tz="UTC"))
_ZONED = int(ValueType.ZONED_TIMESTAMP)
_TYPED = frozenset([_ZONED, int(ValueType.SCALAR_MAP)])


def zoned_struct(text: pa.Array) -> pa.Array:
    """Stored ZonedTimestamp text (`<isoformat>[<zone>]`) as Arrow: a struct of `timestamp`
    (the instant, `timestamp[us, UTC]`) and `zone` (Feast's zone name), which every writer
    takes back."""
    zone = pc.extract_regex(text, r"\[(?P<zone>[^\[]*)\]$").field("zone")
    stamp = pc.replace_substring_regex(text, pattern=r"\[[^\[]*\]$", replacement="")
    return pa.StructArray.from_arrays(
        [stamp.cast(pa.timestamp("us", tz="UTC")), zone],
        names=["timestamp", "zone"],
        mask=text.is_null(),
    )


class OnlineResponse:
    """Feature values per entity row: `to_dict()`, `to_df()`, `to_arrow()`.

    `statuses[i]` is an int8 array of FieldStatus numbers, or None when every value of
    column `i` is PRESENT (join keys); `event_timestamps[i]` is a `timestamp[us, UTC]` array,
    or None for the epoch (join keys). `value_types[i]` is the feature's Feast value type
    (None: take the Arrow values as they are): UUIDs and decimals, stored as text, come back
    from `to_dict` as `uuid.UUID` and `decimal.Decimal`, as Feast's SDK returns them.
    """

    def __init__(
        self,
        names: list[str],
        values: list[pa.Array],
        statuses: list[pa.Array | None],
        event_timestamps: list[pa.Array | None],
        value_types: list[int | None] | None = None,
    ) -> None:
        self.feature_names = names
        self.values = values
        self.statuses = statuses
        self.event_timestamps = event_timestamps
        self.value_types = value_types or [None] * len(names)

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    def __repr__(self) -> str:
        return f"OnlineResponse(rows={len(self)}, feature_names={self.feature_names!r})"

    def status_names(self, column: int) -> list[str]:
        """The statuses of one column as Feast's names (`PRESENT`, `NOT_FOUND`, ...)."""
        codes = self.statuses[column]
        if codes is None:
            return ["PRESENT"] * len(self)
        return [FIELD_STATUS[c] for c in codes.to_pylist()]

    def timestamps(self, column: int) -> pa.Array:
        """Event times of one column (`timestamp[us, UTC]`; the epoch where none)."""
        ts = self.event_timestamps[column]
        if ts is None:
            return pa.repeat(_EPOCH, len(self))
        return ts.fill_null(_EPOCH)

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """`{name: [values]}`; with event timestamps also `{name}__ts: [epoch seconds]`."""
        out: dict[str, list[Any]] = {}
        for i, name in enumerate(self.feature_names):
            out[name] = python_values(self.values[i], self.value_types[i])
            if include_event_timestamps:
                seconds = pc.divide(pc.cast(self.timestamps(i), pa.int64()), 1_000_000)
                out[f"{name}__ts"] = seconds.to_pylist()
        return out

    def to_arrow(self, include_event_timestamps: bool = False) -> pa.Table:
        columns: dict[str, pa.Array] = {}
        for i, name in enumerate(self.feature_names):
            values = self.values[i]
            if self.value_types[i] == _ZONED and pa.types.is_string(values.type):
                values = zoned_struct(values)
            columns[name] = values
            if include_event_timestamps:
                columns[f"{name}__ts"] = self.timestamps(i)
        return pa.table(columns)

    def to_df(self, include_event_timestamps: bool = False) -> pd.DataFrame:
        table = self.to_arrow(include_event_timestamps)
        parsed = {
            name: parsed_values(column.combine_chunks())
            for name, column in zip(table.column_names, table.columns, strict=True)
            if is_json(column.type)
        }
        for i, name in enumerate(self.feature_names):
            if self.value_types[i] in _TYPED:
                parsed[name] = python_values(self.values[i], self.value_types[i])
        # JSON columns become Python objects (dicts, lists), as in to_dict; a ScalarMap keeps
        # its typed keys, a ZonedTimestamp is a datetime in its zone.
        df: pd.DataFrame = table.drop_columns(list(parsed)).to_pandas()
        for name, values in parsed.items():
            df.insert(table.column_names.index(name), name, values)
        return df
