"""What every definition object shares: equality on `to_dict()`, hash by name, checks.

Checks raise `RepoValidationError` with the object and the field named, e.g.
`FeatureView 'driver_stats': ttl must not be negative`, so a bad repo fails at import
time with a message that points at the line to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from repast.errors import RepoValidationError


class Spec:
    """Base of the definition classes; subclasses set `name` and implement `to_dict`."""

    name: str

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Spec)
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        # By name, as Feast does: objects stay usable as dict keys and in sets.
        return hash((type(self).__name__, self.name))


def where(kind: str, name: object) -> str:
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def fail(where_: str, why: str) -> NoReturn:
    raise RepoValidationError(f"{where_}: {why}")


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        fail(kind, f"name must be a non-empty string, got {name!r}")
    return name


def check_str(where_: str, field: str, value: object, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        fail(where_, f"{field} must be a string, got {value!r}")
    return value


def check_bool(where_: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        fail(where_, f"{field} must be True or False, got {value!r}")
    return value


def check_tags(where_: str, tags: object, field: str = "tags") -> dict[str, str]:
    """A copy of a `str -> str` mapping; None is empty."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        fail(where_, f"{field} must map strings to strings, got {tags!r}")
    return dict(tags)


def check_duration(where_: str, field: str, value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        fail(where_, f"{field} must be a datetime.timedelta, got {value!r}")
    if value < timedelta(0):
        fail(where_, f"{field} must not be negative")
    return value


def known(name: str, names: list[str]) -> str:
    """`"; did you mean 'x'?"` for a close match, else the list of known names."""
    match = difflib.get_close_matches(name, names, n=1)
    if match:
        return f"; did you mean {match[0]!r}?"
    return f" (known: {', '.join(sorted(names))})" if names else " (none are defined)"


def seconds(value: timedelta | None) -> int | float | None:
    """A duration as JSON: whole seconds as an int, else a float; None stays None."""
    if value is None:
        return None
    total = value.total_seconds()
    return int(total) if total == int(total) else total


def duration(value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, int | float):
        raise RepoValidationError(f"duration must be a number of seconds, got {value!r}")
    return timedelta(seconds=value)
