"""The SQLite catalog is read only through DuckDB's own sqlite extension: a second SQLite library in the process
(Python's sqlite3) does not see the first one's POSIX locks, deletes the WAL index it has mapped and crashes the
process with SIGBUS (or checkpoints under its transaction)."""

from __future__ import annotations

import ast
import multiprocessing
import threading
import time
from pathlib import Path

import lakehouse

PACKAGE = Path(lakehouse.__file__).parent


def test_no_module_of_the_package_imports_pythons_sqlite3() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.split(".")[0] in ("sqlite3", "_sqlite3")]
    assert offenders == []


def _hammer(root: str, seconds: float) -> None:
    with lakehouse.open(root, embedder="hash") as lake:
        for c in "ab":
            lake.create_corpus(c, rows=[{"id": f"{c}-seed", "text": "seed"}])
        stop = time.monotonic() + seconds
        errors: list[BaseException] = []

        def write(c: str) -> None:
            n = 0
            try:
                while time.monotonic() < stop:
                    lake.add_to_corpus(c, [{"id": f"{c}{n}-{i}", "text": f"row {n} {i}"} for i in range(20)])
                    lake.ingest(f"id\n{n}\n".encode(), f"d_{c}", mode="append", filename="d.csv")
                    n += 1
            except BaseException as exc:  # noqa: BLE001 - reported to the parent through the exit code
                errors.append(exc)

        def read() -> None:
            watch = lake.ctx.clock.watch
            try:
                while time.monotonic() < stop:
                    watch._signature = None  # force a read of the catalog file, not just a stat
                    watch.snapshot()
                    lake.query("SELECT count(*) FROM d_a")
            except BaseException as exc:  # noqa: BLE001
                if "d_a" not in str(exc):  # the first ingest may not have landed yet
                    errors.append(exc)

        threads = [threading.Thread(target=write, args=(c,)) for c in "ab"] + [threading.Thread(target=read)
                                                                                 for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        counts = {c["name"]: c["rows"] for c in lake.corpora()}
        rows = {c: lake.query(f"SELECT count(*) FROM d_{c}").rows[0][0] for c in "ab"}
        assert all(counts[c] == 1 + 20 * rows[c] for c in "ab"), (counts, rows)  # every add and ingest landed


def test_commits_and_catalog_reads_of_one_process_never_crash_it(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("spawn").Process(target=_hammer, args=(str(tmp_path / "lake"), 15.0))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 0  # SIGBUS would be -7
