"""Repast's feature server (Starlette + uvicorn); the HTTP API lands with the server issue."""

from __future__ import annotations

__all__: list[str] = []
