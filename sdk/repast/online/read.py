"""`get_online_features`: resolve feature references, build entity keys in Rust (one call per
distinct set of key columns), read every view in one store call, fan the values back out to
the entity rows and set statuses (PRESENT / NOT_FOUND / OUTSIDE_MAX_AGE).

Resolved plans are cached per registry version and request shape, so a repeated request
costs only the key building, the read and the decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from repast import _core
from repast.batch_feature_view import feature_view_from_dict
from repast.context import StoreContext
from repast.conversion import exact_array
from repast.errors import (
    EntityError,
    FeatureNameCollisionError,
    FeatureNotFoundError,
    FeatureViewNotFoundError,
)
from repast.feature_service import FeatureService
from repast.feature_view import DUMMY_ENTITY_ID, FeatureView
from repast.label_view import LabelView
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.online.base import (
    OnlineStore,
    OnlineView,
    PackedRows,
    ReadRequest,
    ViewRows,
    packed_row_store,
)
from repast.online.on_demand import OdfvPlan, transform
from repast.online.stored_types import PARSED_ON_READ, json_column
from repast.online.tiles import TileSpec, tile_spec, tile_store
from repast.online_response import NOT_FOUND, OUTSIDE_MAX_AGE, PRESENT, OnlineResponse
from repast.registry.document import Kind
from repast.stream_feature_view import StreamFeatureView
from repast.validate import closest
from repast.value_type import ValueType

__all__ = ["EntityError", "FeatureNotFoundError", "OnlineReader", "PackedRead"]

Features = Sequence[str] | FeatureService
EntityRows = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


Typed = dict[str, pa.Array | list[Any]]
"""Entity key column name -> its values typed: an Arrow array, or (plain keys) the given list
of exact ints / strs, which print the same in a response."""


_PRESENT = pa.scalar(PRESENT, pa.int8())
_NOT_FOUND = pa.scalar(NOT_FOUND, pa.int8())
_OUTSIDE_MAX_AGE = pa.scalar(OUTSIDE_MAX_AGE, pa.int8())


def now_micros() -> int:
    """The clock OUTSIDE_MAX_AGE is judged by (tests replace it)."""
    return time.time_ns() // 1000


@dataclass
class _ViewPlan:
    view: OnlineView
    alias: str
    features: list[str]
    join_keys: list[str]
    columns: list[str]
    """The entity-row columns holding the join keys (after the projection's join key map)."""
    key_types: list[int]
    key_arrow: list[pa.DataType]
    ttl_micros: int
    select: list[int]
    """Schema positions of `features` (what a packed row is decoded by)."""
    tiles: TileSpec | None = None
    """An aggregated view's spec: its stored values are tile sets (`online/tiles.py`)."""


@dataclass
class PackedRead:
    """A read whose feature values are still the stored packed rows, for writers that skip
    Arrow (`_core.packed_response_json`, the feature server's JSON).

    `views` holds per view read: (name, stored rows per key read, the value types of all its
    features, the schema positions requested, each entity row's read row (int32 array) or
    None, ttl in microseconds); `outputs` the (view, position index) of each feature column
    in response order. The entity key columns come first in a response, typed."""

    key_names: list[str]
    key_columns: list[pa.Array | list[Any]]
    """Arrow arrays, or for a few rows of plain keys the values as given (exact ints / strs)."""
    feature_names: list[str]
    views: list[tuple[str, PackedRows, list[int], list[int], pa.Array | None, int]]
    outputs: list[tuple[int, int]]
    rows: int


@dataclass
class _Plan:
    views: list[_ViewPlan]
    outputs: list[tuple[bool, int, int, str]]
    """Per output feature column: (from an ODFV?, view or ODFV plan index, feature index in
    that plan, name)."""
    join_columns: list[str]
    odfvs: list[OdfvPlan]
    entity_names: dict[str, str] = field(default_factory=dict)
    """Join key -> the one entity that has it: Feast also takes an entity column named after
    the entity instead of its join key."""

    @cached_property
    def packed_outputs(self) -> list[tuple[int, int]]:
        return [(index, fi) for _, index, fi, _ in self.outputs]

    @cached_property
    def feature_names(self) -> list[str]:
        return [name for _, _, _, name in self.outputs]

    @cached_property
    def value_types(self) -> list[list[int]]:
        return [list(p.view.value_types) for p in self.views]

    @cached_property
    def zoned(self) -> bool:
        """Whether a ZONED_TIMESTAMP feature is read."""
        return any(
            p.view.feast_types[s] == ValueType.ZONED_TIMESTAMP for p in self.views for s in p.select
        )


class OnlineReader:
    """Turns `get_online_features` arguments into store reads; one per store context and online
    store."""

    def __init__(self, store: StoreContext, online: OnlineStore) -> None:
        self._store = store
        self._online = online
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._version = ""

    # -- resolving ---------------------------------------------------------------------------

    def _views(self, snapshot: Any) -> dict[str, FeatureView]:
        project = self._store.project
        views: dict[str, FeatureView] = {}
        kinds: tuple[tuple[Kind, Callable[[dict[str, Any]], FeatureView]], ...] = (
            ("feature_views", feature_view_from_dict),
            ("stream_feature_views", StreamFeatureView.from_dict),
            ("label_views", LabelView.from_dict),
        )
        for kind, from_dict in kinds:
            for name, record in snapshot.records(project, kind).items():
                views[name] = from_dict(dict(record.spec))
        return views

    def plan(self, features: Features, full_feature_names: bool) -> _Plan:
        snapshot = self._store.registry.snapshot(allow_cache=True)
        if snapshot.version_id != self._version:
            self._plans.clear()
            self._version = snapshot.version_id
        if isinstance(features, FeatureService):
            sig: tuple[Any, ...] = ("service", features.name, full_feature_names)
        elif isinstance(features, str):
            raise TypeError("features must be a list of 'view:feature' strings or a FeatureService")
        else:
            sig = ("refs", tuple(features), full_feature_names)
        plan = self._plans.get(sig)
        if plan is None:
            plan = self._plans[sig] = self._resolve(snapshot, features, full_feature_names)
        return plan

    def _resolve(self, snapshot: Any, features: Features, full_names: bool) -> _Plan:
        views = self._views(snapshot)
        odfvs = {
            name: OnDemandFeatureView.from_dict(dict(record.spec))
            for name, record in snapshot.records(
                self._store.project, "on_demand_feature_views"
            ).items()
        }
        # (view name, alias, join key map, [features]) in first-appearance order.
        wanted: list[tuple[str, str, dict[str, str], list[str]]] = []
        order: list[tuple[int, str]] = []
        if isinstance(features, FeatureService):
            for p in features.feature_view_projections:
                names = [f.name for f in p.features]
                if not names and p.name in views:
                    names = [f.name for f in views[p.name].features]
                if not names and p.name in odfvs:
                    names = [f.name for f in odfvs[p.name].features]
                wanted.append((p.name, p.name_to_use(), dict(p.join_key_map), names))
                order += [(len(wanted) - 1, f) for f in names]
        else:
            index: dict[str, int] = {}
            for ref in features:
                view_name, sep, feature = ref.partition(":")
                if not sep or not view_name or not feature:
                    raise FeatureNotFoundError(f"feature reference '{ref}' must be 'view:feature'")
                if view_name not in index:
                    index[view_name] = len(wanted)
                    wanted.append((view_name, view_name, {}, []))
                wanted[index[view_name]][3].append(feature)
                order.append((index[view_name], feature))
        if not wanted:
            raise FeatureNotFoundError("No features specified for retrieval")
        plans: list[_ViewPlan] = []
        odfv_plans: list[OdfvPlan] = []
        # Per wanted entry: (is an ODFV, its plan index, alias).
        where: list[tuple[bool, int, str]] = []
        for view_name, alias, join_key_map, names in wanted:
            if view_name in odfvs:
                odfv = odfvs[view_name]
                odfv_plans.append(_odfv_plan(odfv, names, views, plans))
                where.append((True, len(odfv_plans) - 1, alias))
                continue
            view = views.get(view_name)
            if view is None:
                raise FeatureViewNotFoundError(
                    f"feature view '{view_name}' does not exist in project "
                    f"'{self._store.project}'{closest(view_name, [*views, *odfvs])}"
                )
            plans.append(_view_plan(view, alias, join_key_map, names))
            where.append((False, len(plans) - 1, alias))
        outputs: list[tuple[bool, int, int, str]] = []
        seen: set[str] = set()
        for wi, feature in order:
            is_odfv, pi, alias = where[wi]
            name = f"{alias}__{feature}" if full_names else feature
            if name in seen:
                # Feast raises FeatureNameCollisionError here too; a bad request, not a 404.
                raise FeatureNameCollisionError(
                    f"feature '{name}' is requested twice; use full_feature_names=True "
                    "if two views share a feature name"
                )
            seen.add(name)
            own = odfv_plans[pi].features if is_odfv else plans[pi].features
            outputs.append((is_odfv, pi, own.index(feature), name))
        join_columns = list(
            dict.fromkeys(c for p in plans for c in p.columns if c != DUMMY_ENTITY_ID)
        )
        if self._store.config.online_ttl == "feast":
            # Feast 0.67 ignores a view's ttl online: every stored value is served.
            for view_plan in plans:
                view_plan.ttl_micros = 0
        owners: dict[str, list[str]] = {}
        for name, record in snapshot.records(self._store.project, "entities").items():
            owners.setdefault(str(record.spec.get("join_key", name)), []).append(name)
        entity_names = {k: names[0] for k, names in owners.items() if len(names) == 1}
        return _Plan(plans, outputs, join_columns, odfv_plans, entity_names)

    # -- reading -----------------------------------------------------------------------------

    def prepare(
        self,
        features: Features,
        entity_rows: EntityRows,
        full_feature_names: bool,
        plan: _Plan | None = None,
        plain_keys: bool = False,
    ) -> tuple[
        _Plan,
        list[ReadRequest],
        list[pa.Array | None],
        Typed,
        int,
        Mapping[str, Any],
    ]:
        if plan is None:
            plan = self.plan(features, full_feature_names)
        columns = _entity_names_as_join_keys(plan, _columns(entity_rows))
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise EntityError(
                f"entity columns differ in length: { {k: len(v) for k, v in columns.items()} }"
            )
        n = lengths.pop() if lengths else 0
        requests: list[ReadRequest] = []
        fanout: list[pa.Array | None] = []
        typed: Typed = {}
        by_shape: dict[tuple[Any, ...], tuple[pa.Array | list[bytes], pa.Array | None]] = {}
        version = self._store.config.entity_key_serialization_version
        for p in plan.views:
            shape = (tuple(p.columns), tuple(p.join_keys), tuple(p.key_types))
            if shape not in by_shape:
                by_shape[shape] = _keys(p, columns, typed, n, version, plain_keys)
            unique, indices = by_shape[shape]
            requests.append(ReadRequest(p.view, unique, p.features))
            fanout.append(indices)
        return plan, requests, fanout, typed, n, columns

    def respond(
        self,
        plan: _Plan,
        rows: list[ViewRows],
        fanout: list[pa.Array | None],
        typed: Typed,
        n: int,
        raw: Mapping[str, Sequence[Any]],
    ) -> OnlineResponse:
        now = now_micros()
        statuses: list[pa.Array] = []
        stamps: list[pa.Array] = []
        values: list[list[pa.Array]] = []
        for p, got, indices in zip(plan.views, rows, fanout, strict=True):
            ts = got.event_timestamps
            # Cheap paths first: most reads find every entity, and nothing stale.
            if ts.null_count == 0:
                status = pa.repeat(_PRESENT, len(ts))
            else:
                status = pc.if_else(pc.is_valid(ts), _PRESENT, _NOT_FOUND)
            cols = got.columns
            if p.ttl_micros > 0 and ts.null_count < len(ts):
                oldest = pc.min(ts).value
                if oldest is not None and now - oldest > p.ttl_micros:
                    age = pc.subtract(now, pc.cast(ts, pa.int64()))
                    stale = pc.fill_null(pc.greater(age, p.ttl_micros), False)
                    status = pc.if_else(stale, _OUTSIDE_MAX_AGE, status)
                    # A stale value is not served, as the point-in-time join would not serve it.
                    cols = [pc.if_else(stale, pa.scalar(None, c.type), c) for c in cols]
            logical = p.view.feast_types
            if any(logical[s] in PARSED_ON_READ for s in p.select):
                cols = [
                    json_column(c) if logical[s] in PARSED_ON_READ else c
                    for c, s in zip(cols, p.select, strict=True)
                ]
            if indices is None:  # every entity row distinct, in order: nothing to fan out
                statuses.append(status)
                stamps.append(ts)
                values.append(cols)
            else:
                statuses.append(status.take(indices))
                stamps.append(ts.take(indices))
                values.append([c.take(indices) for c in cols])
        transformed = [transform(o, values, raw, n) for o in plan.odfvs]
        names = list(plan.join_columns)
        out_values: list[pa.Array] = [typed[c] for c in plan.join_columns]
        out_status: list[pa.Array | None] = [None] * len(names)
        out_ts: list[pa.Array | None] = [None] * len(names)
        out_kinds: list[int | None] = [None] * len(names)
        for is_odfv, index, fi, name in plan.outputs:
            names.append(name)
            if is_odfv:
                # Computed values: PRESENT, no event time (as Feast reports them).
                out_values.append(transformed[index][fi])
                out_status.append(None)
                out_ts.append(None)
                out_kinds.append(plan.odfvs[index].output_kind(fi))
            else:
                p = plan.views[index]
                out_values.append(values[index][fi])
                out_status.append(statuses[index])
                out_ts.append(stamps[index])
                out_kinds.append(p.view.feast_types[p.select[fi]])
        return OnlineResponse(names, out_values, out_status, out_ts, out_kinds)

    def read(
        self, features: Features, entity_rows: EntityRows, full_feature_names: bool
    ) -> OnlineResponse:
        plan, requests, fanout, typed, n, raw = self.prepare(
            features, entity_rows, full_feature_names
        )
        return self.respond(plan, self._rows(plan, requests), fanout, typed, n, raw)

    def _split(self, plan: _Plan) -> tuple[list[int], list[int]]:
        tiled = [i for i, p in enumerate(plan.views) if p.tiles is not None]
        return [i for i in range(len(plan.views)) if plan.views[i].tiles is None], tiled

    def _rows(self, plan: _Plan, requests: list[ReadRequest]) -> list[ViewRows]:
        plain, tiled = self._split(plan)
        if not tiled:
            return self._online.read(requests)
        out: dict[int, ViewRows] = {}
        if plain:
            got = self._online.read([requests[i] for i in plain])
            out.update(zip(plain, got, strict=True))
        store = tile_store(self._online, plan.views[tiled[0]].view.name)
        stored = store.read_packed([requests[i] for i in tiled])
        out.update(zip(tiled, self._tile_rows(plan, tiled, stored), strict=True))
        return [out[i] for i in range(len(requests))]

    async def _rows_async(self, plan: _Plan, requests: list[ReadRequest]) -> list[ViewRows]:
        plain, tiled = self._split(plan)
        if not tiled:
            return await self._online.read_async(requests)
        out: dict[int, ViewRows] = {}
        if plain:
            got = await self._online.read_async([requests[i] for i in plain])
            out.update(zip(plain, got, strict=True))
        store = tile_store(self._online, plan.views[tiled[0]].view.name)
        stored = await store.read_packed_async([requests[i] for i in tiled])
        out.update(zip(tiled, self._tile_rows(plan, tiled, stored), strict=True))
        return [out[i] for i in range(len(requests))]

    @staticmethod
    def _tile_rows(plan: _Plan, tiled: list[int], stored: list[PackedRows]) -> list[ViewRows]:
        """Tile sets read as of now, decoded as the view's packed rows."""
        rows = []
        for i, sets in zip(tiled, stored, strict=True):
            p = plan.views[i]
            assert p.tiles is not None
            packed = pa.array(p.tiles.read(sets), pa.binary())
            ts, columns = _core.decode_packed_rows(packed, list(p.view.value_types), p.select)
            rows.append(ViewRows(ts, list(columns)))
        return rows

    async def read_packed_async(
        self, features: Features, entity_rows: EntityRows, full_feature_names: bool
    ) -> PackedRead | None:
        """`read_async` with the values left as stored packed rows; None when the store keeps
        no packed rows or on-demand views need the values in Arrow."""
        store = packed_row_store(self._online)
        if store is None:
            return None
        plan = self.plan(features, full_feature_names)
        if plan.odfvs or plan.zoned:
            # ZONED_TIMESTAMP text is answered without its zone suffix by the Arrow path.
            return None
        plan, requests, fanout, typed, n, _ = self.prepare(
            features, entity_rows, full_feature_names, plan, plain_keys=True
        )
        stored = await store.read_packed_async(requests)
        for i, p in enumerate(plan.views):
            if p.tiles is not None:
                stored[i] = p.tiles.read(stored[i])
        views = [
            (p.view.name, rows, types, p.select, indices, p.ttl_micros)
            for p, types, rows, indices in zip(
                plan.views, plan.value_types, stored, fanout, strict=True
            )
        ]
        # The lists from the plan are shared by every read of this plan: read-only.
        return PackedRead(
            key_names=plan.join_columns,
            key_columns=[typed[c] for c in plan.join_columns],
            feature_names=plan.feature_names,
            views=views,
            outputs=plan.packed_outputs,
            rows=n,
        )

    async def read_async(
        self, features: Features, entity_rows: EntityRows, full_feature_names: bool
    ) -> OnlineResponse:
        plan, requests, fanout, typed, n, raw = self.prepare(
            features, entity_rows, full_feature_names
        )
        rows = await self._rows_async(plan, requests)
        return self.respond(plan, rows, fanout, typed, n, raw)


def _entity_names_as_join_keys(
    plan: _Plan, columns: Mapping[str, Sequence[Any]]
) -> Mapping[str, Sequence[Any]]:
    """Columns named after an entity serve as its join key's column (as Feast reads them)
    when the join key itself is absent and only one entity has that join key."""
    renamed: dict[str, Sequence[Any]] | None = None
    for column in plan.join_columns:
        entity = plan.entity_names.get(column)
        if column not in columns and entity is not None and entity in columns:
            renamed = renamed if renamed is not None else dict(columns)
            renamed[column] = renamed.pop(entity)
    return columns if renamed is None else renamed


def _typed_column(values: Any, arrow: pa.DataType, what: str) -> pa.Array:
    """An entity column as the join key's Arrow type, exactly; integers sent as strings
    ("1001") are parsed, as Feast converts them by the key's type. The parse is tried only
    after the exact conversion failed, so the common request pays nothing for it."""
    try:
        return exact_array(values, arrow, what, EntityError)
    except EntityError:
        if not pa.types.is_integer(arrow):
            raise
        try:
            text = values if isinstance(values, pa.Array) else pa.array(values)
            if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
                return text.cast(arrow)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            pass
        raise  # the exact conversion's message names the first bad row


def _check_features(owner: str, known: list[str], names: list[str]) -> None:
    for name in names:
        if name not in known:
            raise FeatureNotFoundError(f"{owner} has no feature '{name}'{closest(name, known)}")


def _view_plan(
    view: FeatureView, alias: str, join_key_map: dict[str, str], names: list[str]
) -> _ViewPlan:
    known = [f.name for f in view.features]
    _check_features(f"feature view '{view.name}'", known, names)
    join_keys = view.join_keys
    if join_keys:
        by_name = {f.name: f for f in view.entity_columns}
        key_types = [int(by_name[k].dtype.to_value_type()) for k in join_keys]
        key_arrow = [by_name[k].dtype.to_arrow_type() for k in join_keys]
    else:
        join_keys, key_types, key_arrow = [DUMMY_ENTITY_ID], [int(ValueType.STRING)], [pa.string()]
    return _ViewPlan(
        view=OnlineView.of(view),
        alias=alias,
        features=list(names),
        join_keys=list(join_keys),
        columns=[join_key_map.get(k, k) for k in join_keys],
        key_types=key_types,
        key_arrow=key_arrow,
        ttl_micros=int(view.ttl.total_seconds() * 1_000_000),
        select=[known.index(name) for name in names],
        tiles=tile_spec(view),
    )


def _columns(entity_rows: EntityRows) -> Mapping[str, Sequence[Any]]:
    if isinstance(entity_rows, Mapping):
        return {
            k: v if isinstance(v, Sequence | pa.Array | np.ndarray) else list(v)
            for k, v in entity_rows.items()
        }
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(entity_rows):
        if i == 0:
            columns = {k: [] for k in row}
        if row.keys() != columns.keys():
            raise EntityError(
                f"entity row {i} has columns {sorted(row)}, row 0 has {sorted(columns)}"
            )
        for k, v in row.items():
            columns[k].append(v)
    return columns


# Up to this many entity rows, keys of plain values are built from the Python lists as
# given (one Rust call, no Arrow array in or out: each costs microseconds per request).
_PLAIN_KEY_ROWS = 16


def _keys(
    p: _ViewPlan,
    columns: Mapping[str, Sequence[Any]],
    typed: Typed,
    n: int,
    version: int,
    plain: bool = False,
) -> tuple[pa.Array | list[bytes], pa.Array | None]:
    """(entity keys to read, index of each entity row's key or None when the keys are read
    as given) for one view: keys are de-duplicated only when many rows repeat one."""
    if p.join_keys == [DUMMY_ENTITY_ID]:
        key = _core.serialize_entity_keys(
            [DUMMY_ENTITY_ID], [pa.array([""])], [int(ValueType.STRING)], version
        )
        return key, pa.array(np.zeros(n, dtype=np.int32))
    if plain and n <= _PLAIN_KEY_ROWS:
        given = [values for c in p.columns if isinstance(values := columns.get(c), list)]
        if len(given) == len(p.columns):
            keys = _core.small_entity_keys(p.join_keys, p.key_types, given, n, version)
            # Repeats beyond the de-duplication threshold take the path below, which fans out.
            if keys is not None and (n == 1 or len(set(keys)) * 2 > n):
                for column, values in zip(p.columns, given, strict=True):
                    typed.setdefault(column, values)
                return keys, None
    arrays = []
    for column, join_key, arrow in zip(p.columns, p.join_keys, p.key_arrow, strict=True):
        if column not in columns:
            raise EntityError(
                f"feature view '{p.view.name}' needs entity column '{column}' (join key "
                f"'{join_key}'); the entity rows have {sorted(columns)}"
                f"{closest(column, list(columns))}"
            )
        array = typed.get(column)
        if not isinstance(array, pa.Array):
            # Exact: 1001.7 for an integer key is refused, never read as entity 1001.
            what = f"entity column '{column}' (join key of feature view '{p.view.name}')"
            array = _typed_column(columns[column], arrow, what)
            typed.setdefault(column, array)
        arrays.append(array)
    keys = _core.serialize_entity_keys(list(p.join_keys), arrays, list(p.key_types), version)
    if n == 1:  # one entity row: nothing to de-duplicate (dictionary_encode costs ~20 us)
        return keys, None
    encoded = keys.dictionary_encode()
    if len(encoded.dictionary) * 2 > n:
        # Few or no repeated entities: reading a repeated key twice costs the store less than
        # fanning every column out afterwards (one `take` per feature).
        return keys, None
    return encoded.dictionary, encoded.indices


def _odfv_plan(
    odfv: OnDemandFeatureView,
    names: list[str],
    views: Mapping[str, FeatureView],
    plans: list[_ViewPlan],
) -> OdfvPlan:
    _check_features(f"on-demand feature view '{odfv.name}'", [f.name for f in odfv.features], names)
    inputs: list[tuple[int, int, list[str], int | None]] = []
    for alias, projection in odfv.source_feature_view_projections.items():
        view = views.get(projection.name)
        if view is None:
            raise FeatureViewNotFoundError(
                f"on-demand feature view '{odfv.name}' reads feature view "
                f"'{projection.name}', which does not exist"
            )
        features = [f.name for f in projection.features] or [f.name for f in view.features]
        kinds = {f.name: int(f.dtype.to_value_type()) for f in view.features}
        # A hidden read of the source view's features, never part of the response.
        plans.append(_view_plan(view, alias, dict(projection.join_key_map), features))
        for fi, feature in enumerate(features):
            aliases = [feature, f"{alias}__{feature}"]
            inputs.append((len(plans) - 1, fi, aliases, kinds.get(feature)))
    request = [
        (f.name, f.dtype.to_arrow_type())
        for source in odfv.source_request_sources.values()
        for f in source.schema
    ]
    return OdfvPlan(odfv, list(names), inputs, request, odfv.resolve_udf())
