"""`LabelView` and `ConflictPolicy` (`feast.LabelView`, Feast 0.67): human labels for entities.

A label view is a feature view fed by a `PushSource`: labelers (a UI, a script) push labels,
which land online (read like any view's features) and, with `to=ONLINE_AND_OFFLINE`, in the
push source's batch source for training sets. It is registered in its own registry section,
`label_views`, and is listed and fetched like the other kinds of views.

`labeler_field` names the column holding who wrote a label, and `conflict_policy` how labels
from several labelers are resolved. Online, the store's usual rule applies (the newer event time
wins), which is what Feast does online whatever the policy. Repast records the policy but does
not resolve conflicts in offline reads: they return the labels the point-in-time join picks
(docs/migrating-from-feast.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from enum import Enum
from typing import Any

from repast._spec import check_str, fail, where
from repast.data_source import DataSource, PushSource
from repast.entity import Entity
from repast.feature_view import FeatureView
from repast.field import Field

__all__ = ["ConflictPolicy", "LabelView"]


class ConflictPolicy(Enum):
    """How labels from several labelers for one entity are resolved (values as Feast's)."""

    LAST_WRITE_WINS = "last_write_wins"
    LABELER_PRIORITY = "labeler_priority"
    MAJORITY_VOTE = "majority_vote"


class LabelView(FeatureView):
    """A FeatureView whose `source` is a PushSource, with a labeler column and a conflict policy."""

    view_type = "label_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource | None = None,
        schema: list[Field] | None = None,
        entities: Sequence[Entity | str] | None = None,
        ttl: timedelta | None = timedelta(0),
        online: bool = True,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        labeler_field: str = "labeler",
        conflict_policy: ConflictPolicy | str = ConflictPolicy.LAST_WRITE_WINS,
        reference_feature_view: str | None = None,
    ) -> None:
        at = where("LabelView", name)
        if not isinstance(source, PushSource):
            fail(at, f"source must be a PushSource (labels are pushed), got {source!r}")
        super().__init__(
            name=name,
            source=source,
            schema=schema,
            entities=entities,
            ttl=ttl,
            online=online,
            description=description,
            tags=tags,
            owner=owner,
        )
        self.labeler_field: str = check_str(at, "labeler_field", labeler_field)
        try:
            self.conflict_policy = ConflictPolicy(
                conflict_policy.value
                if isinstance(conflict_policy, ConflictPolicy)
                else conflict_policy
            )
        except ValueError:
            known = ", ".join(p.name for p in ConflictPolicy)
            fail(at, f"conflict_policy must be one of {known}, got {conflict_policy!r}")
        self.reference_feature_view: str | None = check_str(
            at, "reference_feature_view", reference_feature_view, optional=True
        )
        if self.labeler_field and self.features and self.labeler_field not in self.field_names:
            fail(
                at,
                f"labeler_field {self.labeler_field!r} is not a field of the schema "
                f"{self.field_names!r}",
            )

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["labeler_field"] = self.labeler_field
        d["conflict_policy"] = self.conflict_policy.value
        d["reference_feature_view"] = self.reference_feature_view
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelView:
        kwargs = cls._kwargs_from_dict(d)
        for unused in ("sink_source", "offline", "org", "enable_validation", "version"):
            kwargs.pop(unused, None)
        view = cls(
            labeler_field=d.get("labeler_field", "labeler"),
            conflict_policy=d.get("conflict_policy", ConflictPolicy.LAST_WRITE_WINS.value),
            reference_feature_view=d.get("reference_feature_view"),
            **kwargs,
        )
        view._set_columns_from_dict(d)
        return view
