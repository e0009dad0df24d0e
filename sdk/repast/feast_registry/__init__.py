"""Reading Feast's protobuf registry (`repast import-feast-registry`), without Feast."""

from __future__ import annotations

from repast.feast_registry.convert import Imported, RegistryFormatError, Skipped, read_registry
from repast.feast_registry.importer import DEFAULT_SOURCE, prepare, record_intervals

__all__ = [
    "DEFAULT_SOURCE",
    "Imported",
    "RegistryFormatError",
    "Skipped",
    "prepare",
    "read_registry",
    "record_intervals",
]
