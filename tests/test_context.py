"""StoreContext and Catalog: the narrow view of a feature store that operations receive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feature_repos import write_full_repo
from repast import FeatureStore, FeatureView, StreamFeatureView
from repast.context import Catalog, StoreContext
from repast.errors import EntityNotFoundError, FeatureServiceNotFoundError, FeatureViewNotFoundError
from repast.online import OnlineStore


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    store = FeatureStore(repo_path=write_full_repo(tmp_path))
    store.apply_repo()
    return store


def test_the_facade_holds_one_context(store: FeatureStore) -> None:
    ctx = store.context
    assert isinstance(ctx, StoreContext)
    assert ctx.config is store.config
    assert ctx.registry is store.registry
    assert ctx.project == store.project
    assert isinstance(ctx.catalog, Catalog)


def test_catalog_lists_and_gets_by_kind(store: FeatureStore) -> None:
    catalog = store.context.catalog
    assert sorted(e.name for e in catalog.objects("entities")) == ["customer", "driver"]
    assert [v.name for v in catalog.objects("stream_feature_views")] == ["driver_stream"]
    assert catalog.get("feature_views", "driver_stats").name == "driver_stats"
    assert set(catalog.specs("feature_services")) == {"aliased_service", "driver_service"}


def test_catalog_filters_by_tags(store: FeatureStore) -> None:
    catalog = store.context.catalog
    tagged = {v.name: v.tags for v in catalog.objects("feature_views") if v.tags}
    assert tagged, "the full repo tags at least one view"
    name, tags = next(iter(tagged.items()))
    key, value = next(iter(tags.items()))
    assert name in [v.name for v in catalog.objects("feature_views", tags={key: value})]
    assert catalog.objects("feature_views", tags={key: value + "-not"}) == []


@pytest.mark.parametrize(
    ("kind", "name", "error", "message"),
    [
        ("feature_views", "driver_stat", FeatureViewNotFoundError, "did you mean 'driver_stats'"),
        ("entities", "drivr", EntityNotFoundError, "entity 'drivr' does not exist"),
        ("feature_services", "x", FeatureServiceNotFoundError, "feature service 'x'"),
    ],
)
def test_catalog_get_names_what_is_missing(
    store: FeatureStore, kind: Any, name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store.context.catalog.get(kind, name)


def test_online_feature_views_are_batch_and_stream_views(store: FeatureStore) -> None:
    catalog = store.context.catalog
    views = catalog.online_feature_views()
    assert all(isinstance(v, FeatureView) for v in views)
    names = {v.name for v in views}
    assert {"driver_stream", "driver_stats"} <= names
    assert "conv_plus_bonus" not in names  # an on-demand view has no online rows
    assert isinstance(catalog.online_feature_view("driver_stream"), StreamFeatureView)
    assert set(catalog.online_views()) == names
    with pytest.raises(FeatureViewNotFoundError, match="driver_stats"):
        catalog.online_feature_view("driver_stas")


class _Counting:
    """A wrapper in front of the online store that counts the reads it forwards."""

    def __init__(self, inner: OnlineStore) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("read"):
            self.reads += 1
        return attribute


def test_replace_online_store_routes_every_later_read(store: FeatureStore) -> None:
    store = FeatureStore(repo_path=store.repo_path)
    ctx = store.context
    assert ctx.open_online_store is None  # nothing created before first use
    original = store.online_store
    assert ctx.open_online_store is original
    wrapper = _Counting(original)
    assert ctx.replace_online_store(wrapper) is original
    assert store.online_store is wrapper
    store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}])
    assert wrapper.reads >= 1
    ctx.replace_online_store(original)
    before = wrapper.reads
    store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}])
    assert wrapper.reads == before  # the facade's cached reader followed the swap back
