from __future__ import annotations

import json

import pytest

from repast import Entity, ValueType
from repast.errors import RepoValidationError


def test_feast_defaults() -> None:
    e = Entity(name="driver")
    assert e.join_keys == ["driver"]
    assert e.join_key == "driver"
    assert e.value_type is ValueType.UNKNOWN
    assert (e.description, e.tags, e.owner) == ("", {}, "")


def test_feast_usage() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"], description="a driver")
    assert driver.join_key == "driver_id"
    assert repr(driver) == (
        "Entity(name='driver', join_key='driver_id', value_type=ValueType.UNKNOWN)"
    )


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        Entity("driver")  # type: ignore[call-arg]


def test_round_trip() -> None:
    e = Entity(
        name="driver",
        join_keys=["driver_id"],
        value_type=ValueType.INT64,
        description="d",
        tags={"team": "x"},
        owner="me@example.com",
    )
    d = e.to_dict()
    assert d == {
        "name": "driver",
        "join_key": "driver_id",
        "value_type": "INT64",
        "description": "d",
        "tags": {"team": "x"},
        "owner": "me@example.com",
    }
    back = Entity.from_dict(json.loads(json.dumps(d)))
    assert back == e
    assert back.to_dict() == d


def test_equality_and_hash_by_name() -> None:
    a = Entity(name="driver", join_keys=["driver_id"])
    b = Entity(name="driver", join_keys=["id"])
    assert a != b
    assert a == Entity(name="driver", join_keys=["driver_id"])
    assert hash(a) == hash(b)
    assert len({a, Entity(name="driver", join_keys=["driver_id"])}) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "Entity: name must be a non-empty string"),
        (
            {"name": "driver", "join_keys": ["a", "b"]},
            "Entity 'driver': join_keys may hold at most one name",
        ),
        ({"name": "driver", "join_keys": "driver_id"}, "Entity 'driver': join_keys must be a list"),
        ({"name": "driver", "join_keys": [""]}, "Entity 'driver': join key must be a non-empty"),
        ({"name": "driver", "value_type": "INT64"}, "Entity 'driver': value_type must be a"),
        ({"name": "driver", "tags": {"a": None}}, "Entity 'driver': tags must map strings"),
        ({"name": "driver", "owner": None}, "Entity 'driver': owner must be a string"),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RepoValidationError, match=message):
        Entity(**kwargs)  # type: ignore[arg-type]


def test_from_dict_unknown_value_type() -> None:
    with pytest.raises(RepoValidationError, match="Entity 'driver': unknown value_type 'INT99'"):
        Entity.from_dict({"name": "driver", "join_key": "driver_id", "value_type": "INT99"})
