"""`StreamFeatureView` (`feast.stream_feature_view`): a FeatureView fed by a stream source.

It adds an optional transformation (`udf`, kept with its source text like an ODFV's) and
windowed `aggregations`, which need `timestamp_field` to place rows in windows. A view with
aggregations serves them as its features (docs/aggregations.md); its `schema` declares their
input columns (`aggregation_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from repast._spec import check_bool, check_duration, check_str, duration, fail, seconds, where
from repast.aggregation import AggregatingView, Aggregation, tile_size
from repast.data_source import STREAM_SOURCE_TYPES, DataSource, data_source_from_dict
from repast.entity import Entity
from repast.field import Field
from repast.on_demand_feature_view import compile_udf, udf_source

__all__ = ["StreamFeatureView", "stream_feature_view"]


class StreamFeatureView(AggregatingView):
    """A FeatureView whose `source` is a KafkaSource, PushSource or KinesisSource."""

    view_type = "stream_feature_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource,
        sink_source: DataSource | None = None,
        entities: Sequence[Entity | str] | None = None,
        ttl: timedelta | None = timedelta(0),
        tags: dict[str, str] | None = None,
        online: bool = True,
        offline: bool = False,
        description: str = "",
        owner: str = "",
        org: str = "",
        schema: list[Field] | None = None,
        aggregations: list[Aggregation] | None = None,
        mode: str = "python",
        timestamp_field: str = "",
        udf: Callable[..., Any] | None = None,
        udf_string: str = "",
        feature_transformation: object = None,
        stream_engine: object = None,
        enable_tiling: bool = False,
        tiling_hop_size: timedelta | None = None,
        enable_validation: bool = False,
        version: str = "latest",
    ) -> None:
        at = where("StreamFeatureView", name)
        if not isinstance(source, STREAM_SOURCE_TYPES):
            fail(at, f"source must be a KafkaSource, PushSource or KinesisSource, got {source!r}")
        if feature_transformation is not None or stream_engine is not None:
            fail(at, "feature_transformation and stream_engine are not supported; pass udf")
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
            mode=mode,
            enable_validation=enable_validation,
            version=version,
        )
        self.timestamp_field: str = check_str(at, "timestamp_field", timestamp_field)
        if aggregations and not self.timestamp_field:
            fail(at, "timestamp_field is required when aggregations are given")
        if udf is not None and not callable(udf):
            fail(at, f"udf must be a function, got {udf!r}")
        self.udf = udf
        self.udf_string: str = check_str(at, "udf_string", udf_string) or (
            udf_source(udf) if udf is not None else ""
        )
        self.udf_name: str = getattr(udf, "__name__", "") if udf is not None else ""
        self.enable_tiling = check_bool(at, "enable_tiling", enable_tiling)
        self.tiling_hop_size = check_duration(at, "tiling_hop_size", tiling_hop_size)
        self._declare_aggregations(at, aggregations, self.enable_tiling)

    @property
    def tile(self) -> timedelta:
        """The tile of the aggregations' windows (docs/aggregations.md)."""
        return tile_size(self.enable_tiling, self.tiling_hop_size)

    def resolve_udf(self, namespace: dict[str, Any] | None = None) -> Callable[..., Any] | None:
        """The udf (None when there is none); rebuilt from `udf_string` after a registry load."""
        if self.udf is None and self.udf_string:
            self.udf = compile_udf(self.udf_string, self.udf_name or self.name, namespace)
        return self.udf

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(
            aggregations=[a.to_dict() for a in self.aggregations],
            timestamp_field=self.timestamp_field,
            udf_name=self.udf_name,
            udf_string=self.udf_string,
            enable_tiling=self.enable_tiling,
            tiling_hop_size=seconds(self.tiling_hop_size),
            aggregation_inputs=[f.to_dict() for f in self.aggregation_inputs],
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamFeatureView:
        kwargs = cls._kwargs_from_dict(d)
        if d.get("stream_source"):
            kwargs["source"] = data_source_from_dict(d["stream_source"])
        if d.get("aggregations"):
            kwargs["schema"] = [
                Field.from_dict(f)
                for f in [*d.get("entity_columns", []), *d.get("aggregation_inputs", [])]
            ]
        view = cls(
            mode=d.get("mode") or "python",
            aggregations=[Aggregation.from_dict(a) for a in d.get("aggregations", [])],
            timestamp_field=d.get("timestamp_field", ""),
            udf_string=d.get("udf_string", ""),
            enable_tiling=d.get("enable_tiling", False),
            tiling_hop_size=duration(d.get("tiling_hop_size")),
            **kwargs,
        )
        view.udf_name = d.get("udf_name", "")
        view._set_columns_from_dict(d)
        view.aggregation_inputs = [Field.from_dict(f) for f in d.get("aggregation_inputs", [])]
        return view


def stream_feature_view(
    *,
    entities: Sequence[Entity | str] | None = None,
    ttl: timedelta | None = None,
    tags: dict[str, str] | None = None,
    online: bool = True,
    offline: bool = False,
    description: str = "",
    owner: str = "",
    org: str = "",
    schema: list[Field] | None = None,
    source: DataSource | None = None,
    aggregations: list[Aggregation] | None = None,
    mode: str = "spark",
    timestamp_field: str = "",
    enable_tiling: bool = False,
    tiling_hop_size: timedelta | None = None,
) -> Callable[[Callable[..., Any]], StreamFeatureView]:
    """Decorator: the function becomes the udf of a StreamFeatureView named after it."""

    def decorate(udf: Callable[..., Any]) -> StreamFeatureView:
        if source is None:
            fail(where("StreamFeatureView", udf.__name__), "source is required")
        return StreamFeatureView(
            name=udf.__name__,
            source=source,
            entities=entities,
            ttl=ttl,
            tags=tags,
            online=online,
            offline=offline,
            description=description,
            owner=owner,
            org=org,
            schema=schema,
            aggregations=aggregations,
            mode=mode,
            timestamp_field=timestamp_field,
            udf=udf,
            enable_tiling=enable_tiling,
            tiling_hop_size=tiling_hop_size,
        )

    return decorate
