"""The SDK's and the server's modules import each other without a cycle.

Every import counts: module level, under `TYPE_CHECKING`, and inside functions (a lazy import
that closes a cycle hides the same tangle). Operations take a `StoreContext`, so none of them
needs the `FeatureStore` facade that calls them.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"repast": ROOT / "sdk" / "repast", "repast_server": ROOT / "server" / "repast_server"}
# Compiled modules: leaves of the graph (they import nothing of ours).
EXTENSIONS = {"repast._core"}


def modules(package: str, folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules that `name` imports (`from pkg import mod` counts as `pkg.mod`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known_prefix(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{prefix}.{base}" if base else prefix
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in known else base for t in targets]
        else:
            continue
        found.update(m for m in map(known_prefix, targets) if m is not None)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    everything: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        everything.update(modules(package, folder))
    known = set(everything) | EXTENSIONS
    graph = {name: imports_of(name, path, known) for name, path in everything.items()}
    return graph | {name: set() for name in EXTENSIONS}


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "repast.feature_store" in graph
    assert "repast.online.read" in graph["repast.feature_store"]
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_operations_do_not_import_the_facade() -> None:
    graph = import_graph()
    facade_users = sorted(
        name
        for name, deps in graph.items()
        if "repast.feature_store" in deps and name.partition(".")[0] == "repast"
    )
    # The package root re-exports it and the CLI builds one; nothing below them needs it.
    assert facade_users == ["repast", "repast.cli"]


def test_the_checker_sees_a_cycle(tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "a.py").write_text("from pkg import b\n")
    (folder / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n"
    )
    found = modules("pkg", folder)
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.a"}
    with pytest.raises(CycleError):
        tuple(TopologicalSorter(graph).static_order())
