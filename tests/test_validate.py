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
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="label", dtype=String),
        Field(name="f_bytes", dtype=Bytes),
        Field(name="f_bool", dtype=Bool),
    ],
    source=driver_events,
    timestamp_field="event_timestamp",
    aggregations=[
        Aggregation(column="conv_rate", function="max", time_window=timedelta(hours=1)),
        Aggregation(
            column="conv_rate", function="sum", time_window=timedelta(days=1), name="total"
        ),
        Aggregation(column="label", function="last", time_window=timedelta(days=1)),
        Aggregation(column="f_bytes", function="last", time_window=timedelta(days=1)),
        Aggregation(column="f_bool", function="last", time_window=timedelta(days=1)),
    ],
)
"""
)


def test_online_last_of_a_bool_is_refused_at_apply(tmp_path: Path) -> None:
    # Strings and bytes are kept online (the view applies without the bool aggregation).
    repo = write_repo(tmp_path / "repo", AGGREGATED)
    store = FeatureStore(repo_path=repo)
    message = (
        r"StreamFeatureView 'driver_windowed': aggregation 'last_f_bool_86400s': last of a "
        r"Bool column is computed offline only; online tiles keep integers, floats, strings "
        r"and bytes \(set online=False\)"
    )
    with pytest.raises(RepoValidationError, match=message):
        store.apply_repo()
    with pytest.raises(RepoValidationError, match=message):
        store.plan_repo()
    # Nothing was registered.
    assert store.list_stream_feature_views() == []
    without_bool = AGGREGATED.replace(
        'Aggregation(column="f_bool", function="last", time_window=timedelta(days=1)),', ""
    )
    store = FeatureStore(repo_path=write_repo(tmp_path / "ok", without_bool))
    store.apply_repo()
    view = store.get_stream_feature_view("driver_windowed")
    assert [(f.name, str(f.dtype)) for f in view.features][2:] == [
        ("last_label_86400s", "String"),
        ("last_f_bytes_86400s", "Bytes"),
    ]


def test_stream_feature_views_without_aggregations_apply(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path / "repo", EVERY_KIND))
    store.apply_repo()
    assert [v.name for v in store.list_stream_feature_views()] == ["driver_stream"]
