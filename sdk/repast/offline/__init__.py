"""The offline store: point-in-time correct training sets from Parquet or Arrow sources."""

from __future__ import annotations

from repast.errors import (
    ColumnNotFoundError,
    EntityTimestampInferenceError,
    FeatureNameCollisionError,
    KeyTypeMismatchError,
    OfflineStoreError,
    SourceReadError,
    TimestampTypeError,
)
from repast.offline.join import infer_timestamp_column, point_in_time_join
from repast.offline.retrieval import RetrievalJob, RetrievalMetadata
from repast.offline.view import ViewJoin
from repast.offline.write import OfflineWriteError, SingleFileSourceError

__all__ = [
    "ColumnNotFoundError",
    "EntityTimestampInferenceError",
    "FeatureNameCollisionError",
    "KeyTypeMismatchError",
    "OfflineStoreError",
    "OfflineWriteError",
    "RetrievalJob",
    "RetrievalMetadata",
    "SingleFileSourceError",
    "SourceReadError",
    "TimestampTypeError",
    "ViewJoin",
    "infer_timestamp_column",
    "point_in_time_join",
]
