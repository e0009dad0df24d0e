"""Plan output: what `apply` creates, updates, deletes or leaves unchanged, per property."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from repast.registry.document import Kind
from repast.repo import KINDS, RepoContents, kind_label

__all__ = ["ObjectDiff", "PropertyChange", "RegistryDiff", "Transition", "diff_registry"]


class Transition(enum.Enum):
    CREATE = "Created"
    UPDATE = "Updated"
    DELETE = "Deleted"
    UNCHANGED = "Unchanged"


@dataclass(frozen=True)
class PropertyChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ObjectDiff:
    kind: Kind
    name: str
    transition: Transition
    changes: tuple[PropertyChange, ...] = ()

    def describe(self) -> str:
        line = f"{self.transition.value} {kind_label(self.kind)} {self.name}"
        details = [f"\n\t{c.path}: {_show(c.old)} -> {_show(c.new)}" for c in self.changes]
        return line + "".join(details)


@dataclass
class RegistryDiff:
    items: list[ObjectDiff] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(item.transition is not Transition.UNCHANGED for item in self.items)

    def of(self, transition: Transition) -> list[ObjectDiff]:
        return [item for item in self.items if item.transition is transition]

    def to_text(self, *, show_unchanged: bool = True) -> str:
        lines = [
            item.describe()
            for item in self.items
            if show_unchanged or item.transition is not Transition.UNCHANGED
        ]
        if not self.has_changes:
            lines.append("No changes to registry")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return repr(value)


def _changes(old: Any, new: Any, path: str = "") -> Iterator[PropertyChange]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted({*old, *new}, key=str):
            sub = f"{path}.{key}" if path else str(key)
            yield from _changes(old.get(key), new.get(key), sub)
    elif old != new:
        yield PropertyChange(path, old, new)


def diff_registry(
    current: Mapping[Kind, Mapping[str, Mapping[str, Any]]], desired: RepoContents
) -> RegistryDiff:
    """Compare the stored specs (`current[kind][name]`) with the repo's definitions.

    Objects stored but absent from the repo are deleted, as `feast apply` does.
    """
    diff = RegistryDiff()
    for kind, _ in KINDS:
        stored = current.get(kind, {})
        wanted = {obj.name: obj.to_dict() for obj in desired.section(kind)}
        for name, spec in wanted.items():
            if name not in stored:
                diff.items.append(ObjectDiff(kind, name, Transition.CREATE))
                continue
            changes = tuple(_changes(stored[name], spec))
            transition = Transition.UPDATE if changes else Transition.UNCHANGED
            diff.items.append(ObjectDiff(kind, name, transition, changes))
        for name in sorted(set(stored) - set(wanted)):
            diff.items.append(ObjectDiff(kind, name, Transition.DELETE))
    return diff
