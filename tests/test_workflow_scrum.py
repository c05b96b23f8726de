"""scrum-review: a folder chunked, embedded, each chunk reviewed up an escalation ladder of loopback models, the
findings ranked and recorded like the auditor's; and scrum.chunks' rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from llm_servers import LLMServer, llm_fixture, srv_fixture  # noqa: F401
from workflow_lakes import wlake_fixture  # noqa: F401
from workflow_reviewers import reviewer

import lakehouse
from lakehouse.engine.ops import entrance
from lakehouse.errors import Forbidden

BAD = "def ratio(a, b):\n    \"\"\"The ratio of a to b.\"\"\"\n\n    # a over b\n\n    return a / b - 1\n"
GOOD = "def twice(x):\n    return 2 * x\n"
LADDER = ["tier:local_fast", "tier:cloud_judge", "tier:frontier_review"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    (path / "pkg").mkdir(parents=True)
    (path / "pkg" / "bad.py").write_text(BAD)
    (path / "good.py").write_text(GOOD)
    (path / ".git").mkdir()
    (path / ".git" / "config.py").write_text("hidden = True\n")
    (path / "blob.py").write_bytes(b"\x00\x01")
    (tmp_path / "secret.py").write_text("password = 'hunter2'\n")
    os.symlink(tmp_path / "secret.py", path / "link.py")
    return path


def scrum(lake: lakehouse.Lake, folder: Path, ladder: list[Any], threshold: int = 7) -> dict[str, Any]:
    return lake.ops.call("workflow.run", workflow="scrum-review", input={
        "folder": str(folder), "corpus": "src_chunks", "ladder": ladder, "threshold": threshold})


def asked(srv: LLMServer, model: str) -> list[str]:
    """The files of the chunks `model` was asked about."""
    return [line[4:] for r in srv.requests if r.body.get("model") == model
            for line in r.body["messages"][-1]["content"].splitlines() if line.startswith("--- ")]


def test_chunks_climb_the_ladder_until_a_rung_is_sure(wlake: lakehouse.Lake, folder: Path, srv: LLMServer) -> None:
    srv.model_replies.update({
        "local": reviewer("a / b", confidence=9, unsure_below=3, added_only=False),  # finds it, is not sure
        "cloud": reviewer("a / b", confidence=9, added_only=False),
        "frontier": reviewer("a / b", added_only=False)})
    out = scrum(wlake, folder, LADDER)
    assert out["status"] == "succeeded", out["error"]
    chunks = out["nodes"]["chunks"]["output"]
    assert [c["file"] for c in chunks["chunks"]] == ["good.py", "pkg/bad.py"]
    assert {s["file"]: s["reason"] for s in chunks["skipped"]} == {"blob.py": "binary",
                                                                   "link.py": "a link to outside the folder"}
    assert wlake.corpus("src_chunks")["rows"] == 2  # embedded
    review = out["nodes"]["review"]["output"]
    rungs = {r["file"]: (r["rung"], r["settled"]) for r in review["chunks"]}
    assert rungs == {"good.py": (0, True), "pkg/bad.py": (1, True)}
    bad = next(r for r in review["chunks"] if r["file"] == "pkg/bad.py")
    assert bad["steps"][0]["escalated"] == "confidence 3 is below 7"
    assert sorted(asked(srv, "local")) == ["good.py", "pkg/bad.py"] and asked(srv, "cloud") == ["pkg/bad.py"]
    assert asked(srv, "frontier") == []  # nobody needed the top rung
    verdict = out["nodes"]["verdict"]["output"]
    (finding,) = verdict["findings"]
    assert (finding["file"], finding["line"], finding["reviewers"]) == ("pkg/bad.py", 6, ["tier:cloud_judge"])
    assert verdict["verdict"] == "request_changes"
    record = out["nodes"]["record"]["output"]
    assert record["baseline"] is None and record["json"].endswith("-src_chunks.json")
    doc = json.loads((wlake.root / record["json"]).read_text())
    assert doc["kind"] == "scrum" and doc["title"] == f"Scrum review of {folder}"
    assert wlake.corpus("scrum_findings")["rows"] == 1


def test_reviewers_of_a_rung_that_disagree_send_the_chunk_up(wlake: lakehouse.Lake, folder: Path,
                                                             srv: LLMServer) -> None:
    srv.model_replies.update({
        "local": reviewer("a / b", added_only=False), "local2": reviewer("def ", added_only=False),
        "cloud": reviewer("a / b", added_only=False)})
    out = scrum(wlake, folder, [["tier:local_fast", "ollama/local2"], "tier:cloud_judge"])
    review = out["nodes"]["review"]["output"]
    steps = {r["file"]: [s["escalated"] for s in r["steps"]] for r in review["chunks"]}
    assert steps["pkg/bad.py"] == ["the reviewers flagged different places", None]
    assert steps["good.py"] == ["the reviewers flagged different places", None]
    assert review["rungs"] == {"1": 2} and review["unsettled"] == 0


def test_the_last_rung_settles_what_it_must(wlake: lakehouse.Lake, folder: Path, srv: LLMServer) -> None:
    srv.reply_fn = reviewer("a / b", confidence=2, added_only=False)
    out = scrum(wlake, folder, ["ollama/only"])
    review = out["nodes"]["review"]["output"]
    assert review["unsettled"] == 2 and all(r["rung"] == 0 and not r["settled"] for r in review["chunks"])
    assert out["nodes"]["verdict"]["output"]["findings"][0]["file"] == "pkg/bad.py"


def test_scrum_chunks_are_bound_to_import_dirs_for_remote_callers(wlake: lakehouse.Lake, folder: Path) -> None:
    with entrance("http"), pytest.raises(Forbidden):
        wlake.ops.call("scrum.chunks", folder=str(folder))
    out = wlake.ops.call("scrum.chunks", folder=str(folder), include=["*.py"], lines=5, corpus="five_lines")
    assert [c["id"] for c in out["chunks"]] == ["good.py:1-2", "pkg/bad.py:1-5", "pkg/bad.py:6-6"]
    assert out["chunks"][2]["text"] == "--- pkg/bad.py\n    6       return a / b - 1"
