"""Every error Repast raises; all derive from `RepastError` (defined in the Rust core).

Each message says what was wrong and where (file and key, view, column, row). The modules that
raise them import them from here; `repast.offline` and the operation modules re-export their own.
"""

from __future__ import annotations

from repast._core import DecodeError, InvalidValueError, RepastError, UnsupportedTypeError

__all__ = [
    "ColumnNotFoundError",
    "ConfigError",
    "DataSourceNotFoundError",
    "DecodeError",
    "EntityError",
    "EntityNotFoundError",
    "EntityTimestampInferenceError",
    "FeatureNameCollisionError",
    "FeatureNotFoundError",
    "FeatureServiceNotFoundError",
    "FeatureViewNotFoundError",
    "InvalidValueError",
    "KeyTypeMismatchError",
    "MaterializationCancelled",
    "MaterializationError",
    "MissingColumnError",
    "MissingExtraError",
    "NotFoundError",
    "OfflineStoreError",
    "OfflineWriteError",
    "OnlineStoreError",
    "RegistryConflictError",
    "RegistryError",
    "RepastError",
    "RepoValidationError",
    "RequestDataNotFoundError",
    "RowsError",
    "SingleFileSourceError",
    "SourceReadError",
    "TimestampTypeError",
    "UnsupportedTypeError",
]


class ConfigError(RepastError, ValueError):
    """`feature_store.yaml` is missing, unreadable, or has an unknown key or a bad value."""


class MissingExtraError(RepastError, ImportError):
    """An optional part is used without its extra installed (e.g. `repast[spark]`)."""


class RegistryError(RepastError):
    """The registry could not be read or written."""


class RegistryConflictError(RegistryError):
    """Another writer committed first and the retries ran out."""


class RepoValidationError(RepastError, ValueError):
    """A definition in the feature repo is invalid; nothing was written."""


class NotFoundError(RepastError, LookupError):
    """A named object does not exist in the project."""


class EntityNotFoundError(NotFoundError):
    pass


class DataSourceNotFoundError(NotFoundError):
    pass


class FeatureViewNotFoundError(NotFoundError):
    pass


class FeatureServiceNotFoundError(NotFoundError):
    pass


class FeatureNotFoundError(RepastError, LookupError):
    """A requested feature does not exist in its view."""


# --- online reads and writes ------------------------------------------------------------------


class EntityError(RepastError, ValueError):
    """The entity rows lack a join key column, or hold values of the wrong type."""


class RequestDataNotFoundError(EntityError):
    """An on-demand feature view needs a request-data column the entity rows lack."""


class MissingColumnError(RepastError, ValueError):
    """The rows to write lack a column the view needs."""


class RowsError(RepastError, ValueError):
    """The rows to write do not form a table (ragged columns, values of mixed types)."""


class OnlineStoreError(RepastError):
    """The online store could not be read or written (connection lost, bad reply)."""


class MaterializationError(RepastError):
    """Materializing a view failed; nothing was recorded for that view's range."""


class MaterializationCancelled(MaterializationError):
    """The job was cancelled (the server is shutting down): the rows written so far stay (they
    are newer-event-time-wins upserts), the view's range is not recorded as materialized, so
    the next run redoes it."""


# --- the offline store and the point-in-time join -------------------------------------------


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


class OfflineWriteError(OfflineStoreError):
    """Rows cannot be appended to a view's batch source (columns, types or the source itself);
    nothing was written."""


class SingleFileSourceError(OfflineWriteError):
    """The batch source is one Parquet file; appends need a directory."""
