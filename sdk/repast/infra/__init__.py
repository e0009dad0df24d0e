"""Feast's `feast.infra` import paths, so a Feast repo's imports resolve under `repast`."""
