from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_repos import write_full_repo, write_repo
from repast import Entity, FeatureStore, FeatureView, Field, FileSource
from repast.diff import Transition
from repast.errors import (
    EntityError,
    EntityNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    RepastError,
    RepoValidationError,
)
from repast.types import Float32, Float64, Int64
from services import RedisServer

ENTITY_AND_VIEW = """
from datetime import UTC, datetime, timedelta
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours={ttl}),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
    source=source,
)
"""


def transitions(diff: object) -> dict[tuple[str, str], str]:
    return {(i.kind, i.name): i.transition.value for i in diff.items}  # type: ignore[attr-defined]


def test_apply_full_repo_registers_every_object(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_full_repo(tmp_path))
    diff = store.apply_repo()
    assert all(item.transition is Transition.CREATE for item in diff.items)
    dump = store.registry_dump()
    assert sorted(dump["entities"]) == ["customer", "driver"]
    assert sorted(dump["feature_views"]) == [
        "all_types",
        "customer_profile",
        "driver_fresh",
        "driver_stats",
    ]
    assert sorted(dump["stream_feature_views"]) == ["driver_stream"]
    assert sorted(dump["on_demand_feature_views"]) == ["conv_plus_bonus"]
    assert sorted(dump["feature_services"]) == ["aliased_service", "driver_service"]
    assert "driver_push" in dump["data_sources"]
    assert "request" in dump["data_sources"]
    # The schema of customer_profile was read from its Parquet file (join key renamed).
    profile = store.get_feature_view("customer_profile")
    assert [f.name for f in profile.features] == ["age", "score"]
    assert [f.dtype for f in profile.features] == [Int64, Float64]
    assert profile.join_keys == ["customer_id"]
    # Objects read back equal the ones defined.
    stream = store.get_stream_feature_view("driver_stream")
    assert stream.aggregations == []
    assert stream.timestamp_field == "event_timestamp"
    assert store.get_feature_service("driver_service").tags == {"stage": "prod"}


def test_second_apply_changes_nothing_and_plan_says_so(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_full_repo(tmp_path))
    store.apply_repo()
    plan = store.plan_repo()
    assert not plan.has_changes
    assert "No changes to registry" in plan.to_text()
    assert set(transitions(plan).values()) == {"Unchanged"}


def test_plan_shows_create_update_delete_and_writes_nothing(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, ENTITY_AND_VIEW.format(ttl=2))
    store = FeatureStore(repo_path=repo)
    plan = store.plan_repo()
    assert transitions(plan)[("feature_views", "driver_stats")] == "Created"
    assert store.list_feature_views() == []  # plan wrote nothing

    store.apply_repo()
    (repo / "definitions.py").write_text(
        ENTITY_AND_VIEW.format(ttl=3).replace(
            "fv = FeatureView", 'other = Entity(name="other", join_keys=["o"])\nfv = FeatureView'
        )
    )
    plan = store.plan_repo()
    got = transitions(plan)
    assert got[("feature_views", "driver_stats")] == "Updated"
    assert got[("entities", "other")] == "Created"
    assert got[("entities", "driver")] == "Unchanged"
    update = next(i for i in plan.items if i.name == "driver_stats")
    assert [(c.path, c.old, c.new) for c in update.changes] == [("ttl", 7200, 10800)]
    assert "Updated feature view driver_stats\n\tttl: 7200 -> 10800" in plan.to_text()

    store.apply_repo()
    assert store.get_feature_view("driver_stats").ttl == timedelta(hours=3)
    (repo / "definitions.py").write_text(
        "from repast import Entity\ndriver = Entity(name='driver', join_keys=['driver_id'])\n"
    )
    got = transitions(store.plan_repo())
    assert got[("feature_views", "driver_stats")] == "Deleted"
    assert got[("entities", "other")] == "Deleted"
    assert got[("data_sources", "src")] == "Deleted"
    store.apply_repo()
    assert store.list_feature_views() == []
    assert [e.name for e in store.list_entities()] == ["driver"]


def test_partial_apply_keeps_other_objects(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path, ENTITY_AND_VIEW.format(ttl=2)))
    store.apply_repo()
    customer = Entity(name="customer", join_keys=["customer_id"])
    store.apply(customer)
    assert sorted(e.name for e in store.list_entities()) == ["customer", "driver"]
    store.apply([], objects_to_delete=[customer])
    assert [e.name for e in store.list_entities()] == ["driver"]
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]


def test_sdk_apply_of_objects(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path, "x = 1\n"))
    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(
        name="s", path="data/driver_stats.parquet", timestamp_field="event_timestamp"
    )
    view = FeatureView(
        name="v",
        entities=[driver],
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=source,
    )
    store.apply([driver, view])
    assert store.get_feature_view("v") == view
    assert store.get_data_source("s") == source
    assert store.list_feature_views(tags={"team": "x"}) == []


UNKNOWN_ENTITY = """
from repast import Entity, FeatureView, FileSource
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(name="fv", entities=["drivr"], source=src)
"""

DUPLICATE_VIEW_NAMES = """
from repast import Entity, FeatureView, FileSource, PushSource
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
a = FeatureView(name="stats", entities=[driver], source=src)
from repast import StreamFeatureView
push = PushSource(name="push", batch_source=src)
b = StreamFeatureView(name="stats", entities=[driver], source=push)
"""

DUPLICATE_FEATURE = """
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32, String
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(
    name="fv",
    entities=[driver],
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="conv_rate", dtype=Float32)],
    source=src,
)
"""

MISSING_FILE = """
from repast import Entity, FeatureView, FileSource
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/nope.parquet", timestamp_field="event_timestamp")
fv = FeatureView(name="fv", entities=[driver], source=src)
"""

MISSING_COLUMN = """
from repast import Entity, FeatureView, Field, FileSource
from repast.types import Float32
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(
    name="fv", entities=[driver], schema=[Field(name="conv_rat", dtype=Float32)], source=src
)
"""

MISSING_TIMESTAMP = """
from repast import Entity, FeatureView, FileSource
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_time")
fv = FeatureView(name="fv", entities=[driver], source=src)
"""

SERVICE_UNKNOWN_FEATURE = """
from repast import Entity, FeatureService, FeatureView, Field, FileSource
from repast.types import Float32
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="src", path="data/driver_stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(
    name="fv", entities=[driver], schema=[Field(name="conv_rate", dtype=Float32)], source=src
)
svc = FeatureService(name="svc", features=[fv[["conv_rat"]]])
"""


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        (UNKNOWN_ENTITY, "FeatureView 'fv': entity 'drivr' is not defined; did you mean 'driver'"),
        (DUPLICATE_VIEW_NAMES, "duplicate name 'stats'"),
        (DUPLICATE_FEATURE, r"definitions\.py: FeatureView 'fv': schema names 'conv_rate' twice"),
        (MISSING_FILE, "FileSource 'src': file .*data/nope.parquet does not exist"),
        (
            MISSING_COLUMN,
            "FeatureView 'fv': feature column 'conv_rat' is not in data/driver_stats.parquet; "
            "did you mean 'conv_rate'",
        ),
        (
            MISSING_TIMESTAMP,
            "FeatureView 'fv': timestamp field column 'event_time' is not in .*; "
            "did you mean 'event_timestamp'",
        ),
        (
            SERVICE_UNKNOWN_FEATURE,
            r"definitions\.py: FeatureView 'fv': has no feature 'conv_rat'; "
            "did you mean 'conv_rate'",
        ),
    ],
    ids=[
        "unknown-entity",
        "duplicate-view-names",
        "duplicate-feature",
        "missing-file",
        "missing-column",
        "missing-timestamp",
        "service-unknown-feature",
    ],
)
def test_validation_errors_write_nothing(tmp_path: Path, definitions: str, message: str) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path, definitions))
    with pytest.raises(RepoValidationError, match=message):
        store.apply_repo()
    assert store.list_projects() == []
    assert not (tmp_path / "data" / "registry.json").exists()


def test_validation_error_keeps_existing_registry(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, ENTITY_AND_VIEW.format(ttl=2))
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    before = (repo / "data" / "registry.json").read_bytes()
    (repo / "definitions.py").write_text(MISSING_COLUMN)
    with pytest.raises(RepoValidationError):
        store.apply_repo()
    assert (repo / "data" / "registry.json").read_bytes() == before


def test_not_found_errors_suggest_names(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_repo(tmp_path, ENTITY_AND_VIEW.format(ttl=2)))
    store.apply_repo()
    with pytest.raises(
        FeatureViewNotFoundError,
        match="feature view 'driver_stat' does not exist in project 'test_project'; "
        "did you mean 'driver_stats'",
    ):
        store.get_feature_view("driver_stat")
    with pytest.raises(EntityNotFoundError, match="entity 'nobody'"):
        store.get_entity("nobody")
    with pytest.raises(FeatureServiceNotFoundError):
        store.get_feature_service("svc")


def test_teardown_removes_the_project_only(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path / "a",
        ENTITY_AND_VIEW.format(ttl=2),
        project="one",
        registry=str(tmp_path / "registry.json"),
    )
    other = write_repo(
        tmp_path / "b",
        ENTITY_AND_VIEW.format(ttl=2),
        project="two",
        registry=str(tmp_path / "registry.json"),
    )
    FeatureStore(repo_path=repo).apply_repo()
    FeatureStore(repo_path=other).apply_repo()
    store = FeatureStore(repo_path=repo)
    assert store.list_projects() == ["one", "two"]
    store.teardown()
    assert store.list_projects() == ["two"]
    assert store.list_feature_views() == []
    assert [v.name for v in FeatureStore(repo_path=other).list_feature_views()] == ["driver_stats"]


def _apply_many(repo: str, times: int) -> None:
    store = FeatureStore(repo_path=repo)
    for i in range(times):
        extra = Entity(name=f"extra_{i}", join_keys=[f"k{i}"])
        store.apply(extra)


def _race_two_projects(tmp_path: Path, registry: str, times: int) -> None:
    """Two processes apply `times` entities each to their own project of one registry."""
    repos = [
        write_repo(tmp_path / name, "x = 1\n", project=name, registry=registry)
        for name in ("alpha", "beta")
    ]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_apply_many, args=(str(r), times)) for r in repos]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert FeatureStore(repo_path=repos[0]).list_projects() == ["alpha", "beta"]
    for repo in repos:
        entities = FeatureStore(repo_path=repo).list_entities()
        assert sorted(e.name for e in entities) == sorted(f"extra_{i}" for i in range(times))


def test_concurrent_applies_on_a_file_registry_lose_nothing(tmp_path: Path) -> None:
    _race_two_projects(tmp_path, str(tmp_path / "registry.json"), 15)


def test_concurrent_applies_on_an_s3_registry_lose_nothing(
    tmp_path: Path, s3_env: object, s3_bucket: str
) -> None:
    _race_two_projects(tmp_path, f"s3://{s3_bucket}/team/registry.json", 8)


def test_full_repo_applies_to_s3(tmp_path: Path, s3_env: object, s3_bucket: str) -> None:
    repo = write_full_repo(tmp_path, registry=f"s3://{s3_bucket}/registry.json")
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    assert not store.plan_repo().has_changes
    assert sorted(store.registry_dump()["feature_views"]) == [
        "all_types",
        "customer_profile",
        "driver_fresh",
        "driver_stats",
    ]


def test_delete_feature_view_of_either_kind(tmp_path: Path) -> None:
    store = FeatureStore(repo_path=write_full_repo(tmp_path))
    store.apply_repo()
    store.delete_feature_view("driver_stream")
    store.delete_feature_view("driver_stats")
    assert [v.name for v in store.list_stream_feature_views()] == []
    assert "driver_stats" not in [v.name for v in store.list_feature_views()]
    with pytest.raises(FeatureViewNotFoundError, match="'driver_stats' does not exist"):
        store.delete_feature_view("driver_stats")


TWO_FEATURES = ENTITY_AND_VIEW.format(ttl=0)


def _online_trips(store: FeatureStore) -> list[object]:
    response = store.get_online_features(["driver_stats:trips"], {"driver_id": [1001]})
    return response.to_dict()["trips"]


def _applied_with_trips(repo: Path, trips: int) -> FeatureStore:
    """The repo applied, with driver 1001's row online (`trips` set)."""
    store = FeatureStore(repo_path=repo)
    store.apply_repo()
    store.write_to_online_store(
        "driver_stats",
        pa.table(
            {
                "driver_id": [1001],
                "event_timestamp": pa.array([datetime(2024, 1, 1, tzinfo=UTC)]),
                "conv_rate": pa.array([0.5], pa.float32()),
                "trips": [trips],
            }
        ),
    )
    return store


def test_apply_keeps_online_rows_unless_they_became_unreadable(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, TWO_FEATURES)
    store = _applied_with_trips(repo, 7)
    assert _online_trips(store) == [7]
    # A feature added at the end: the stored rows still read, the new feature is null.
    grown = TWO_FEATURES.replace(
        'Field(name="trips", dtype=Int64)',
        'Field(name="trips", dtype=Int64), Field(name="label", dtype=String)',
    ).replace(
        "from repast.types import Float32, Int64", "from repast.types import Float32, Int64, String"
    )
    (repo / "definitions.py").write_text(grown)
    store.apply_repo()
    assert _online_trips(store) == [7]
    label = store.get_online_features(["driver_stats:label"], {"driver_id": [1001]})
    assert label.to_dict()["label"] == [None]
    # A retyped feature: the rows no longer decode, so they are dropped, and writes still work.
    (repo / "definitions.py").write_text(
        grown.replace('name="trips", dtype=Int64', 'name="trips", dtype=Float32')
    )
    store.apply_repo()
    assert _online_trips(store) == [None]
    store.write_to_online_store(
        "driver_stats",
        pa.table(
            {
                "driver_id": [1001],
                "event_timestamp": pa.array([datetime(2024, 1, 1, tzinfo=UTC)]),
                "conv_rate": pa.array([0.5], pa.float32()),
                "trips": pa.array([2.5], pa.float32()),
                "label": ["x"],
            }
        ),
    )
    assert _online_trips(store) == [2.5]


def _fail(*_: object, **__: object) -> None:
    raise RuntimeError("injected failure")


# Every step of an apply that runs before its commit, and how to make it fail.
FAILURE_POINTS = {
    "validation": lambda store, mp: mp.setattr("repast.feature_store.validate_repo", _fail),
    "online types": lambda store, mp: mp.setattr(
        "repast.feature_store.OnlineView.of", classmethod(_fail)
    ),
    "online storage": lambda store, mp: mp.setattr(store.online_store, "update", _fail),
    "registry write": lambda store, mp: mp.setattr(store.registry.store, "write", _fail),
}


@pytest.mark.parametrize("step", list(FAILURE_POINTS))
def test_a_failed_apply_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    repo = write_repo(tmp_path, TWO_FEATURES)
    store = _applied_with_trips(repo, 7)
    registry_file = repo / "data" / "registry.json"
    stored = registry_file.read_bytes()
    # The change would retype `trips`, which drops the view's online rows once committed.
    (repo / "definitions.py").write_text(
        TWO_FEATURES.replace('name="trips", dtype=Int64', 'name="trips", dtype=Float32')
    )
    with monkeypatch.context() as mp:
        FAILURE_POINTS[step](store, mp)
        with pytest.raises(RuntimeError, match="injected failure"):
            store.apply_repo()
    assert registry_file.read_bytes() == stored
    fresh = FeatureStore(repo_path=repo)
    assert fresh.get_feature_view("driver_stats").features[1].dtype == Int64
    assert _online_trips(fresh) == [7]  # the rows the change would have dropped are still there
    # Nothing is left half done: the same apply then succeeds, and so does teardown.
    fresh.apply_repo()
    assert fresh.get_feature_view("driver_stats").features[1].dtype == Float32
    assert _online_trips(fresh) == [None]
    fresh.teardown()
    assert fresh.list_projects() == []


# -- bad input through the SDK: typed errors, never a hang (issue 13) ------------------------

SDK_ANSWER_WITHIN = 30.0  # bound for a hang; a passing call returns in milliseconds


@pytest.fixture(scope="module")
def demo_sdk(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[FeatureStore]:
    from server_helpers import demo_repo, redis_config

    repo = demo_repo(tmp_path_factory.mktemp("sdk-demo"), redis_config(redis_server))
    store = FeatureStore(repo_path=repo)
    yield store
    store.online_store.close()


def _bounded(call: Callable[[], object]) -> object:
    """`call()`'s result or its exception, raised; a call still running after the bound
    fails the test (it would have hung)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(SDK_ANSWER_WITHIN)


def test_sdk_reads_of_empty_and_fractional_keys(demo_sdk: FeatureStore) -> None:
    features = ["driver_hourly_stats_fresh:avg_daily_trips"]
    empty = _bounded(lambda: demo_sdk.get_online_features(features, {"driver_id": []}))
    assert empty.to_dict() == {"driver_id": [], "avg_daily_trips": []}  # type: ignore[attr-defined]
    with pytest.raises(EntityError, match="row 1 is 1001.7"):
        _bounded(lambda: demo_sdk.get_online_features(features, {"driver_id": [1, 1001.7]}))
    odfv = ["transformed_conv_rate:conv_rate_plus_val1"]
    rows: dict[str, list[Any]] = {"driver_id": [1001], "val_to_add": ["x"], "val_to_add_2": [1]}
    with pytest.raises(EntityError, match="request data 'val_to_add': row 0"):
        _bounded(lambda: demo_sdk.get_online_features(odfv, rows))


SDK_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
SDK_COLUMNS = st.dictionaries(
    st.sampled_from(
        ["driver_id", "val_to_add", "val_to_add_2", "event_timestamp", "created", "avg_daily_trips"]
    ),
    st.lists(SDK_VALUES, max_size=3),
    min_size=1,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(columns=SDK_COLUMNS, method=st.sampled_from(["read", "odfv", "push", "write"]))
def test_sdk_bad_input_raises_typed_errors_never_hangs(
    demo_sdk: FeatureStore, columns: dict[str, list[object]], method: str
) -> None:
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: demo_sdk.get_online_features(
            ["driver_hourly_stats_fresh:avg_daily_trips"], columns
        ),
        "odfv": lambda: demo_sdk.get_online_features(
            ["transformed_conv_rate:conv_rate_plus_val1"], columns
        ),
        "push": lambda: demo_sdk.push("driver_stats_push_source", columns),
        "write": lambda: demo_sdk.write_to_online_store("driver_hourly_stats", columns),
    }
    # A typed error is what a caller catches; anything else fails the test.
    with contextlib.suppress(RepastError):
        _bounded(calls[method])


def test_sdk_push_of_booleans_among_numbers_is_refused(demo_sdk: FeatureStore) -> None:
    from repast.errors import RowsError

    now = datetime.now(UTC)
    rows = {
        "driver_id": [1001.0, True],  # pyarrow infers doubles [1001.0, 1.0]
        "event_timestamp": [now, now],
        "created": [now, now],
        "conv_rate": [0.1, 0.2],
        "acc_rate": [0.1, 0.2],
        "avg_daily_trips": [1, 2],
    }
    with pytest.raises(RowsError, match="column 'driver_id': row 1 is True, among numbers"):
        _bounded(lambda: demo_sdk.push("driver_stats_push_source", rows))
