"""A small staffing lake for the web UI's tests: the demo's workers, candidates, job orders and placements
(few rows, the `hash` embedder), its corpora and the playbooks learned from past placements, plus rows whose
text is hostile markup (they must render as text).

`staffing` is a module-scoped fixture over it (`from ui_lake import staffing_fixture  # noqa: F401`)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

import lakehouse
from lakehouse.engine import demo_data, demo_retrieval

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'
HOSTILE_CSV = f'id,name,note\n1,Ann,"{SCRIPT}"\n2,"{IMG.replace(chr(34), chr(34) * 2)}",plain\n'.encode()


def build_staffing_lake(root: Path, rows: int = 300, **settings: object) -> lakehouse.Lake:
    """Open a lake at `root` holding the staffing demo data; the caller closes it."""
    lake = lakehouse.open(root, embedder="hash", playbook_half_life_days=365.0, **settings)
    try:
        for name, path in demo_data.write(demo_data.generate(rows, seed=7), root.parent / "demo-files").items():
            lake.ingest(path, name)
        demo_retrieval.build_corpora(lake, Console(file=io.StringIO()), rows)
        demo_retrieval.record_placements(lake, limit=100)
        lake.ingest(HOSTILE_CSV, "hostile", filename="hostile.csv")
    except BaseException:
        lake.close()
        raise
    return lake


@pytest.fixture(scope="module", name="staffing")
def staffing_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lakehouse.Lake]:
    lake = build_staffing_lake(tmp_path_factory.mktemp("staffing") / "lake", rows=200)
    try:
        yield lake
    finally:
        lake.close()
