"""Feast's `feast.infra.offline_stores.contrib` import paths."""
