"""`Entity`: the key a feature is about (`feast.entity`), e.g. a driver keyed by `driver_id`."""

from __future__ import annotations

from typing import Any

from repast._spec import Spec, check_name, check_str, check_tags, fail, where
from repast.value_type import ValueType

__all__ = ["Entity"]


class Entity(Spec):
    """A named entity with one join key (default: its name).

    `value_type` defaults to `ValueType.UNKNOWN`; apply then takes the type from the
    entity column of the views that use it. Unlike Feast, leaving it out does not warn.

    >>> Entity(name="driver", join_keys=["driver_id"]).join_key
    'driver_id'
    """

    def __init__(
        self,
        *,
        name: str,
        join_keys: list[str] | None = None,
        value_type: ValueType | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("Entity", name)
        at = where("Entity", name)
        if join_keys is None:
            join_keys = [name]
        if not isinstance(join_keys, list | tuple):
            fail(at, f"join_keys must be a list of one name, got {join_keys!r}")
        if len(join_keys) > 1:
            fail(at, "join_keys may hold at most one name")
        if not join_keys:
            join_keys = [name]
        if not isinstance(join_keys[0], str) or not join_keys[0]:
            fail(at, f"join key must be a non-empty string, got {join_keys[0]!r}")
        self.join_keys: list[str] = [join_keys[0]]
        if value_type is None:
            value_type = ValueType.UNKNOWN
        if not isinstance(value_type, ValueType):
            fail(at, f"value_type must be a ValueType, got {value_type!r}")
        self.value_type = value_type
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.owner: str = check_str(at, "owner", owner)

    @property
    def join_key(self) -> str:
        return self.join_keys[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_key": self.join_key,
            "value_type": self.value_type.name,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entity:
        try:
            value_type = ValueType[d.get("value_type", "UNKNOWN")]
        except KeyError:
            fail(where("Entity", d.get("name")), f"unknown value_type {d.get('value_type')!r}")
        return cls(
            name=d["name"],
            join_keys=[d["join_key"]],
            value_type=value_type,
            description=d.get("description", ""),
            tags=d.get("tags"),
            owner=d.get("owner", ""),
        )

    def __repr__(self) -> str:
        return (
            f"Entity(name={self.name!r}, join_key={self.join_key!r}, "
            f"value_type=ValueType.{self.value_type.name})"
        )
