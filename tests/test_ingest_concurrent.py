"""Two processes creating the same dataset at the same moment: exactly one create wins (issue 16)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import lakehouse

ROUNDS = 4
ROWS = 2000


def _creator(root: str, path: str, datasets: list[str], barrier: Any, results: Any) -> None:
    """One process: open the lake, then for each dataset wait for the other process and create it."""
    from lakehouse.errors import LakehouseError

    with lakehouse.open(root) as lake:
        for name in datasets:
            barrier.wait(timeout=120)
            try:
                res = lake.ingest(path, name)
                results.put((name, "skipped" if res.skipped else res.mode))
            except LakehouseError as exc:
                results.put((name, f"{type(exc).__name__}:{exc.code}"))


def _race(tmp_path: Path, files: list[Path]) -> tuple[Path, list[str], list[tuple[str, str]]]:
    root = tmp_path / "lake"
    lakehouse.open(root).close()  # the catalog exists before the race: the race is the datasets'
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(files)), ctx.Queue()
    datasets = [f"race{i}" for i in range(ROUNDS)]
    procs = [ctx.Process(target=_creator, args=(str(root), str(f), datasets, barrier, results)) for f in files]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in range(len(files) * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return root, datasets, outcomes


def test_concurrent_creates_one_wins_the_other_gets_conflict(tmp_path):
    files = []
    for who in ("a", "b"):
        path = tmp_path / f"{who}.csv"
        path.write_text("id,who\n" + "".join(f"{i},{who}\n" for i in range(ROWS)))
        files.append(path)
    root, datasets, outcomes = _race(tmp_path, files)
    with lakehouse.open(root) as lake:
        for name in datasets:
            assert sorted(o for d, o in outcomes if d == name) == ["Conflict:dataset_exists", "create"], outcomes
            assert lake.sql(f"SELECT count(*) FROM lake.lh.ingests WHERE dataset = '{name}'").fetchall() == [(1,)]
            assert lake.sql(f"SELECT count(*), count(DISTINCT who) FROM {name}").fetchall() == [(ROWS, 1)]


def test_concurrent_creates_of_identical_content_store_it_once(tmp_path):
    path = tmp_path / "same.csv"
    path.write_text("id,v\n" + "".join(f"{i},x\n" for i in range(ROWS)))
    root, datasets, outcomes = _race(tmp_path, [path, path])
    with lakehouse.open(root) as lake:
        for name in datasets:
            assert sorted(o for d, o in outcomes if d == name) == ["create", "skipped"], outcomes
            assert lake.sql(f"SELECT count(*) FROM lake.lh.ingests WHERE dataset = '{name}'").fetchall() == [(1,)]
            assert lake.sql(f"SELECT count(*) FROM {name}").fetchall() == [(ROWS,)]
