"""Feast 0.67 in a test-only virtualenv outside the clone (~/.cache/repast/feast-venv), made on
first use with uv as load-tests/feast_server.py makes it; Feast's files never enter the repo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "FEAST_DEMO_TIMES",
    "FEAST_VENV",
    "FEAST_VERSION",
    "convert",
    "feast_demo_repo",
    "feast_env",
    "feast_init",
    "feast_python",
    "repast_env",
    "run",
]

FEAST_VERSION = "0.67.0"
FEAST_VENV = Path.home() / ".cache" / "repast" / "feast-venv"


def feast_python() -> Path:
    """The venv's python, after creating the venv (pinned to Feast 0.67) when it is missing."""
    python = FEAST_VENV / "bin" / "python"
    if not (FEAST_VENV / "bin" / "feast").exists():
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "-q", "-p", "3.11", str(FEAST_VENV)], check=True, timeout=600)
        subprocess.run(
            [uv, "pip", "install", "-q", "-p", str(python), f"feast[redis]=={FEAST_VERSION}"],
            check=True,
            timeout=1200,
        )
    return python


def feast_env() -> dict[str, str]:
    """An environment whose `python` and `feast` are the Feast venv's."""
    env = dict(os.environ)
    env["PATH"] = f"{FEAST_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def repast_env() -> dict[str, str]:
    """An environment whose `repast` and `python` are this venv's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Runs `args`, failing the test with its output when it fails; its stdout."""
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def feast_init(root: Path, name: str = "demo") -> Path:
    """`feast init <name>` (Feast's local template) under `root`; its `feature_repo`."""
    run([str(feast_python().parent / "feast"), "init", name], root, feast_env())
    return root / name / "feature_repo"


_IMPORT_LINE = re.compile(r"^(\s*)(from|import) feast\b", re.M)


def convert(repo: Path) -> None:
    """Feast -> Repast by imports and CLI calls only; everything else stays Feast's text."""
    for name in ("feature_definitions.py", "test_workflow.py"):
        path = repo / name
        text = _IMPORT_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)} repast", path.read_text())
        for command in ("apply", "teardown"):
            text = text.replace(f'["feast", "{command}"]', f'["repast", "{command}"]')
        path.write_text(text)


# Fixed times, so both stores materialize the same rows: the template's data ends at
# `feast init` time, well before END, and reaches back two weeks, well after START.
FEAST_DEMO_TIMES = ("2000-01-01T00:00:00", "2020-06-01T00:00:00", "2099-01-01T00:00:00")


def feast_demo_repo(root: Path, start: str, mid: str, end: str) -> Path:
    """`feast init` under `root`, then `feast apply`, `feast materialize start mid` and
    `feast materialize-incremental end` (two materialization intervals); its feature_repo."""
    repo = feast_init(root)
    feast = str(feast_python().parent / "feast")
    run([feast, "apply"], repo, feast_env())
    run([feast, "materialize", start, mid], repo, feast_env())
    run([feast, "materialize-incremental", end], repo, feast_env())
    return repo
