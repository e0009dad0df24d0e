"""The OpenAPI document covers every route, and schemathesis, fuzzing a running server from
it, finds no 5xx and no answer outside the document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from repast_server.openapi import OPENAPI
from repast_server.routes import routes
from server_helpers import serve_process, server_store, write_feature_store_yaml


def test_the_document_lists_every_route_and_method() -> None:
    documented = {
        (path, method.upper()) for path, ops in OPENAPI["paths"].items() for method in ops
    }
    served = {(r.path, m) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    assert documented == served


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    store = server_store(tmp_path, {"type": "sqlite", "path": "data/online.db"}, steps=False)
    store.online_store.close()
    write_feature_store_yaml(tmp_path, "golden", {"type": "sqlite", "path": "data/online.db"})
    with serve_process(tmp_path, tmp_path) as server:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance",
                "--max-examples",
                "40",
                "--seed",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout, result.stdout[-2000:]
