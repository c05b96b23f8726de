"""A folder of files as line-numbered chunks a reviewer can cite by file and line (scrum-review).

    folder_chunks(Path("src"), include=["*.py"], lines=80)["chunks"][0]
    == {"id": "calc.py:1-80", "file": "calc.py", "start_line": 1, "end_line": 80, "text": "--- calc.py\\n    1   ..."}

Hidden folders and the usual build and dependency folders are skipped, and so is any file that is a link
to somewhere outside the folder, too large, binary or not UTF-8 (listed in `skipped`, with why).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lakehouse.errors import InvalidInput

INCLUDE = ("*.py", "*.md", "*.rst", "*.txt", "*.sql", "*.sh", "*.toml", "*.yaml", "*.yml", "*.json", "*.js", "*.ts",
           "*.go", "*.rs", "*.java", "*.c", "*.h", "*.cc", "*.cpp", "*.rb")
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "dist", "build", "site-packages"})


def numbered(lines: Sequence[str], first: int) -> list[str]:
    """Lines prefixed with their line numbers, as the review prompt describes them."""
    return [f"{first + i:>5}   {line}" for i, line in enumerate(lines)]


def folder_chunks(folder: Path, *, include: Sequence[str] = INCLUDE, lines: int = 80, max_files: int = 500,
                  max_file_bytes: int = 200_000, max_chunks: int = 2000) -> dict[str, Any]:
    if not folder.is_dir():
        raise InvalidInput(f"{str(folder)!r} is not a directory", code="invalid_folder", field="folder")
    base = folder.resolve()
    chunks: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    files = 0
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if any(part.startswith(".") or part in SKIP_DIRS for part in rel.parts[:-1]):
            continue
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in include):
            continue
        text, why = _read(path, base, max_file_bytes)
        if why is None and files >= max_files:
            why = f"more than {max_files} files (max_files)"
        if why is not None:
            skipped.append({"file": rel.as_posix(), "reason": why})
            continue
        files += 1
        all_lines = text.splitlines()
        for start in range(0, len(all_lines), lines):
            part = all_lines[start:start + lines]
            name = rel.as_posix()
            chunks.append({"id": f"{name}:{start + 1}-{start + len(part)}", "file": name, "start_line": start + 1,
                           "end_line": start + len(part), "text": "\n".join([f"--- {name}", *numbered(part, start + 1)])})
    return {"files": files, "chunks": chunks[:max_chunks], "truncated": len(chunks) > max_chunks, "skipped": skipped}


def _read(path: Path, base: Path, max_bytes: int) -> tuple[str, str | None]:
    """The text of `path`, or why it is not reviewed."""
    real = path.resolve()
    if real != base and base not in real.parents:
        return "", "a link to outside the folder"
    if real.stat().st_size > max_bytes:
        return "", f"larger than {max_bytes} bytes"
    data = real.read_bytes()
    if b"\x00" in data:
        return "", "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return "", "not UTF-8 text"
