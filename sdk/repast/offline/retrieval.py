"""`RetrievalJob`: the lazily computed result of a historical retrieval."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RetrievalJob", "RetrievalMetadata"]


@dataclass(frozen=True)
class RetrievalMetadata:
    """What a retrieval asked for: the feature references (`view:feature`), the entity frame's
    other columns, and the range of its timestamps (UTC, `None` for an empty frame)."""

    features: list[str]
    keys: list[str]
    min_event_timestamp: datetime | None
    max_event_timestamp: datetime | None

    @classmethod
    def from_entity(
        cls, entity: pa.Table, timestamp_column: str, features: Sequence[str]
    ) -> RetrievalMetadata:
        column = entity.column(timestamp_column)
        low: datetime | None = None
        high: datetime | None = None
        if len(column) > column.null_count:
            if not pa.types.is_timestamp(column.type):
                column = column.cast(pa.timestamp("us"))
            lo_hi = pc.min_max(column.cast(pa.timestamp("us", column.type.tz)))
            low, high = (_utc(lo_hi["min"].as_py()), _utc(lo_hi["max"].as_py()))
        return cls(
            features=list(features),
            keys=[c for c in entity.column_names if c != timestamp_column],
            min_event_timestamp=low,
            max_event_timestamp=high,
        )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class RetrievalJob:
    """A training frame, computed on first use and then kept.

    `to_arrow()` returns the Arrow table as the join produced it: entity columns unchanged, then
    the features in request order, each with its source's Arrow type (an int feature with nulls
    stays an int column). `to_df()` converts with pyarrow's defaults, which match what Feast
    returns: an int column with nulls becomes `float64`, timestamps keep their time zone.
    For pandas' nullable dtypes use `job.to_arrow().to_pandas(types_mapper=pd.ArrowDtype)`.
    """

    def __init__(
        self,
        compute: Callable[[], pa.Table],
        *,
        full_feature_names: bool = False,
        metadata: RetrievalMetadata | None = None,
    ) -> None:
        self._compute = compute
        self._table: pa.Table | None = None
        self._lock = threading.Lock()
        self._full_feature_names = full_feature_names
        self._metadata = metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def to_arrow(self) -> pa.Table:
        with self._lock:
            if self._table is None:
                self._table = self._compute()
            return self._table

    def to_df(self) -> pd.DataFrame:
        try:
            import pandas  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("install `repast[pandas]` to use RetrievalJob.to_df()") from exc
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the frame to one Parquet file; a reader never sees a half-written file."""
        target = Path(path)
        table = self.to_arrow()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
