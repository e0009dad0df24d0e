"""The seam between the registry and where its bytes live (a local file, an S3 object)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["RegistryStore"]


@runtime_checkable
class RegistryStore(Protocol):
    """Whole-document storage with compare-and-swap writes.

    The version token is opaque to callers (a content hash for files, the ETag for S3); it only
    has to change whenever the stored bytes change.
    """

    def read(self) -> tuple[bytes, str] | None:
        """The stored bytes and their version token, or None when nothing is stored yet."""
        ...

    def write(self, data: bytes, expected: str | None) -> str:
        """Store `data` if the stored version is still `expected` (None: nothing stored yet).

        Returns the new version token; raises `RegistryConflictError` when another writer
        changed the stored version first. A reader never sees a partly written document.
        """
        ...

    def delete(self) -> None:
        """Remove the stored document; nothing happens when it does not exist."""
        ...

    def describe(self) -> str:
        """The location for messages: a path or `s3://bucket/key`."""
        ...
