"""Apply-time validation of StreamFeatureViews with aggregations (docs/aggregations.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feature_repos import EVERY_KIND, write_repo
from repast import FeatureStore
from repast.errors import RepoValidationError

AGGREGATED = (
    EVERY_KIND.replace("from repast import (\n", "from repast import (\n    Aggregation,\n")
    + """
windowed = StreamFeatureView(
    name="driver_windowed",
    entities=[driver],
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="label", dtype=String)],
    source=driver_events,
    timestamp_field="event_timestamp",
    aggregations=[
        Aggregation(column="conv_rate", function="max", time_window=timedelta(hours=1)),
        Aggregation(
            column="conv_rate", function="sum", time_window=timedelta(days=1), name="total"
        ),
        Aggregation(column="label", function="last", time_window=timedelta(days=1)),
    ],
)
"""
)


def test_online_last_of_a_string_is_refused_at_apply(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", AGGREGATED)
    store = FeatureStore(repo_path=repo)
    message = (
        r"StreamFeatureView 'driver_windowed': aggregation 'last_label_86400s': last of a "
        r"String column is computed offline only; online tiles keep numbers \(set online=False\)"
    )
    with pytest.raises(RepoValidationError, match=message):
        store.apply_repo()
    with pytest.raises(RepoValidationError, match=message):
        store.plan_repo()
    # Nothing was registered.
    assert store.list_stream_feature_views() == []


def test_stream_feature_views_without_aggregations_apply(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", EVERY_KIND))
    store.apply_repo()
    assert [v.name for v in store.list_stream_feature_views()] == ["driver_stream"]
