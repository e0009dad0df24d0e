from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repast.errors import RegistryError
from repast.registry import document
from repast.registry.document import (
    KINDS,
    delete_project,
    delete_record,
    dumps,
    ensure_project,
    get_record,
    loads,
    new_document,
    put_record,
    set_infra,
    update_meta,
    validate,
)


def test_new_document_shape() -> None:
    doc = new_document()
    assert doc["schema_version"] == 1
    assert doc["projects"] == {}
    assert len(doc["version_id"]) == 36
    assert doc["last_updated"].endswith("Z")
    assert new_document()["version_id"] != doc["version_id"]


def test_kinds() -> None:
    assert KINDS == (
        "entities",
        "data_sources",
        "feature_views",
        "on_demand_feature_views",
        "stream_feature_views",
        "feature_services",
        "label_views",
    )


def test_dumps_is_sorted_indented_and_round_trips() -> None:
    doc = new_document()
    put_record(doc, "p", "entities", "driver", {"name": "driver", "join_key": "driver_id"})
    data = dumps(doc)
    assert data.endswith(b"\n")
    assert b'\n  "last_updated"' in data  # two-space indent
    keys = list(orjson.loads(data))
    assert keys == sorted(keys)
    assert data.index(b'"last_updated"') < data.index(b'"projects"')
    assert loads(data, "x") == doc
    assert dumps(loads(data, "x")) == data


def test_put_record_creates_project_and_keeps_created_timestamp() -> None:
    doc = new_document()
    first = put_record(doc, "p", "feature_views", "fv", {"name": "fv", "ttl": 1}, now="T1")
    assert first == {
        "spec": {"name": "fv", "ttl": 1},
        "meta": {"created_timestamp": "T1", "last_updated_timestamp": "T1"},
    }
    project = doc["projects"]["p"]
    assert project["created_timestamp"] == "T1"
    assert all(
        project[kind] == ({"fv": first} if kind == "feature_views" else {}) for kind in KINDS
    )
    assert project["infra"] == {}

    update_meta(
        doc, "p", "feature_views", "fv", {"materialization_intervals": [["a", "b"]]}, now="T2"
    )
    second = put_record(doc, "p", "feature_views", "fv", {"name": "fv", "ttl": 2}, now="T3")
    assert second["spec"] == {"name": "fv", "ttl": 2}
    assert second["meta"] == {
        "created_timestamp": "T1",
        "last_updated_timestamp": "T3",
        "materialization_intervals": [["a", "b"]],
    }
    assert project["created_timestamp"] == "T1"
    assert project["last_updated_timestamp"] == "T3"


def test_put_record_copies_the_spec() -> None:
    doc = new_document()
    spec: dict[str, Any] = {"name": "e", "tags": {"a": "1"}}
    put_record(doc, "p", "entities", "e", spec)
    spec["tags"]["a"] = "changed"
    assert get_record(doc, "p", "entities", "e") == {
        "spec": {"name": "e", "tags": {"a": "1"}},
        "meta": get_record(doc, "p", "entities", "e")["meta"],  # type: ignore[index]
    }


def test_get_and_delete_record() -> None:
    doc = new_document()
    assert get_record(doc, "p", "entities", "e") is None
    put_record(doc, "p", "entities", "e", {})
    assert get_record(doc, "p", "entities", "e") is not None
    assert get_record(doc, "p", "data_sources", "e") is None
    assert delete_record(doc, "p", "entities", "e") is True
    assert delete_record(doc, "p", "entities", "e") is False
    assert delete_record(doc, "other", "entities", "e") is False
    with pytest.raises(KeyError):
        update_meta(doc, "p", "entities", "e", {"x": 1})


def test_unknown_kind_is_rejected() -> None:
    doc = new_document()
    with pytest.raises(ValueError, match="unknown registry kind 'views'"):
        put_record(doc, "p", "views", "x", {})
    with pytest.raises(ValueError, match="unknown registry kind"):
        get_record(doc, "p", "feature_view", "x")


def test_projects_and_infra() -> None:
    doc = new_document()
    body = ensure_project(doc, "p", now="T0")
    assert ensure_project(doc, "p") is body
    set_infra(doc, "p", {"sqlite_tables": ["p_fv"]})
    assert doc["projects"]["p"]["infra"] == {"sqlite_tables": ["p_fv"]}
    assert delete_project(doc, "p") is True
    assert delete_project(doc, "p") is False
    assert doc["projects"] == {}


def test_validate_accepts_projects_without_every_kind() -> None:
    doc = new_document()
    doc["projects"]["p"] = {"created_timestamp": "t", "entities": {"e": {"spec": {}, "meta": {}}}}
    validate(doc, "loc")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("schema_version"), "bad or missing schema_version None"),
        (lambda d: d.update(schema_version="1"), "bad or missing schema_version '1'"),
        (lambda d: d.update(version_id=5), "'version_id' must be a string"),
        (lambda d: d.update(projects=[]), "'projects' must be an object"),
        (lambda d: d["projects"].update(p=[]), "project 'p' must be an object"),
        (lambda d: d["projects"].update(p={"entities": []}), "'p.entities' must be an object"),
        (
            lambda d: d["projects"].update(p={"entities": {"e": {"spec": {}}}}),
            "'p.entities.e' must be",
        ),
        (lambda d: d["projects"].update(p={"infra": 1}), "'p.infra' must be an object"),
    ],
)
def test_validate_names_the_problem_and_location(mutate: object, message: str) -> None:
    doc = new_document()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(RegistryError, match="registry /r/registry.json is corrupt: ") as info:
        validate(doc, "/r/registry.json")
    assert message in str(info.value)


def test_loads_rejects_bad_json_and_non_objects() -> None:
    with pytest.raises(RegistryError, match=r"registry s3://b/k is corrupt: not valid JSON"):
        loads(b'{"schema_version": 1, "proj', "s3://b/k")
    with pytest.raises(RegistryError, match="expected a JSON object, got list"):
        loads(b"[]", "s3://b/k")


def test_newer_schema_version_asks_for_upgrade() -> None:
    doc = new_document()
    doc["schema_version"] = document.SCHEMA_VERSION + 1
    with pytest.raises(RegistryError) as info:
        loads(dumps(doc), "/r/registry.json")
    message = str(info.value)
    assert "registry /r/registry.json has schema_version 2" in message
    assert "upgrade repast" in message


def test_a_feast_registry_is_named_as_such() -> None:
    # Feast's Registry message: a length-delimited entity (field 1) and a version string (4).
    feast = bytes.fromhex("0a050a03647269") + b"\x22\x03abc" + b"\x28\x01"
    with pytest.raises(RegistryError, match=r"registry r\.db is a Feast registry \(protobuf\)"):
        document.loads(feast, "r.db")


@given(st.binary(max_size=40))
def test_bytes_that_open_like_json_are_corrupt_not_feast(tail: bytes) -> None:
    # "{" is field 15 with the deprecated group wire type, which no Feast registry holds.
    data = b"{" + tail
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        with pytest.raises(RegistryError, match="is corrupt: not valid JSON"):
            document.loads(data, "r.json")
