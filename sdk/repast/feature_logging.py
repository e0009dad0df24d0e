"""`LoggingConfig` and logging destinations (`feast.feature_logging`).

A FeatureService may declare where the features it serves should be logged. Repast accepts and
stores the declaration (`FeatureService.logging_config`, in the registry) so a Feast repo applies
unchanged, but it has no logging pipeline: served features are not written anywhere
(docs/migrating-from-feast.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from repast._spec import fail

__all__ = ["FileLoggingDestination", "LoggingConfig", "LoggingDestination", "destination_from_dict"]


class LoggingDestination:
    """Where logged features would go; subclasses set `kind` and their fields."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoggingDestination):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.kind)


class FileLoggingDestination(LoggingDestination):
    """Parquet files under `path` (Feast's file offline store destination)."""

    kind = "file"

    def __init__(
        self,
        *,
        path: str,
        s3_endpoint_override: str = "",
        partition_by: list[str] | None = None,
    ) -> None:
        if not isinstance(path, str) or not path:
            fail("FileLoggingDestination", f"path must be a non-empty string, got {path!r}")
        self.path = path
        self.s3_endpoint_override = s3_endpoint_override or ""
        self.partition_by = list(partition_by or [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "path": self.path,
            "s3_endpoint_override": self.s3_endpoint_override,
            "partition_by": list(self.partition_by),
        }


def destination_from_dict(d: dict[str, Any]) -> LoggingDestination:
    # A destination with a path and no type is a file one (registries written before types).
    if d.get("type", FileLoggingDestination.kind if "path" in d else None) == "file":
        return FileLoggingDestination(
            path=d["path"],
            s3_endpoint_override=d.get("s3_endpoint_override", ""),
            partition_by=d.get("partition_by"),
        )
    fail("LoggingConfig", f"unknown logging destination type {d.get('type')!r}")


class LoggingConfig:
    """`destination` for the served features, of which a fraction `sample_rate` is logged."""

    def __init__(self, destination: LoggingDestination, sample_rate: float = 1.0) -> None:
        if not isinstance(destination, LoggingDestination):
            fail("LoggingConfig", f"destination must be a logging destination, got {destination!r}")
        rate_ok = isinstance(sample_rate, int | float) and not isinstance(sample_rate, bool)
        if not rate_ok or not 0.0 <= float(sample_rate) <= 1.0:
            fail("LoggingConfig", f"sample_rate must be a number in [0, 1], got {sample_rate!r}")
        self.destination = destination
        self.sample_rate = float(sample_rate)

    def to_dict(self) -> dict[str, Any]:
        return {"destination": self.destination.to_dict(), "sample_rate": self.sample_rate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoggingConfig:
        return cls(destination_from_dict(d["destination"]), d.get("sample_rate", 1.0))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoggingConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.sample_rate)

    def __repr__(self) -> str:
        return f"LoggingConfig(destination={self.destination.to_dict()!r})"
