"""`FeatureService` (`feast.feature_service`): a named set of features a model consumes.

It stores projections, not views: which view, which of its features, under which alias
and join key map. `features` accepts views, `view[["a", "b"]]` selections, ODFVs and
`"view:feature"` strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repast._spec import Spec, check_bool, check_name, check_str, check_tags, fail, where
from repast.feature_logging import LoggingConfig
from repast.field import Field
from repast.projection import BaseFeatureView, FeatureViewProjection, resolve_projections
from repast.types import Invalid

__all__ = ["FeatureService"]


class FeatureService(Spec):
    """`feature_view_projections` holds one projection per view (by name or alias)."""

    def __init__(
        self,
        *,
        name: str,
        features: list[BaseFeatureView | FeatureViewProjection | str],
        tags: dict[str, str] | None = None,
        description: str = "",
        owner: str = "",
        logging_config: LoggingConfig | dict[str, Any] | None = None,
        precompute_online: bool = False,
    ) -> None:
        self.name = check_name("FeatureService", name)
        at = where("FeatureService", name)
        if not isinstance(features, list | tuple):
            fail(at, f"features must be a list of views or projections, got {features!r}")
        self.feature_view_projections: list[FeatureViewProjection] = []
        by_name: dict[str, FeatureViewProjection] = {}
        for item in features:
            if isinstance(item, BaseFeatureView):
                projection = item.projection.copy()
            elif isinstance(item, FeatureViewProjection):
                projection = item.copy()
            elif isinstance(item, str):
                self._add_reference(at, item, by_name)
                continue
            else:
                fail(
                    at,
                    f"features: {item!r} is not a view, a projection or a 'view:feature' string",
                )
            if projection.name_to_use() in by_name:
                fail(
                    at, f"feature view {projection.name_to_use()!r} is listed twice; use with_name"
                )
            by_name[projection.name_to_use()] = projection
            self.feature_view_projections.append(projection)
        self.tags = check_tags(at, tags)
        self.description: str = check_str(at, "description", description)
        self.owner: str = check_str(at, "owner", owner)
        if isinstance(logging_config, Mapping):
            logging_config = LoggingConfig.from_dict(dict(logging_config))
        if logging_config is not None and not isinstance(logging_config, LoggingConfig):
            fail(at, f"logging_config must be a LoggingConfig, got {logging_config!r}")
        # Stored (registry) but not acted on: Repast has no feature logging pipeline.
        self.logging_config: LoggingConfig | None = logging_config
        self.precompute_online = check_bool(at, "precompute_online", precompute_online)

    def _add_reference(self, at: str, ref: str, by_name: dict[str, FeatureViewProjection]) -> None:
        view, _, feature = ref.partition(":")
        if not view or (":" in ref and not feature):
            fail(at, f"feature reference {ref!r} must look like 'view:feature' or 'view'")
        projection = by_name.get(view)
        if projection is None:
            projection = FeatureViewProjection(view)
            by_name[view] = projection
            self.feature_view_projections.append(projection)
        elif not feature or not projection.features:
            fail(at, f"feature view {view!r} is listed twice")
        if feature:
            if any(f.name == feature for f in projection.features):
                fail(at, f"feature {ref!r} is listed twice")
            projection.features.append(Field(name=feature, dtype=Invalid))

    def infer_features(self, views_by_name: Mapping[str, BaseFeatureView]) -> None:
        """Resolve projections against the views (apply calls it, after view inference).

        An empty projection becomes all of the view's features; features known only by
        name (from `view[[...]]` before inference, or strings) get the view's types.
        """
        at = where("FeatureService", self.name)
        resolve_projections(at, self.feature_view_projections, views_by_name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": [p.to_dict() for p in self.feature_view_projections],
            "tags": dict(sorted(self.tags.items())),
            "description": self.description,
            "owner": self.owner,
            "logging_config": None
            if self.logging_config is None
            else self.logging_config.to_dict(),
            "precompute_online": self.precompute_online,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureService:
        return cls(
            name=d["name"],
            features=[FeatureViewProjection.from_dict(p) for p in d.get("features", [])],
            tags=d.get("tags"),
            description=d.get("description", ""),
            owner=d.get("owner", ""),
            logging_config=d.get("logging_config"),
            precompute_online=d.get("precompute_online", False),
        )

    def __repr__(self) -> str:
        refs = [
            f"{p.name_to_use()}:{','.join(f.name for f in p.features) or '*'}"
            for p in self.feature_view_projections
        ]
        return f"FeatureService(name={self.name!r}, features={refs!r})"
