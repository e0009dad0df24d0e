"""`ViewJoin`: what the point-in-time join needs to know of one feature view (or projection)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from repast.errors import OfflineStoreError

__all__ = ["ViewJoin"]


@dataclass(frozen=True)
class ViewJoin:
    """One feature view (or projection) of a point-in-time join.

    `source` is an in-memory `pyarrow.Table` or a Parquet file or directory (partitioned or
    not). Column names in `entity_join_keys` (second item), `timestamp_field`,
    `created_timestamp_column` and `features` (first item) are the names after `field_mapping`
    (`{source column: feature store name}`); the raw source column names work as well for the
    timestamp columns, as in Feast's SQL stores.

    >>> import pyarrow as pa
    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> source = pa.table({"driver_id": [1, 1], "event_timestamp": [t, t + timedelta(hours=1)],
    ...                    "trips": [10, 20]})
    >>> view = ViewJoin(name="driver_stats", source=source,
    ...                 entity_join_keys=[("driver_id", "driver_id")],
    ...                 timestamp_field="event_timestamp", features=[("trips", "trips")],
    ...                 ttl=timedelta(hours=2))
    >>> entity = pa.table({"driver_id": [1, 2], "event_timestamp": [t + timedelta(minutes=90)] * 2})
    >>> point_in_time_join(entity, "event_timestamp", [view]).column("trips").to_pylist()
    [20, None]
    """

    name: str
    source: Any  # pa.Table | str | os.PathLike[str]
    entity_join_keys: Sequence[tuple[str, str]]
    timestamp_field: str
    features: Sequence[tuple[str, str]]
    created_timestamp_column: str | None = None
    field_mapping: Mapping[str, str] = field(default_factory=dict)
    ttl: timedelta | None = None

    def __post_init__(self) -> None:
        # Freeze the sequences so the spec cannot change under a running job.
        object.__setattr__(self, "entity_join_keys", tuple(map(tuple, self.entity_join_keys)))
        object.__setattr__(self, "features", tuple(map(tuple, self.features)))
        object.__setattr__(self, "field_mapping", dict(self.field_mapping))
        if self.ttl is not None and self.ttl < timedelta(0):
            raise OfflineStoreError(f"feature view '{self.name}': ttl must not be negative")

    @property
    def ttl_ns(self) -> int:
        if self.ttl is None:
            return 0
        return (self.ttl // timedelta(microseconds=1)) * 1_000

    def describe_source(self) -> str:
        if isinstance(self.source, (str, os.PathLike)):
            return f"source '{os.fspath(self.source)}' of feature view '{self.name}'"
        return f"in-memory source of feature view '{self.name}'"
