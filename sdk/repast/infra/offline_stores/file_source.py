"""Feast's `feast.infra.offline_stores.file_source` path: `FileSource`, `FileLoggingDestination`."""

from __future__ import annotations

from repast.data_source import FileSource
from repast.feature_logging import FileLoggingDestination

__all__ = ["FileLoggingDestination", "FileSource"]
