"""The registry: one schema-versioned JSON document in a local file or an S3 object, read as
immutable snapshots and written with compare-and-swap (see docs/internals.md)."""

from __future__ import annotations

from repast.registry.document import (
    KINDS,
    SCHEMA_VERSION,
    Kind,
    delete_project,
    delete_record,
    ensure_project,
    get_record,
    new_document,
    put_record,
    set_infra,
    update_meta,
)
from repast.registry.file_store import FileRegistryStore
from repast.registry.registry import (
    Record,
    Registry,
    RegistryRefresher,
    RegistrySnapshot,
    registry_from_config,
)
from repast.registry.s3_store import S3RegistryStore
from repast.registry.store import RegistryStore

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "FileRegistryStore",
    "Kind",
    "Record",
    "Registry",
    "RegistryRefresher",
    "RegistrySnapshot",
    "RegistryStore",
    "S3RegistryStore",
    "delete_project",
    "delete_record",
    "ensure_project",
    "get_record",
    "new_document",
    "put_record",
    "registry_from_config",
    "set_infra",
    "update_meta",
]
