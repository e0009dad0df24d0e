"""`FeatureViewProjection` and `BaseFeatureView`, the projection helpers every view kind shares.

A projection is how a feature service or an ODFV uses a view: which of its features, under
which name (`with_name`), joined on which entity-dataframe columns (`with_join_key_map`).
An empty `features` list means "all of the view's features" (a view whose schema is only
inferred at apply time has none yet); `FeatureService.infer_features` resolves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

from repast._spec import Spec, check_tags, fail, known, where
from repast.field import Field
from repast.types import Invalid

__all__ = ["BaseFeatureView", "FeatureViewProjection"]


class FeatureViewProjection:
    """A view as used elsewhere: `name`, optional `name_alias`, features and join key map."""

    def __init__(
        self,
        name: str,
        *,
        name_alias: str | None = None,
        features: list[Field] | None = None,
        join_key_map: dict[str, str] | None = None,
        view_type: str = "",
    ) -> None:
        if not isinstance(name, str) or not name:
            fail("FeatureViewProjection", f"name must be a non-empty string, got {name!r}")
        self.name = name
        at = where("FeatureViewProjection", name)
        if name_alias is not None and (not isinstance(name_alias, str) or not name_alias):
            fail(at, f"name_alias must be a non-empty string, got {name_alias!r}")
        self.name_alias = name_alias
        self.features: list[Field] = list(features or [])
        self.join_key_map = check_tags(at, join_key_map, "join_key_map")
        self.view_type = view_type

    def name_to_use(self) -> str:
        """The name features are reported under: the alias when there is one."""
        return self.name_alias or self.name

    @classmethod
    def from_definition(cls, view: BaseFeatureView) -> FeatureViewProjection:
        return cls(view.name, features=list(view.features), view_type=view.view_type)

    def copy(self) -> FeatureViewProjection:
        return FeatureViewProjection(
            self.name,
            name_alias=self.name_alias,
            features=list(self.features),
            join_key_map=dict(self.join_key_map),
            view_type=self.view_type,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_alias": self.name_alias,
            "features": [f.to_dict() for f in self.features],
            "join_key_map": dict(sorted(self.join_key_map.items())),
            "view_type": self.view_type,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureViewProjection:
        return cls(
            d["name"],
            name_alias=d.get("name_alias"),
            features=[Field.from_dict(f) for f in d.get("features", [])],
            join_key_map=d.get("join_key_map"),
            view_type=d.get("view_type", ""),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureViewProjection):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.name_alias))

    def __repr__(self) -> str:
        alias = f", name_alias={self.name_alias!r}" if self.name_alias else ""
        jkm = f", join_key_map={self.join_key_map!r}" if self.join_key_map else ""
        features = [f.name for f in self.features]
        return f"FeatureViewProjection(name={self.name!r}{alias}, features={features!r}{jkm})"


def resolve_projection(at: str, projection: FeatureViewProjection, view: BaseFeatureView) -> None:
    """Give `projection` the view's fields: all of them when empty, else those it names."""
    projection.view_type = projection.view_type or view.view_type
    if not projection.features:
        projection.features = list(view.features)
        return
    by_name = {f.name: f for f in view.features}
    resolved = []
    for f in projection.features:
        if f.name not in by_name:
            hint = known(f.name, list(by_name))
            fail(at, f"view {projection.name!r} has no feature {f.name!r}{hint}")
        resolved.append(by_name[f.name])
    projection.features = resolved


def resolve_projections(
    at: str, projections: Iterable[FeatureViewProjection], views: Mapping[str, BaseFeatureView]
) -> None:
    for projection in projections:
        view = views.get(projection.name)
        if view is None:
            hint = known(projection.name, list(views))
            fail(at, f"feature view {projection.name!r} is not defined{hint}")
        resolve_projection(at, projection, view)


class BaseFeatureView(Spec):
    """What FeatureView, StreamFeatureView and OnDemandFeatureView share: features and projection.

    Equality compares `to_dict()` and the projection, so `fv[["a"]] != fv`.
    """

    view_type: ClassVar[str] = ""
    features: list[Field]
    projection: FeatureViewProjection

    def _where(self) -> str:
        return where(type(self).__name__, self.name)

    @property
    def join_keys(self) -> list[str]:
        return []

    def _clone(self) -> Self:
        # A shallow copy with its own projection: what Feast's projection helpers return.
        cp = object.__new__(type(self))
        cp.__dict__.update(self.__dict__)
        cp.projection = self.projection.copy()
        return cp

    def __copy__(self) -> Self:
        return self._clone()

    def __getitem__(self, names: list[str]) -> Self:
        """A copy whose projection holds only `names`, in the order given."""
        at = self._where()
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            fail(at, f"select features with a list of names, e.g. view[['a', 'b']], got {names!r}")
        if len(set(names)) != len(names):
            fail(at, f"feature selection {names!r} names a feature twice")
        by_name = {f.name: f for f in self.features}
        selected: list[Field] = []
        for n in names:
            if n in by_name:
                selected.append(by_name[n])
            elif self.features:
                fail(at, f"has no feature {n!r}{known(n, list(by_name))}")
            else:
                # Schema not inferred yet: keep the name; apply resolves its type.
                selected.append(Field(name=n, dtype=Invalid))
        cp = self._clone()
        cp.projection.features = selected
        return cp

    def with_name(self, name: str) -> Self:
        """A copy whose features are reported as `<name>__<feature>`."""
        cp = self._clone()
        if not isinstance(name, str) or not name:
            fail(self._where(), f"with_name needs a non-empty string, got {name!r}")
        cp.projection.name_alias = name
        return cp

    def with_join_key_map(self, join_key_map: Mapping[str, str]) -> Self:
        """A copy that joins on other entity columns: `{view join key: entity-df column}`."""
        at = self._where()
        mapping = check_tags(at, join_key_map, "join_key_map")
        join_keys = self.join_keys
        for key in mapping:
            if join_keys and key not in join_keys:
                fail(at, f"join_key_map key {key!r} is not a join key (join keys: {join_keys})")
        cp = self._clone()
        cp.projection.join_key_map = mapping
        return cp

    def with_projection(self, projection: FeatureViewProjection) -> Self:
        """A copy that uses `projection`, which must be a projection of this view."""
        at = self._where()
        if not isinstance(projection, FeatureViewProjection):
            fail(at, f"with_projection needs a FeatureViewProjection, got {projection!r}")
        if projection.name != self.name:
            fail(at, f"projection is of view {projection.name!r}, not of this view")
        names = {f.name for f in self.features}
        for f in projection.features:
            if names and f.name not in names:
                fail(at, f"projection selects unknown feature {f.name!r}")
        cp = self._clone()
        cp.projection = projection.copy()
        return cp

    def __eq__(self, other: object) -> bool:
        same = super().__eq__(other)
        if same is NotImplemented or not same:
            return same
        assert isinstance(other, BaseFeatureView)
        return self.projection == other.projection

    __hash__ = Spec.__hash__
