"""`Project` (`feast.Project`): the project a repo's definitions belong to, with its metadata.

`feature_store.yaml`'s `project` key names the project, as in Feast; a `Project` object in the
repo adds a description, tags and an owner. `repast apply` stores them in the project's registry
record (`spec`) and refuses a `Project` whose name is not the configured project.
"""

from __future__ import annotations

from typing import Any

from repast._spec import Spec, check_name, check_str, check_tags, where

__all__ = ["Project"]


class Project(Spec):
    """A project's name and metadata.

    >>> Project(name="demo", description="driver statistics").to_dict()["description"]
    'driver statistics'
    """

    def __init__(
        self,
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        created_timestamp: object = None,
        last_updated_timestamp: object = None,
    ) -> None:
        # The timestamps are Feast's registry bookkeeping; the registry keeps its own.
        self.name = check_name("Project", name)
        at = where("Project", name)
        self.description: str = check_str(at, "description", description)
        self.tags = check_tags(at, tags)
        self.owner: str = check_str(at, "owner", owner)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Project:
        return cls(
            name=d["name"],
            description=d.get("description", ""),
            tags=d.get("tags"),
            owner=d.get("owner", ""),
        )

    def __repr__(self) -> str:
        return f"Project(name={self.name!r})"
