"""Every error Repast raises; all derive from `RepastError` (defined in the Rust core)."""

from __future__ import annotations

from repast._core import DecodeError, InvalidValueError, RepastError, UnsupportedTypeError

__all__ = [
    "DecodeError",
    "InvalidValueError",
    "UnsupportedTypeError",
    "ConfigError",
    "RegistryConflictError",
    "RegistryError",
    "RepastError",
    "RepoValidationError",
    "NotFoundError",
    "EntityNotFoundError",
    "DataSourceNotFoundError",
    "FeatureViewNotFoundError",
    "FeatureServiceNotFoundError",
    "ProjectNotFoundError",
]


class ConfigError(RepastError, ValueError):
    """`feature_store.yaml` is missing, unreadable, or has an unknown key or a bad value."""


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


class ProjectNotFoundError(NotFoundError):
    pass
