"""Feast's `...contrib.spark_offline_store.spark_source` path: `SparkSource`."""

from __future__ import annotations

from repast.spark_source import SparkSource

__all__ = ["SparkSource"]
