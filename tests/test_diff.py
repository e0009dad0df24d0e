from __future__ import annotations

from typing import Any

from repast import Entity
from repast.diff import Transition, diff_registry
from repast.registry.document import Kind
from repast.repo import RepoContents


def test_create_update_delete_unchanged() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"], description="new text")
    kept = Entity(name="kept", join_keys=["k"])
    stored: dict[Kind, dict[str, dict[str, Any]]] = {
        "entities": {
            "driver": Entity(name="driver", join_keys=["driver_id"]).to_dict(),
            "kept": kept.to_dict(),
            "gone": Entity(name="gone", join_keys=["g"]).to_dict(),
        }
    }
    added = Entity(name="added", join_keys=["a"])
    diff = diff_registry(stored, RepoContents.from_objects([driver, kept, added]))
    got = {item.name: item.transition for item in diff.items}
    assert got == {
        "driver": Transition.UPDATE,
        "kept": Transition.UNCHANGED,
        "added": Transition.CREATE,
        "gone": Transition.DELETE,
    }
    update = next(i for i in diff.items if i.name == "driver")
    assert [(c.path, c.old, c.new) for c in update.changes] == [("description", "", "new text")]
    text = diff.to_text(show_unchanged=False)
    assert text.splitlines() == [
        "Updated entity driver",
        "\tdescription: '' -> 'new text'",
        "Created entity added",
        "Deleted entity gone",
    ]


def test_no_changes() -> None:
    kept = Entity(name="kept", join_keys=["k"])
    diff = diff_registry({"entities": {"kept": kept.to_dict()}}, RepoContents.from_objects([kept]))
    assert not diff.has_changes
    assert diff.to_text() == "Unchanged entity kept\nNo changes to registry"
