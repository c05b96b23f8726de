"""Two processes writing one corpus (issue 16, item 6): keys stay unique across processes, every row stays
findable by its own text, and a process that already holds the corpus sees what the other added or replaced
without reopening."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import lakehouse

BATCHES, PER_BATCH = 10, 20


def _writer(root: str, tag: str, barrier: Any) -> None:
    with lakehouse.open(root, embedder="hash") as lake:
        lake.vector_search("shared", "warm up", 1)  # hold the corpus in memory, as a running server does
        barrier.wait()
        for b in range(BATCHES):
            lake.add_to_corpus("shared", [{"id": f"{tag}-{b}-{i}", "text": f"{tag} batch {b} row {i} text"}
                                          for i in range(PER_BATCH)])


def _check_all_findable(lake: lakehouse.Lake, ids: list[str], text_of: dict[str, str]) -> None:
    """Each id's row holds its own text's vector (exact search among that id scores 1: with keys shared by two
    rows it would not), and approximate search ranks it near the top."""
    for ident in ids:
        hit = lake.vector_search("shared", text_of[ident], 1, ids=[ident])[0]
        assert hit.id == ident and hit.score > 0.999, (ident, hit)
        assert ident in {h.id for h in lake.vector_search("shared", text_of[ident], 10)}, ident


def test_two_processes_adding_to_one_corpus(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    seed = [{"id": f"s-{i}", "text": f"seed row {i} text"} for i in range(150)]
    with lakehouse.open(root, embedder="hash") as lake:
        lake.create_corpus("shared", rows=seed)
        assert lake.vector_search("shared", "seed row 3 text", 1)[0].id == "s-3"  # this process holds the state
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_writer, args=(str(root), tag, barrier)) for tag in ("a", "b")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
            assert p.exitcode == 0
        keys = lake.sql("SELECT count(*), count(DISTINCT key), count(DISTINCT id) FROM lake.lh_corpus.shared").fetchone()
        total = 150 + 2 * BATCHES * PER_BATCH
        assert keys == (total, total, total)  # every row stored once, each under a key of its own
        text_of = {r["id"]: r["text"] for r in seed}
        text_of |= {f"{t}-{b}-{i}": f"{t} batch {b} row {i} text" for t in "ab" for b in range(BATCHES)
                    for i in range(PER_BATCH)}
        # the state held since before the other processes wrote sees their rows, without a reopen
        assert lake.vectors.state("shared").size == total
        _check_all_findable(lake, ["a-0-0", "b-9-19", "a-5-7", "s-149"], text_of)
        # another process replaces a row: the held state follows
        replacer = ctx.Process(target=_replace, args=(str(root),))
        replacer.start()
        replacer.join(120)
        assert replacer.exitcode == 0
    with lakehouse.open(root, embedder="hash") as lake:
        _check_all_findable(lake, sorted(text_of), text_of)  # after a reopen, every row by its own text


def _replace(root: str) -> None:
    with lakehouse.open(root, embedder="hash") as lake:
        lake.add_to_corpus("shared", [{"id": "s-1", "text": "seed row 1 text"}])


def test_a_held_corpus_follows_replacements_by_another_process(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with lakehouse.open(root, embedder="hash") as lake:
        lake.create_corpus("shared", rows=[{"id": "x", "text": "old text of x"}, {"id": "y", "text": "why"}])
        assert lake.vector_search("shared", "old text of x", 1)[0].id == "x"
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=_rewrite, args=(str(root),))
        p.start()
        p.join(120)
        assert p.exitcode == 0
        hits = lake.vector_search("shared", "new text of x", 2)
        assert hits[0].id == "x" and hits[0].score > 0.999  # the new text, found at once
        assert lake.vectors.state("shared").size == 3 and lake.vector_search("shared", "zed", 1)[0].id == "z"
        sql = lake.query("SELECT id FROM vector_search('shared', 'new text of x', 1)").rows
        assert sql == [["x"]]


def _rewrite(root: str) -> None:
    with lakehouse.open(root, embedder="hash") as lake:
        lake.add_to_corpus("shared", [{"id": "x", "text": "new text of x"}, {"id": "z", "text": "zed"}])
