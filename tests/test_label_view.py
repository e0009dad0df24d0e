"""LabelView and ConflictPolicy: a registered kind of its own (apply, plan, list, get, dump),
fed by pushes that land online and offline, left out of materialization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repast import (
    ConflictPolicy,
    Entity,
    FeatureStore,
    Field,
    FileSource,
    LabelView,
    Project,
    PushSource,
)
from repast.config import RepoConfig
from repast.data_source import PushMode
from repast.errors import FeatureViewNotFoundError, RepoValidationError
from repast.repo import RepoContents
from repast.types import Float32, Int64, String

T = datetime(2024, 1, 1, 12, tzinfo=UTC)
driver = Entity(name="driver", join_keys=["driver_id"])
batch = FileSource(
    name="labels_batch", path="data/labels.parquet", timestamp_field="event_timestamp"
)
push = PushSource(name="labels_push", batch_source=batch)
SCHEMA = [
    Field(name="is_reliable", dtype=Int64),
    Field(name="quality_score", dtype=Float32),
    Field(name="labeler", dtype=String),
]


def labels(**kwargs: object) -> LabelView:
    args: dict[str, object] = {
        "name": "quality",
        "entities": [driver],
        "schema": SCHEMA,
        "source": push,
        "labeler_field": "labeler",
        "conflict_policy": ConflictPolicy.MAJORITY_VOTE,
        "tags": {"feast.io/labeling-method": "table"},
    }
    args.update(kwargs)
    return LabelView(**args)  # type: ignore[arg-type]


def label_rows(driver_id: int, when: datetime, score: float, who: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [driver_id],
            "event_timestamp": [when],
            "is_reliable": [1],
            "quality_score": pd.Series([score], dtype="float32"),
            "labeler": [who],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data").mkdir()
    first = label_rows(1, T, 0.5, "ann")
    pq.write_table(
        pa.Table.from_pandas(first, preserve_index=False), tmp_path / "data" / "labels.parquet"
    )
    config = RepoConfig.model_validate(
        {
            "project": "lab",
            "registry": str(tmp_path / "registry.json"),
            "online_store": {"type": "sqlite", "path": "data/online.db"},
            "repo_path": tmp_path,
        }
    )
    return FeatureStore(config=config)


def test_round_trip_and_fields() -> None:
    view = labels(ttl=timedelta(hours=1))
    again = LabelView.from_dict(view.to_dict())
    assert again == view
    assert again.conflict_policy is ConflictPolicy.MAJORITY_VOTE
    assert (again.labeler_field, again.ttl, again.online) == ("labeler", timedelta(hours=1), True)
    assert again.stream_source == push
    assert again.batch_source == batch
    assert [f.name for f in again.features] == ["is_reliable", "quality_score", "labeler"]
    assert view.to_dict()["conflict_policy"] == "majority_vote"
    assert (
        LabelView.from_dict(
            {**view.to_dict(), "conflict_policy": "labeler_priority"}
        ).conflict_policy
        is ConflictPolicy.LABELER_PRIORITY
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": batch}, "LabelView 'quality': source must be a PushSource"),
        ({"conflict_policy": "first"}, "conflict_policy must be one of LAST_WRITE_WINS"),
        ({"labeler_field": "who"}, "labeler_field 'who' is not a field of the schema"),
    ],
)
def test_bad_definitions_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        labels(**kwargs)


def test_apply_list_get_push_and_dump(store: FeatureStore) -> None:
    view = labels()
    diff = store.apply([driver, batch, push, view])
    assert "Created label view quality" in diff.to_text()
    assert [v.name for v in store.list_label_views()] == ["quality"]
    assert store.get_label_view("quality") == view
    assert "quality" in [v.name for v in store.list_all_feature_views()]
    assert store.list_feature_views() == []  # not a batch view
    with pytest.raises(
        FeatureViewNotFoundError, match="label view 'qualty' does not exist.*quality"
    ):
        store.get_label_view("qualty")
    assert "quality" in store.registry_dump()["label_views"]

    # Label views are fed by pushes, not materialized (as Feast).
    store.materialize(T - timedelta(days=1), T + timedelta(days=1))
    got = store.get_online_features(["quality:labeler"], {"driver_id": [1]}).to_dict()
    assert got["labeler"] == [None]
    store.push("labels_push", label_rows(1, T, 0.75, "bob"), to=PushMode.ONLINE_AND_OFFLINE)
    store.push("labels_push", label_rows(1, T + timedelta(hours=1), 0.25, "cy"))
    got = store.get_online_features(
        ["quality:quality_score", "quality:labeler"], {"driver_id": [1]}
    ).to_dict()
    assert got == {"driver_id": [1], "quality_score": [0.25], "labeler": ["cy"]}
    offline = pq.read_table(store.repo_path / "data" / "labels.parquet")
    assert offline.column("labeler").to_pylist() == ["ann", "bob"]
    training = store.get_historical_features(
        pd.DataFrame({"driver_id": [1], "event_timestamp": [T + timedelta(minutes=5)]}),
        ["quality:labeler"],
    ).to_df()
    assert training["labeler"].tolist() == ["bob"]  # equal times: the later source row wins

    store.delete_feature_view("quality")
    assert store.list_label_views() == []


def test_project_is_accepted_and_stored(store: FeatureStore) -> None:
    contents = RepoContents.from_objects([Project(name="lab", description="labels"), driver])
    assert [p.name for p in contents.projects] == ["lab"]
    store.apply(contents, partial=False)
    assert store.registry_dump()["spec"] == {
        "name": "lab",
        "description": "labels",
        "tags": {},
        "owner": "",
    }
    with pytest.raises(
        RepoValidationError,
        match="Project 'other' is defined in the repo, but feature_store.yaml names the project "
        "'lab'",
    ):
        store.apply(RepoContents.from_objects([Project(name="other"), driver]), partial=False)
