"""`OnDemandFeatureView` (`feast.on_demand_feature_view`): features computed at read time.

The transformation is a Python function (`udf`) over the source views' features and the
request data, in `mode` "pandas" (DataFrame in, DataFrame out) or "python" (dict of lists
in and out). The registry keeps its source text (`udf_string`, from `inspect.getsource`),
so a process that never imported the repo can rebuild the function with `resolve_udf()`.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repast._spec import check_bool, check_name, check_str, check_tags, fail
from repast.aggregation import Aggregation, check_aggregations
from repast.data_source import RequestSource
from repast.entity import Entity
from repast.field import Field, check_fields
from repast.projection import BaseFeatureView, FeatureViewProjection, resolve_projections

__all__ = ["OnDemandFeatureView", "compile_udf", "on_demand_feature_view", "udf_source"]

ODFV_MODES = ("pandas", "python")
Source = BaseFeatureView | FeatureViewProjection | RequestSource


def udf_source(udf: Callable[..., Any]) -> str:
    """The dedented source text of `udf`, or "" when Python cannot find it (REPL, builtins)."""
    try:
        return textwrap.dedent(inspect.getsource(udf))
    except (OSError, TypeError):
        return ""


def compile_udf(
    udf_string: str, udf_name: str, namespace: dict[str, Any] | None = None
) -> Callable[..., Any]:
    """Rebuild a function from its stored source; decorator lines before `def` are dropped.

    The function runs in a namespace holding `pd`/`pandas` and `np`/`numpy` (when
    installed) plus `namespace`, e.g. the globals of the repo file that defined it.
    """
    lines = textwrap.dedent(udf_string).splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(("def ", "async def "))), None)
    if start is None:
        raise ValueError(f"udf {udf_name!r}: no function definition in its stored source")
    scope: dict[str, Any] = {}
    for module, aliases in (("pandas", ("pd", "pandas")), ("numpy", ("np", "numpy"))):
        try:
            imported = __import__(module)
        except ImportError:
            continue
        scope.update(dict.fromkeys(aliases, imported))
    scope.update(namespace or {})
    # Annotations stay strings, so a signature like `inputs: pd.DataFrame` needs no import.
    # (`annotations` here is the __future__ feature object the import above binds.)
    flags = annotations.compiler_flag
    code = compile("\n".join(lines[start:]), f"<udf {udf_name}>", "exec", flags, dont_inherit=True)
    exec(code, scope)
    function = scope.get(udf_name)
    if not callable(function):
        raise ValueError(f"udf {udf_name!r}: its stored source does not define {udf_name!r}")
    return function  # type: ignore[no-any-return]


def _unavailable_udf(*args: object) -> None:
    raise AssertionError("placeholder; never called")


class OnDemandFeatureView(BaseFeatureView):
    """Features (`schema`) computed by `udf` from `sources` when they are read.

    `sources` may hold FeatureViews (their current projection is used), projections
    (`fv[["a"]]`) and RequestSources; they are kept as Feast keeps them, in
    `source_feature_view_projections` and `source_request_sources` (dicts by name).
    """

    view_type = "on_demand_feature_view"

    def __init__(
        self,
        *,
        name: str,
        entities: Sequence[Entity | str] | None = None,
        schema: list[Field] | None = None,
        sources: list[Source] | None = None,
        udf: Callable[..., Any] | None = None,
        udf_string: str = "",
        feature_transformation: object = None,
        mode: str = "pandas",
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        org: str = "",
        write_to_online_store: bool = False,
        singleton: bool = False,
        track_metrics: bool = False,
        aggregations: list[Aggregation] | None = None,
        version: str = "latest",
        enabled: bool = True,
    ) -> None:
        self.name = check_name("OnDemandFeatureView", name)
        at = self._where()
        if feature_transformation is not None:
            fail(at, "feature_transformation is not supported; pass the function as udf")
        if mode not in ODFV_MODES:
            fail(at, f"mode must be one of {', '.join(ODFV_MODES)}, got {mode!r}")
        self.mode = mode
        self.features = check_fields(at, "schema", schema)
        if not self.features:
            fail(at, "schema must list the features the udf returns")
        self.entities: list[str] = []
        for e in entities or []:
            if not isinstance(e, Entity | str):
                fail(at, f"entities must be a list of Entity, got {e!r}")
            self.entities.append(e if isinstance(e, str) else e.name)
        self.source_feature_view_projections: dict[str, FeatureViewProjection] = {}
        self.source_request_sources: dict[str, RequestSource] = {}
        if not sources:
            fail(at, "sources must list at least one FeatureView or RequestSource")
        for source in sources:
            self._add_source(source)
        if udf is not None and not callable(udf):
            fail(at, f"udf must be a function, got {udf!r}")
        self.udf = udf
        self.udf_string: str = check_str(at, "udf_string", udf_string) or (
            udf_source(udf) if udf is not None else ""
        )
        self.udf_name: str = getattr(udf, "__name__", "") or name
        if udf is None and not self.udf_string:
            fail(at, "udf is required (decorate a function with @on_demand_feature_view)")
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.owner: str = check_str(at, "owner", owner)
        self.org: str = check_str(at, "org", org)
        self.write_to_online_store = check_bool(at, "write_to_online_store", write_to_online_store)
        self.singleton = check_bool(at, "singleton", singleton)
        self.track_metrics = check_bool(at, "track_metrics", track_metrics)
        self.aggregations = check_aggregations(at, aggregations)
        self.version: str = check_str(at, "version", version)
        self.enabled = check_bool(at, "enabled", enabled)
        self.projection = FeatureViewProjection.from_definition(self)

    def _add_source(self, source: object) -> None:
        at = self._where()
        if isinstance(source, RequestSource):
            name = source.name
        elif isinstance(source, BaseFeatureView):
            source = source.projection.copy()
            name = source.name_to_use()
        elif isinstance(source, FeatureViewProjection):
            name = source.name_to_use()
        else:
            fail(
                at, f"sources may hold FeatureViews, projections and RequestSources, got {source!r}"
            )
        if name in self.source_feature_view_projections or name in self.source_request_sources:
            fail(at, f"source {name!r} is listed twice")
        if isinstance(source, RequestSource):
            self.source_request_sources[name] = source
        else:
            self.source_feature_view_projections[name] = source

    def infer_features(self, views_by_name: Mapping[str, BaseFeatureView]) -> None:
        """Resolve the source projections against the views, as FeatureService does."""
        projections = self.source_feature_view_projections.values()
        resolve_projections(self._where(), projections, views_by_name)

    def resolve_udf(self, namespace: dict[str, Any] | None = None) -> Callable[..., Any]:
        """The udf; rebuilt from `udf_string` when this view was loaded from the registry."""
        if self.udf is None:
            if not self.udf_string:
                fail(self._where(), "the udf's source text was not stored; re-apply the repo")
            self.udf = compile_udf(self.udf_string, self.udf_name, namespace)
        return self.udf

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": list(self.entities),
            "features": [f.to_dict() for f in self.features],
            "source_feature_view_projections": [
                p.to_dict() for p in self.source_feature_view_projections.values()
            ],
            "source_request_sources": [s.to_dict() for s in self.source_request_sources.values()],
            "mode": self.mode,
            "udf_name": self.udf_name,
            "udf_string": self.udf_string,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
            "org": self.org,
            "write_to_online_store": self.write_to_online_store,
            "singleton": self.singleton,
            "track_metrics": self.track_metrics,
            "aggregations": [a.to_dict() for a in self.aggregations],
            "version": self.version,
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnDemandFeatureView:
        sources: list[Source] = [
            *(
                FeatureViewProjection.from_dict(p)
                for p in d.get("source_feature_view_projections", [])
            ),
            *(RequestSource.from_dict(s) for s in d.get("source_request_sources", [])),
        ]
        view = cls(
            name=d["name"],
            entities=d.get("entities"),
            schema=[Field.from_dict(f) for f in d.get("features", [])],
            sources=sources,
            # A view defined where its source was unavailable (a REPL) is stored without
            # it; it still loads, and resolve_udf() then says why it cannot run.
            udf=None if d.get("udf_string") else _unavailable_udf,
            udf_string=d.get("udf_string", ""),
            mode=d.get("mode", "pandas"),
            description=d.get("description", ""),
            tags=d.get("tags"),
            owner=d.get("owner", ""),
            org=d.get("org", ""),
            write_to_online_store=d.get("write_to_online_store", False),
            singleton=d.get("singleton", False),
            track_metrics=d.get("track_metrics", False),
            aggregations=[Aggregation.from_dict(a) for a in d.get("aggregations", [])],
            version=d.get("version", "latest"),
            enabled=d.get("enabled", True),
        )
        view.udf, view.udf_string = None, d.get("udf_string", "")
        view.udf_name = d.get("udf_name") or view.name
        return view

    def __repr__(self) -> str:
        sources = [*self.source_feature_view_projections, *self.source_request_sources]
        return (
            f"OnDemandFeatureView(name={self.name!r}, features={[f.name for f in self.features]!r}"
            f", sources={sources!r}, mode={self.mode!r})"
        )


def on_demand_feature_view(
    *,
    name: str | None = None,
    entities: Sequence[Entity | str] | None = None,
    schema: list[Field] | None = None,
    sources: list[Source] | None = None,
    mode: str = "pandas",
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
    org: str = "",
    write_to_online_store: bool = False,
    singleton: bool = False,
    explode: bool = False,
    track_metrics: bool = False,
    aggregations: list[Aggregation] | None = None,
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Decorator: the function becomes an OnDemandFeatureView named after it.

    >>> @on_demand_feature_view(sources=[request], schema=[Field(name="y", dtype=Float64)])
    ... def double(inputs: pd.DataFrame) -> pd.DataFrame: ...
    """

    def decorate(udf: Callable[..., Any]) -> OnDemandFeatureView:
        if explode:
            fail(f"OnDemandFeatureView {name or udf.__name__!r}", "explode=True is not supported")
        return OnDemandFeatureView(
            name=name or udf.__name__,
            entities=entities,
            schema=schema,
            sources=sources,
            udf=udf,
            mode=mode,
            description=description,
            tags=tags,
            owner=owner,
            org=org,
            write_to_online_store=write_to_online_store,
            singleton=singleton,
            track_metrics=track_metrics,
            aggregations=aggregations,
        )

    return decorate
