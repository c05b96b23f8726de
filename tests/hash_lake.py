"""Fixtures for tests that drive one lake through every surface: the lake opened with the deterministic `hash`
embedder (and an import folder, `<tmp>/imports`), the app on a loopback server, and the CLI on the same root.

    from hash_lake import hash_http_fixture, hash_lake_fixture, run_cli  # noqa: F401  (fixtures)

The fixtures are named `lake` and `http`: a module importing them uses these instead of conftest's `lake`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.http import create_app


@pytest.fixture(name="lake")
def hash_lake_fixture(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    imports = tmp_path / "imports"
    imports.mkdir()
    with lakehouse.open(tmp_path / "lake", embedder="hash", import_dirs=[str(imports)]) as lk:
        yield lk


@contextlib.contextmanager
def served(lake: lakehouse.Lake) -> Iterator[httpx.Client]:
    """A client of `lake`'s app on a loopback server (the `http` fixtures of this module and workflow_lakes)."""
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(name="http")
def hash_http_fixture(lake: lakehouse.Lake) -> Iterator[httpx.Client]:
    with served(lake) as client:
        yield client


def run_cli(lake: lakehouse.Lake, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """(exit code, stdout parsed as JSON when it is JSON, stderr) of `lakehouse ARGV --root <the lake's root>`."""
    code = cli_main([*argv, "--root", str(lake.root)])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.startswith(("{", "[")) else out, err
