"""`SparkSource` under its own name (it lives in `repast.data_source` with the other sources)."""

from __future__ import annotations

from repast.data_source import SparkSource

__all__ = ["SparkSource"]
