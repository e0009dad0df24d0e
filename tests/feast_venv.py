"""Feast 0.67 in a test-only virtualenv outside the clone (~/.cache/repast/feast-venv), made on
first use with uv as load-tests/feast_server.py makes it; Feast's files never enter the repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["FEAST_VENV", "FEAST_VERSION", "feast_env", "feast_python"]

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
