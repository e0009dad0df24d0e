"""`FeatureStore`: the SDK's entry point, Feast's method names and arguments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repast import materialize as materialize_mod
from repast.batch_feature_view import aggregated_view
from repast.config import RepoConfig, load_repo_config
from repast.context import StoreContext
from repast.data_source import DataSource, PushMode
from repast.diff import RegistryDiff, Transition, diff_registry
from repast.entity import Entity
from repast.errors import OnlineStoreError, RepoValidationError
from repast.feast_registry import Imported
from repast.feast_registry import importer as feast_import
from repast.feature_service import FeatureService
from repast.feature_view import FeatureView
from repast.label_view import LabelView
from repast.offline import RetrievalJob
from repast.offline.historical import get_historical_features
from repast.on_demand_feature_view import OnDemandFeatureView
from repast.online import OnlineStore, OnlineView
from repast.online import push as online_push
from repast.online.read import OnlineReader, PackedRead
from repast.online.tiles import tile_store
from repast.online_response import OnlineResponse
from repast.registry import Kind, Registry, set_infra
from repast.repo import KINDS, RepoContents, parse_repo
from repast.stream_feature_view import StreamFeatureView
from repast.validate import validate_repo

__all__ = ["FeatureStore"]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _rows_still_readable(stored: OnlineView, new: OnlineView | None) -> bool:
    """Whether rows written for `stored` still read correctly under `new`.

    Packed rows hold features by position: features added or removed at the end keep the
    stored rows readable (short rows read as null); a renamed, retyped or reordered feature,
    or other join keys, do not, and those rows are dropped (rematerialize the view).
    """
    if new is None or new.join_keys != stored.join_keys:
        return False
    n = min(len(stored.features), len(new.features))
    return stored.features[:n] == new.features[:n] and stored.value_types[:n] == new.value_types[:n]


class FeatureStore:
    """A feature repo's registry and stores, configured by its `feature_store.yaml`.

    >>> store = FeatureStore(repo_path="feature_repo")  # doctest: +SKIP
    >>> [fv.name for fv in store.list_feature_views()]  # doctest: +SKIP
    ['driver_hourly_stats']
    """

    def __init__(
        self,
        repo_path: str | Path | None = None,
        config: RepoConfig | None = None,
        fs_yaml_file: str | Path | None = None,
    ) -> None:
        if config is None:
            config = load_repo_config(
                Path(repo_path) if repo_path is not None else Path.cwd(),
                Path(fs_yaml_file) if fs_yaml_file is not None else None,
            )
        self.config = config
        self.repo_path: Path = config.repo_path
        self.context = StoreContext(config)
        self._registry = self.context.registry
        self._catalog = self.context.catalog
        self._reader: OnlineReader | None = None
        self._reader_online: OnlineStore | None = None

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo_path={str(self.repo_path)!r})"

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def registry(self) -> Registry:
        return self._registry

    def refresh_registry(self) -> None:
        self._registry.refresh()

    # ---- reading the registry -----------------------------------------------------------

    def _specs(self, kind: Kind, allow_cache: bool) -> Mapping[str, Mapping[str, Any]]:
        return self._catalog.specs(kind, allow_cache)

    def _list(self, kind: Kind, allow_cache: bool, tags: Mapping[str, str] | None) -> list[Any]:
        return self._catalog.objects(kind, allow_cache, tags)

    def list_projects(self, allow_cache: bool = False) -> list[str]:
        return sorted(self._registry.snapshot(allow_cache=allow_cache).projects())

    def list_entities(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[Entity]:
        return self._list("entities", allow_cache, tags)

    def list_data_sources(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[DataSource]:
        return self._list("data_sources", allow_cache, tags)

    def list_feature_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[FeatureView]:
        """Batch feature views (not stream or on-demand ones), as Feast lists them."""
        return self._list("feature_views", allow_cache, tags)

    def list_batch_feature_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[FeatureView]:
        return self.list_feature_views(allow_cache, tags)

    def list_stream_feature_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[StreamFeatureView]:
        return self._list("stream_feature_views", allow_cache, tags)

    def list_label_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[LabelView]:
        return self._list("label_views", allow_cache, tags)

    def list_on_demand_feature_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[OnDemandFeatureView]:
        return self._list("on_demand_feature_views", allow_cache, tags)

    def list_all_feature_views(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[Any]:
        return [
            *self.list_feature_views(allow_cache, tags),
            *self.list_stream_feature_views(allow_cache, tags),
            *self.list_on_demand_feature_views(allow_cache, tags),
            *self.list_label_views(allow_cache, tags),
        ]

    def list_feature_services(
        self, allow_cache: bool = False, tags: Mapping[str, str] | None = None
    ) -> list[FeatureService]:
        return self._list("feature_services", allow_cache, tags)

    def get_entity(self, name: str, allow_registry_cache: bool = False) -> Entity:
        entity: Entity = self._catalog.get("entities", name, allow_registry_cache)
        return entity

    def get_data_source(self, name: str, allow_registry_cache: bool = False) -> DataSource:
        source: DataSource = self._catalog.get("data_sources", name, allow_registry_cache)
        return source

    def get_feature_view(self, name: str, allow_registry_cache: bool = False) -> FeatureView:
        view: FeatureView = self._catalog.get("feature_views", name, allow_registry_cache)
        return view

    def get_stream_feature_view(
        self, name: str, allow_registry_cache: bool = False
    ) -> StreamFeatureView:
        view: StreamFeatureView = self._catalog.get(
            "stream_feature_views", name, allow_registry_cache
        )
        return view

    def get_label_view(self, name: str, allow_registry_cache: bool = False) -> LabelView:
        view: LabelView = self._catalog.get("label_views", name, allow_registry_cache)
        return view

    def get_on_demand_feature_view(
        self, name: str, allow_registry_cache: bool = False
    ) -> OnDemandFeatureView:
        view: OnDemandFeatureView = self._catalog.get(
            "on_demand_feature_views", name, allow_registry_cache
        )
        return view

    def get_feature_service(self, name: str, allow_cache: bool = False) -> FeatureService:
        service: FeatureService = self._catalog.get("feature_services", name, allow_cache)
        return service

    # ---- changing the registry ----------------------------------------------------------

    def _stored_contents(self) -> RepoContents:
        contents = RepoContents()
        for kind, _ in KINDS:
            contents.section(kind).extend(self._list(kind, allow_cache=False, tags=None))
        return contents

    def _desired(
        self, objects: Iterable[Any], objects_to_delete: Iterable[Any], partial: bool
    ) -> RepoContents:
        new = RepoContents.from_objects(objects)
        if not partial:
            return new
        # Partial apply: the stored objects stay unless replaced or named for deletion.
        merged = self._stored_contents()
        doomed = {
            (kind, obj.name) for kind, obj in RepoContents.from_objects(objects_to_delete).objects()
        }
        replaced = {(kind, obj.name) for kind, obj in new.objects()}
        for kind, _ in KINDS:
            section = merged.section(kind)
            section[:] = [o for o in section if (kind, o.name) not in doomed | replaced]
            section.extend(new.section(kind))
        merged.projects = new.projects
        return merged

    def _check_projects(self, desired: RepoContents) -> None:
        for project in desired.projects:
            if project.name != self.project:
                raise RepoValidationError(
                    f"Project '{project.name}' is defined in the repo, but feature_store.yaml "
                    f"names the project '{self.project}'; use the same name in both"
                )

    def plan(
        self, desired_repo_contents: RepoContents, skip_source_validation: bool = False
    ) -> RegistryDiff:
        """What `apply` would change, without writing anything."""
        self._check_projects(desired_repo_contents)
        validate_repo(
            desired_repo_contents,
            self.config.resolve,
            skip_source_validation=skip_source_validation,
        )
        self._check_tiles(desired_repo_contents)
        current = {kind: self._specs(kind, allow_cache=False) for kind, _ in KINDS}
        return diff_registry(current, desired_repo_contents)

    def apply(
        self,
        objects: Any,
        objects_to_delete: Iterable[Any] | None = None,
        partial: bool = True,
        skip_source_validation: bool = False,
    ) -> RegistryDiff:
        """Register definitions (one object, a list, or a `RepoContents`).

        With `partial=False` the project ends up holding exactly `objects`, as `repast apply`
        does for a repo; otherwise stored objects not named are kept.
        """
        if isinstance(objects, RepoContents):
            desired = (
                objects
                if not partial
                else self._desired(
                    [o for _, o in objects.objects()], objects_to_delete or [], partial
                )
            )
        else:
            items = objects if isinstance(objects, list | tuple) else [objects]
            desired = self._desired(items, objects_to_delete or [], partial)
        # Everything that can fail on the user's definitions runs before anything is written:
        # the repo checks, then each online view's column types (an unsupported one raises here).
        validate_repo(desired, self.config.resolve, skip_source_validation=skip_source_validation)
        self._check_projects(desired)
        self._check_tiles(desired)
        after = {
            v.name: OnlineView.of(v)
            for v in [*desired.feature_views, *desired.stream_feature_views, *desired.label_views]
        }
        before = self._online_views()
        outcome: list[RegistryDiff] = []

        def mutate(document: dict[str, Any]) -> None:
            now = _now()
            project = document["projects"].setdefault(
                self.project, {"created_timestamp": now, "last_updated_timestamp": now}
            )
            current = {
                kind: {n: r["spec"] for n, r in project.get(kind, {}).items()} for kind, _ in KINDS
            }
            diff = diff_registry(current, desired)
            specs = {(kind, obj.name): obj.to_dict() for kind, obj in desired.objects()}
            for item in diff.items:
                section = project.setdefault(item.kind, {})
                if item.transition is Transition.DELETE:
                    section.pop(item.name, None)
                elif item.transition in (Transition.CREATE, Transition.UPDATE):
                    meta = dict(section.get(item.name, {}).get("meta", {}))
                    meta.setdefault("created_timestamp", now)
                    meta["last_updated_timestamp"] = now
                    section[item.name] = {"spec": specs[(item.kind, item.name)], "meta": meta}
            for spec in desired.projects:
                if project.get("spec") != spec.to_dict():
                    project["spec"] = spec.to_dict()
                    project["last_updated_timestamp"] = now
            if diff.has_changes:
                project["last_updated_timestamp"] = now
            outcome[:] = [diff]

        # Storage for the views to keep first: creating it only adds (tables that nothing reads
        # until the registry names them), so a failure here leaves the registry as it was.
        self.online_store.update(list(after.values()), [])
        self._registry.commit(mutate)
        # Only now, with the registry committed, is the data of removed or changed views deleted.
        self._update_online(before, after)
        return outcome[0]

    def _check_tiles(self, desired: RepoContents) -> None:
        """Refuse, before anything is written, an online aggregated view that the configured
        online store cannot keep tiles for (Redis `layout: feast`). Writes check again: the
        layout may be changed after apply."""
        for view in [*desired.feature_views, *desired.stream_feature_views]:
            if aggregated_view(view) is not None and view.online:
                try:
                    tile_store(self.online_store, view.name)
                except OnlineStoreError as exc:
                    raise RepoValidationError(str(exc)) from exc

    def apply_repo(self, skip_source_validation: bool = False) -> RegistryDiff:
        """`repast apply`: make the project hold exactly what the repo's files define."""
        contents = parse_repo(self.repo_path)
        return self.apply(contents, partial=False, skip_source_validation=skip_source_validation)

    def import_feast_registry(
        self, source: str = "data/registry.db", skip_source_validation: bool = False
    ) -> Imported:
        """`repast import-feast-registry`: the project's objects from a Feast registry file
        (a path, relative to the repo, or `s3://`), applied as `apply` applies them, with the
        feature views' materialization intervals. What cannot be defined is in `.skipped`."""
        imported = feast_import.prepare(self.context, source)
        self.apply(imported.objects, partial=True, skip_source_validation=skip_source_validation)
        feast_import.record_intervals(self.context, imported)
        return imported

    def plan_repo(self, skip_source_validation: bool = False) -> RegistryDiff:
        """`repast plan`: what `repast apply` would change."""
        return self.plan(parse_repo(self.repo_path), skip_source_validation=skip_source_validation)

    def delete_feature_view(self, name: str) -> None:
        """Delete a feature view or a stream feature view and its online data."""
        kind: Kind = "feature_views"
        if name in self._specs("stream_feature_views", allow_cache=False):
            kind = "stream_feature_views"
        elif name in self._specs("label_views", allow_cache=False):
            kind = "label_views"
        else:
            self.get_feature_view(name)
        before = self._online_views()
        self._delete_record(kind, name)
        self._update_online(before, self._online_views())

    def delete_feature_service(self, name: str) -> None:
        self.get_feature_service(name)
        self._delete_record("feature_services", name)

    def _delete_record(self, kind: Kind, name: str) -> None:
        def mutate(document: dict[str, Any]) -> None:
            document["projects"].get(self.project, {}).get(kind, {}).pop(name, None)

        self._registry.commit(mutate)

    def teardown(self) -> None:
        """Delete the online data of every view, then remove the project from the registry."""
        self.online_store.teardown(list(self._online_views().values()))
        self._registry.delete_project(self.project)

    def registry_dump(self) -> dict[str, Any]:
        """The project's part of the registry document (what `repast registry-dump` prints)."""
        snapshot = self._registry.snapshot(allow_cache=False)
        meta = snapshot.project_meta(self.project) or {}
        return {
            "project": self.project,
            "version_id": snapshot.version_id,
            # The repo's `Project` object (description, tags, owner), when it has one.
            "spec": meta.get("spec"),
            **{kind: dict(snapshot.records(self.project, kind)) for kind, _ in KINDS},
        }

    # ---- training sets (offline/historical.py holds the logic) --------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        """Point-in-time correct features for every row of `entity_df`, in its order.

        >>> job = store.get_historical_features(  # doctest: +SKIP
        ...     entity_df, ["driver_hourly_stats:conv_rate"]
        ... )
        >>> job.to_df()  # doctest: +SKIP
        """
        return get_historical_features(
            self.context, entity_df, features, full_feature_names, filter_by_created_timestamp
        )

    # ---- online store, reads, writes, materialization (online/read.py, online/push.py and
    # ---- materialize.py hold the logic; these are thin wrappers) ---------------------------

    @property
    def online_store(self) -> OnlineStore:
        """The configured online store (created on first use), or what replaced it through
        `context.replace_online_store`."""
        return self.context.online_store

    def _online_reader(self) -> OnlineReader:
        online = self.context.online_store
        if self._reader is None or self._reader_online is not online:
            self._reader, self._reader_online = OnlineReader(self.context, online), online
        return self._reader

    def _online_views(self) -> dict[str, OnlineView]:
        return self._catalog.online_views()

    def _update_online(
        self, before: Mapping[str, OnlineView], after: Mapping[str, OnlineView]
    ) -> None:
        doomed = [v for name, v in before.items() if not _rows_still_readable(v, after.get(name))]
        self.online_store.update(list(after.values()), doomed)
        infra = self.online_store.infra()

        def record(document: dict[str, Any]) -> None:
            body = document.get("projects", {}).get(self.project)
            if body is not None and body.get("infra") != infra:
                set_infra(document, self.project, infra)

        self._registry.commit(record)

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> OnlineResponse:
        """The latest values of `features` for each entity row (one store round trip).

        `include_feature_view_version_metadata` is accepted for Feast's signature: Repast keeps
        no feature view versions (every view is `latest`), so there is nothing to add.

        >>> store.get_online_features(  # doctest: +SKIP
        ...     ["driver_hourly_stats:conv_rate"], [{"driver_id": 1001}]
        ... ).to_dict()
        {'driver_id': [1001], 'conv_rate': [0.5]}
        """
        return self._online_reader().read(features, entity_rows, full_feature_names)

    async def get_online_features_async(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> OnlineResponse:
        return await self._online_reader().read_async(features, entity_rows, full_feature_names)

    async def read_online_packed_async(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> PackedRead | None:
        """`get_online_features_async` with the values left as the stored packed rows, for
        writers that skip Arrow (the feature server's JSON); None when the online store or
        the features need the general path."""
        return await self._online_reader().read_packed_async(
            features, entity_rows, full_feature_names
        )

    def write_to_online_store(
        self,
        feature_view_name: str,
        df: Any = None,
        inputs: Any = None,
        allow_registry_cache: bool = True,
        transform_on_write: bool = True,
    ) -> None:
        """Write rows (pandas or Arrow) of one view; older or equal event times are skipped.

        `inputs` is Feast's other name for `df`; the last two arguments are accepted for
        Feast compatibility (the registry snapshot is always the cached one)."""
        data = df if df is not None else inputs
        if data is None:
            raise ValueError("write_to_online_store needs df (a pandas DataFrame or Arrow table)")
        online_push.write_to_online_store(self.context, feature_view_name, data)

    def push(
        self,
        push_source_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        to: PushMode = PushMode.ONLINE,
        transform_on_write: bool = True,
    ) -> None:
        """Write rows to every view fed by the push source: online, offline (appended to the
        batch source's directory, see `write_to_offline_store`) or both."""
        online_push.push(self.context, push_source_name, df, to)

    def write_to_offline_store(
        self,
        feature_view_name: str,
        df: Any,
        allow_registry_cache: bool = True,
        reorder_columns: bool = True,
    ) -> None:
        """Append rows (pandas or Arrow) to the view's batch source as a new Parquet file.

        The columns must be exactly the source's (any order with `reorder_columns`); values
        are cast to the source's types. The source must be a directory (never rewritten)."""
        from repast.offline.write import write_to_offline_store

        write_to_offline_store(self.context, feature_view_name, df, reorder_columns=reorder_columns)

    def materialize(
        self,
        start_date: datetime,
        end_date: datetime,
        feature_views: Sequence[str] | None = None,
        disable_event_timestamp: bool = False,
    ) -> None:
        """Load the latest row per entity in [start_date, end_date] into the online store."""
        materialize_mod.materialize(
            self.context, start_date, end_date, feature_views, disable_event_timestamp
        )

    def materialize_incremental(
        self, end_date: datetime, feature_views: Sequence[str] | None = None
    ) -> None:
        """`materialize` from each view's last materialized end (or now - ttl) to end_date."""
        materialize_mod.materialize_incremental(self.context, end_date, feature_views)
