"""The README's first lines are the two commands that work on a fresh machine; CI runs the second."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[1]


def _commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash") + 1
    return lines[start:start + 2]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = _commands()
    assert demo.endswith("lakehouse demo") and "pip install -e ." in demo
    assert "pytest" in tests and "'.[test]'" in tests


def test_ci_runs_the_readme_test_command_exactly():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


def test_generated_tables_match_the_catalog_and_settings():
    """The operations and settings tables are generated (python -m lakehouse.engine.ops.table README.md):
    an operation or setting added, renamed or described anew without regenerating fails here."""
    from lakehouse.engine.ops.table import replace

    text = (ROOT / "README.md").read_text()
    assert replace(text) == text
