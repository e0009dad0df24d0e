"""Errors of the offline store and the point-in-time join.

They live here until `repast/errors.py` re-exports them; each says what was wrong and where
(the view, the column, the file).
"""

from __future__ import annotations

from repast._core import RepastError

__all__ = [
    "ColumnNotFoundError",
    "EntityTimestampInferenceError",
    "FeatureNameCollisionError",
    "KeyTypeMismatchError",
    "OfflineStoreError",
    "SourceReadError",
    "TimestampTypeError",
]


class OfflineStoreError(RepastError, ValueError):
    """Bad input to a historical retrieval: the message names the view, column or file."""


class EntityTimestampInferenceError(OfflineStoreError):
    """The entity frame has no `event_timestamp` column and not exactly one timestamp column."""


class ColumnNotFoundError(OfflineStoreError, KeyError):
    """A join key, timestamp or feature column is missing from the entity frame or a source."""

    def __str__(self) -> str:
        # KeyError would repr() the message.
        return str(self.args[0]) if self.args else ""


class KeyTypeMismatchError(OfflineStoreError, TypeError):
    """A join key is an integer on one side and a string (or binary) on the other."""


class TimestampTypeError(OfflineStoreError, TypeError):
    """A timestamp column is not a timestamp (or date) column, or is out of range."""


class FeatureNameCollisionError(OfflineStoreError):
    """Two requested features (or a feature and an entity column) get the same output name."""


class SourceReadError(OfflineStoreError):
    """A source file or directory is missing or unreadable."""
