"""A git diff between two commits, read-only, as chunks a reviewer can cite by file and line.

    diff = git_diff(Path("repo"), "main", "HEAD")
    diff["chunks"][0] == {"id": "1:calc.py:1-9", "file": "calc.py", "start_line": 1, "end_line": 9,
                          "changed": [3], "status": "modified", "text": "--- calc.py (modified) ..."}

git runs as a subprocess that only reads: `rev-parse` and `diff` of two commits (never the work tree),
with every command a repository's config could make git run switched off (external diff drivers,
textconv filters, fsmonitor hooks, pagers), no prompt, and references that cannot pass for options
(they are checked, and follow `--end-of-options`).

Each chunk's text numbers the lines of the new file, so a reviewer's `file:line` points into the head commit:

    --- calc.py (modified)
    @@ lines 1-9 @@ def add
       1   def add(a, b):
       2 -     return a + b
       3 +     return a - b
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from lakehouse.errors import InvalidInput, QueryTimeout

REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./~^@{}-]{0,199}$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_SAFE = ("-c", "core.fsmonitor=false", "-c", "diff.external=", "-c", "core.pager=cat", "-c", "core.quotePath=false")
_ENV_KEEP = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")
GIT_TIMEOUT_S = 60.0


def _git(repo: Path, *args: str) -> str:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}  # no GIT_DIR & co. from the server's environment
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        proc = subprocess.run(["git", *_SAFE, "-C", str(repo), *args], capture_output=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise InvalidInput("git is not installed on this machine", code="git_missing") from None
    except subprocess.TimeoutExpired:
        raise QueryTimeout(f"git {args[0]} took more than {GIT_TIMEOUT_S:g} s", code="git_timeout") from None
    if proc.returncode != 0:
        first = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["failed"])[0]
        raise InvalidInput(f"git {args[0]} in {repo.name!r}: {first}", code="git_failed")
    return proc.stdout.decode("utf-8", "replace")


def resolve_commit(repo: Path, ref: str, field: str) -> str:
    if not isinstance(ref, str) or not REF.match(ref) or ".." in ref:
        raise InvalidInput(f"{field} {ref!r} is not a commit reference (a branch, tag, sha or HEAD~n)",
                           code=f"invalid_{field}", field=field)
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    except InvalidInput:
        raise InvalidInput(f"{field} {ref!r} names no commit in the repository", code=f"unknown_{field}",
                           field=field) from None


def git_diff(repo: Path, base: str, head: str, *, max_lines: int = 150, max_chunks: int = 200) -> dict[str, Any]:
    """The diff from `base` to `head` as numbered chunks of at most `max_lines` lines (see the module docstring)."""
    if not repo.is_dir():
        raise InvalidInput(f"repository {str(repo)!r} is not a directory", code="invalid_repo", field="repo")
    _git(repo, "rev-parse", "--git-dir")  # "not a git repository" as a clear error
    base_sha, head_sha = resolve_commit(repo, base, "base"), resolve_commit(repo, head, "head")
    text = _git(repo, "diff", "--no-ext-diff", "--no-textconv", "--no-color", "--find-renames", "--unified=3",
                base_sha, head_sha, "--")
    files = parse_diff(text)
    chunks: list[dict[str, Any]] = []
    for f in files:
        for piece in _pieces(f, max_lines):
            chunks.append({"id": f"{len(chunks) + 1}:{f['file']}:{piece[0]}-{piece[1]}", "file": f["file"],
                           "start_line": piece[0], "end_line": piece[1], "changed": piece[2], "status": f["status"],
                           "text": piece[3]})
    return {"base": base_sha, "head": head_sha, "base_ref": base, "head_ref": head,
            "files": [{"file": f["file"], "status": f["status"], "added": f["added"], "removed": f["removed"]}
                      for f in files],
            "chunks": chunks[:max_chunks], "truncated": len(chunks) > max_chunks}


def parse_diff(text: str) -> list[dict[str, Any]]:
    """Files of a unified diff, each with hunks of (new line number or None, marker, text) lines."""
    files: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    new_no = old_no = 0
    for line in text.splitlines():
        if line.startswith("diff --git "):
            current = {"file": None, "old": None, "status": "modified", "hunks": [], "added": 0, "removed": 0}
            files.append(current)
        elif current is None:
            continue
        elif line.startswith("--- ") and not current["hunks"]:
            current["old"] = _path(line[4:])
        elif line.startswith("+++ ") and not current["hunks"]:
            current["file"] = _path(line[4:])
        elif line.startswith(("new file mode", "deleted file mode", "rename from", "Binary files ")):
            current["status"] = {"n": "added", "d": "deleted", "r": "renamed", "B": "binary"}[line[0]]
        elif (m := _HUNK.match(line)) is not None:
            old_no, new_no = int(m.group(1)), int(m.group(3))
            current["hunks"].append({"heading": m.group(5).strip(), "lines": []})
        elif current["hunks"] and line[:1] in (" ", "+", "-"):
            lines = current["hunks"][-1]["lines"]
            if line[0] == "-":
                lines.append((None, "-", line[1:], old_no))
                old_no += 1
                current["removed"] += 1
            else:
                lines.append((new_no, line[0], line[1:], old_no))
                new_no += 1
                old_no += line[0] == " "
                current["added"] += line[0] == "+"
    for f in files:
        if f["file"] is None or f["status"] == "deleted":  # a deleted file: name and number it as it was
            f["file"], f["status"] = f["old"], "deleted" if f["old"] else f["status"]
            f["hunks"] = [{**h, "lines": [(old, "-", t, old) for _, _, t, old in h["lines"]]} for h in f["hunks"]]
    return [f for f in files if f["file"] and f["status"] != "binary"]


def _path(raw: str) -> str | None:
    raw = raw.rstrip("\t")  # git ends a name holding a space with a tab
    if raw == "/dev/null":
        return None
    return raw[2:] if raw[:2] in ("a/", "b/") else raw


def _pieces(f: dict[str, Any], max_lines: int) -> list[tuple[int, int, list[int], str]]:
    """(first line, last line, changed lines, numbered text) per chunk of one file's hunks."""
    out = []
    batch: list[tuple[str, list[tuple[int | None, str, str, int]]]] = []
    size = 0
    for hunk in f["hunks"]:
        for i in range(0, max(len(hunk["lines"]), 1), max_lines):
            part = hunk["lines"][i:i + max_lines]
            if batch and size + len(part) > max_lines:
                out.append(_render(f, batch))
                batch, size = [], 0
            batch.append((hunk["heading"], part))
            size += len(part)
    if batch:
        out.append(_render(f, batch))
    return [p for p in out if p is not None]


def _render(f: dict[str, Any], batch: list[tuple[str, list[tuple[int | None, str, str, int]]]]
            ) -> tuple[int, int, list[int], str] | None:
    numbers = [n for _, lines in batch for n, _, _, _ in lines if n is not None]
    if not numbers:
        return None
    changed = [n for _, lines in batch for n, mark, _, _ in lines if mark != " " and n is not None]
    text = [f"--- {f['file']} ({f['status']})"]
    for heading, lines in batch:
        nums = [n for n, _, _, _ in lines if n is not None]
        text.append(f"@@ lines {min(nums)}-{max(nums)} @@ {heading}".rstrip() if nums else "@@")
        text.extend(f"{'' if n is None else n:>5} {mark} {body}" for n, mark, body, _ in lines)
    return min(numbers), max(numbers), changed, "\n".join(text)
