"""Repast: a fast, Feast-compatible feature store."""

from __future__ import annotations

__all__: list[str] = []
