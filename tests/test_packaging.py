"""The distributions as a user gets them: wheels built with maturin (abi3) and hatchling, installed
with pip into a clean virtualenv as `repast[server,redis,kafka]`, then the README's demo run from
that virtualenv alone — not from the editable development install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from services import free_ports

REPO = Path(__file__).resolve().parents[1]
DEV_BIN = Path(sys.executable).parent
# The Makefile's target dir (outside the clone): a maturin build there reuses `make build-dev`'s.
CARGO_TARGET_DIR = os.environ.get(
    "CARGO_TARGET_DIR", str(Path.home() / ".cache" / "repast" / "cargo-target")
)

# Building and installing from nothing takes minutes on a cold cache; the suite's 120 s default
# would cut it off.
pytestmark = pytest.mark.timeout(1200)


def _run(args: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path = REPO) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv (with pip, from the stdlib) holding only what the built wheels pull in."""
    root = tmp_path_factory.mktemp("clean") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    return root


@pytest.fixture(scope="module")
def wheels(clean_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    maturin = shutil.which("maturin", path=str(DEV_BIN)) or "maturin"
    env = {**os.environ, "CARGO_TARGET_DIR": CARGO_TARGET_DIR}
    _run([maturin, "build", "--release", "--quiet", "--out", dist], env=env)
    _run([clean_venv / "bin" / "pip", "wheel", "--quiet", "--no-deps", "-w", dist, REPO / "server"])
    return dist


@pytest.fixture(scope="module")
def installed(clean_venv: Path, wheels: Path) -> Path:
    # The two local names resolve from `wheels` only; every dependency comes from the package index.
    pip = clean_venv / "bin" / "pip"
    _run([pip, "install", "--quiet", "--find-links", wheels, "repast[server,redis,kafka]"])
    return clean_venv


def test_wheels_are_abi3_and_complete(wheels: Path) -> None:
    names = sorted(p.name for p in wheels.iterdir())
    assert len(names) == 2, names
    core, server = names
    assert re.fullmatch(r"repast-[\d.]+-cp311-abi3-.+\.whl", core), core
    assert re.fullmatch(r"repast_server-[\d.]+-py3-none-any\.whl", server), server


def test_clean_install_has_the_whole_system(installed: Path) -> None:
    python = installed / "bin" / "python"
    probe = (
        "import json, repast, repast._core, repast_server, redis, hiredis, aiokafka, "
        "prometheus_client, uvicorn\n"
        "print(json.dumps({'repast': repast.__file__, 'server': repast_server.__file__}))"
    )
    where = json.loads(_run([python, "-c", probe], cwd=installed))
    for path in where.values():
        # Installed into the clean venv, not found through the repository's editable install.
        assert Path(path).is_relative_to(installed), where
    commands = _run([installed / "bin" / "repast", "--help"], cwd=installed)
    for command in ("apply", "materialize-incremental", "serve", "stream", "get-online-features"):
        assert command in commands


def test_demo_runs_from_the_wheels(installed: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REPAST_VENV": str(installed),
        "REPAST_DEMO_DIR": str(tmp_path / "demo"),
        "REPAST_DEMO_PORT": str(free_ports(1)[0]),
        # The dev venv must not leak in: PATH starts with the clean venv, nothing else is set.
        "PATH": os.pathsep.join(
            p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != DEV_BIN
        ),
    }
    env.pop("VIRTUAL_ENV", None)
    out = _run(["bash", REPO / "scripts" / "demo.sh"], env=env)
    assert (tmp_path / "demo" / "feature_repo" / "feature_store.yaml").is_file()
    # The online read of two drivers from SQLite.
    printed = re.search(r"\n(\{\n  \"driver_id\".*?\n\})\n", out, re.S)
    assert printed, out
    online = json.loads(printed.group(1))
    assert online["driver_id"] == [1001, 1002]
    assert set(online) == {"driver_id", "conv_rate", "acc_rate", "avg_daily_trips"}
    assert all(isinstance(v, float) for v in online["conv_rate"])
    # The server answered, took the push, and served the pushed values at once.
    answers = [json.loads(line) for line in out.splitlines() if line.startswith('{"results"')]
    assert len(answers) == 2
    assert answers[1]["results"][1]["values"] == [pytest.approx(0.99)]
    assert answers[1]["results"][2]["values"] == [42]
    assert "HTTP 200" in out
