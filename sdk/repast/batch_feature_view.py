"""`BatchFeatureView` (`feast.batch_feature_view`): a FeatureView over a batch source only.

Repast takes it for Feast's `aggregations` over a batch source (docs/aggregations.md): the
windows are placed by the batch source's `timestamp_field`, with 1-second tiles (Feast 0.67's
BatchFeatureView has no tiling knobs, and its engines tile only views that set them). Its
transformations (`udf`, `feature_transformation`) and per-view `batch_engine` are refused:
Repast would store them without running them, serving untransformed values.

Feast stores a BatchFeatureView among the feature views; so does Repast (`view_type` in its
registry record tells the two apart, `feature_view_from_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from repast._spec import check_str, fail, where
from repast.aggregation import UNTILED, AggregatingView, Aggregation
from repast.data_source import STREAM_SOURCE_TYPES, DataSource
from repast.entity import Entity
from repast.feature_view import FeatureView
from repast.field import Field
from repast.stream_feature_view import StreamFeatureView

__all__ = ["AggregatedView", "BatchFeatureView", "aggregated_view", "feature_view_from_dict"]


class BatchFeatureView(AggregatingView):
    """A FeatureView whose `source` is a batch source, optionally with windowed `aggregations`.

    Feast 0.67's signature and defaults (`online=False`, `ttl=None`).
    """

    view_type = "batch_feature_view"

    def __init__(
        self,
        *,
        name: str,
        mode: str = "python",
        source: DataSource | None = None,
        sink_source: DataSource | None = None,
        entities: Sequence[Entity | str] | None = None,
        ttl: timedelta | None = None,
        tags: dict[str, str] | None = None,
        online: bool = False,
        offline: bool = False,
        description: str = "",
        owner: str = "",
        org: str = "",
        schema: list[Field] | None = None,
        udf: Callable[..., Any] | None = None,
        udf_string: str | None = "",
        feature_transformation: object = None,
        batch_engine: dict[str, Any] | None = None,
        aggregations: list[Aggregation] | None = None,
        enable_validation: bool = False,
        version: str = "latest",
    ) -> None:
        at = where("BatchFeatureView", name)
        if udf is not None or udf_string or feature_transformation is not None:
            fail(
                at,
                "transformations (udf, udf_string, feature_transformation) are not supported; "
                "transform the rows before they reach the batch source",
            )
        if batch_engine is not None:
            fail(
                at,
                "a per-view batch_engine is not supported; set batch_engine in feature_store.yaml",
            )
        if isinstance(source, STREAM_SOURCE_TYPES):
            fail(
                at,
                f"source must be a batch source (FileSource, SparkSource), got "
                f"{type(source).__name__} {source.name!r}; use a StreamFeatureView",
            )
        super().__init__(
            name=name,
            source=source,
            sink_source=sink_source,
            schema=schema,
            entities=entities,
            ttl=ttl,
            online=online,
            offline=offline,
            description=description,
            tags=tags,
            owner=owner,
            org=org,
            mode=check_str(at, "mode", mode),
            enable_validation=enable_validation,
            version=version,
        )
        # What the aggregation paths read of any aggregated view (as on StreamFeatureView).
        self.timestamp_field: str = self.batch_source.timestamp_field
        self.enable_tiling = False
        self.tiling_hop_size: timedelta | None = None
        if aggregations and not self.timestamp_field:
            fail(
                at,
                f"batch source {self.batch_source.name!r} needs a timestamp_field to place "
                "events in the aggregations' windows",
            )
        self._declare_aggregations(at, aggregations, tiling=False)

    @property
    def tile(self) -> timedelta:
        """The tile of the aggregations' windows: 1 second (docs/aggregations.md)."""
        return UNTILED

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(
            view_type=self.view_type,
            aggregations=[a.to_dict() for a in self.aggregations],
            aggregation_inputs=[f.to_dict() for f in self.aggregation_inputs],
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchFeatureView:
        kwargs = cls._kwargs_from_dict(d)
        if d.get("aggregations"):
            kwargs["schema"] = [
                Field.from_dict(f)
                for f in [*d.get("entity_columns", []), *d.get("aggregation_inputs", [])]
            ]
        view = cls(
            mode=d.get("mode") or "python",
            aggregations=[Aggregation.from_dict(a) for a in d.get("aggregations", [])],
            **kwargs,
        )
        view.enabled = d.get("enabled", True)
        view._set_columns_from_dict(d)
        view.aggregation_inputs = [Field.from_dict(f) for f in d.get("aggregation_inputs", [])]
        return view


def feature_view_from_dict(d: dict[str, Any]) -> FeatureView:
    """A record of the registry's `feature_views` section: a FeatureView or a BatchFeatureView."""
    if d.get("view_type") == BatchFeatureView.view_type:
        return BatchFeatureView.from_dict(d)
    return FeatureView.from_dict(d)


# The views that may declare aggregations (Feast 0.67's FeatureView takes none).
AggregatedView = StreamFeatureView | BatchFeatureView


def aggregated_view(view: object) -> AggregatedView | None:
    """`view` when it serves windowed aggregations, else None."""
    if isinstance(view, StreamFeatureView | BatchFeatureView) and view.aggregations:
        return view
    return None
