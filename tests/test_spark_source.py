"""`SparkSource`: Feast's signature, its checks, and its registry round trip (no pyspark needed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repast import SparkSource
from repast.data_source import data_source_from_dict
from repast.errors import RepoValidationError
from repast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
    SparkSource as FeastPathSparkSource,
)


def test_feast_import_path_is_the_same_class() -> None:
    assert FeastPathSparkSource is SparkSource


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "t", "table": "db.trips"},
        {"table": "db.trips"},  # the table names the source
        {"name": "q", "query": "SELECT * FROM trips"},
        {"name": "p", "path": "s3a://lake/trips", "file_format": "delta"},
    ],
)
def test_round_trip(kwargs: dict[str, Any]) -> None:
    source = SparkSource(
        **kwargs,
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"drv": "driver_id"},
        tags={"team": "a"},
    )
    again = data_source_from_dict(source.to_dict())
    assert isinstance(again, SparkSource)
    assert again == source
    assert again.to_dict()["type"] == "spark"
    assert source.name == kwargs.get("name", kwargs.get("table"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x"}, "exactly one of table, query or path (got none)"),
        ({"name": "x", "table": "t", "query": "q"}, "got ['table', 'query']"),
        ({"name": "x", "path": "/d"}, "file_format is required with a path"),
        ({"name": "x", "path": "/d", "file_format": "xlsx"}, "file_format 'xlsx' is not one of"),
        ({"query": "SELECT 1"}, "a name is required"),
        (
            {"name": "x", "table": "t", "timestamp_field": "ts", "created_timestamp_column": "ts"},
            "must be different columns",
        ),
    ],
)
def test_bad_definitions_name_the_source(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RepoValidationError, match="SparkSource") as error:
        SparkSource(**kwargs)
    assert message in str(error.value)


@given(
    table=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    query=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    path=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
)
def test_exactly_one_location_or_a_typed_error(
    table: str | None, query: str | None, path: str | None
) -> None:
    given_ = [v for v in (table, query, path) if v]
    if len(given_) != 1:
        with pytest.raises(RepoValidationError, match="exactly one of table, query or path"):
            SparkSource(name="s", table=table, query=query, path=path, file_format="parquet")
        return
    source = SparkSource(name="s", table=table, query=query, path=path, file_format="parquet")
    assert data_source_from_dict(source.to_dict()) == source
