"""The auditor (pr-audit, `lakehouse audit`, audit.run) on a tiny git repository with a seeded bug, reviewed by
three deterministic loopback models; and the ops it is made of (audit.diff, audit.verdict, audit.record)."""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from llm_servers import LLMServer, llm_fixture, srv_fixture  # noqa: F401
from workflow_lakes import open_lake, wlake_fixture  # noqa: F401
from workflow_reviewers import reviewer

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.engine.audit_drift import audit_baseline_drift, read_baselines
from lakehouse.engine.ops import entrance
from lakehouse.errors import Forbidden, InvalidInput

BEFORE = '''def add(a, b):
    return a + b


def mean(values):
    """The average of values."""
    if not values:
        return 0.0
    return sum(values) / len(values)
'''
AFTER = BEFORE.replace("return sum(values) / len(values)", "total = sum(values)\n    return total / (len(values) - 1)")
BUG = "return total / (len(values) - 1)"
REVIEWERS = ["tier:review_a", "tier:review_b", "tier:review_c"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two commits: the second seeds an off-by-one in calc.py:mean and touches the README."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "calc.py").write_text(BEFORE)
    (path / "README.md").write_text("# Calc\n\nAdds numbers.\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "calc")
    (path / "calc.py").write_text(AFTER)
    (path / "README.md").write_text("# Calc\n\nAdds and averages numbers.\n")
    git(path, "commit", "-qam", "mean: keep the total")
    return path


def bug_line() -> int:
    return AFTER.splitlines().index("    " + BUG) + 1


def script(srv: LLMServer, barrier: threading.Barrier | None = None) -> None:
    """Reviewers a and b find the bug; c only complains about the README's wording (low)."""
    srv.model_replies.update({
        "reviewer-a": reviewer(BUG, barrier=barrier),
        "reviewer-b": reviewer("len(values) - 1", barrier=barrier),
        "reviewer-c": reviewer("averages", severity="low", check="wording", barrier=barrier)})


def audit(lake: lakehouse.Lake, repo: Path, **kwargs: Any) -> dict[str, Any]:
    """audit.run, which must finish within the issue's 90 s (a deadline, not a measurement)."""
    args = {"repo": str(repo), "base": "HEAD~1", "head": "HEAD", **kwargs}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lake.ops.call, "audit.run", args).result(timeout=90)


def test_the_audit_names_the_seeded_bug(wlake: lakehouse.Lake, repo: Path, srv: LLMServer) -> None:
    script(srv, barrier=threading.Barrier(3, timeout=30))  # every reviewer answers only once all three asked
    out = audit(wlake, repo)
    assert out["status"] == "succeeded", out["error"]
    assert out["verdict"] == "request_changes"
    head = git(repo, "rev-parse", "HEAD")
    assert out["head"] == head
    top, low = out["findings"]
    assert (top["file"], top["line"], top["severity"], top["check"]) == ("calc.py", bug_line(), "high", "off-by-one")
    assert top["reviewers"] == ["tier:review_a", "tier:review_b"] and top["agreement"] == 2
    assert (low["file"], low["severity"], low["reviewers"]) == ("README.md", "low", ["tier:review_c"])
    assert out["reason"].startswith(f"1 finding(s) block: high off-by-one at calc.py:{bug_line()} (2 of 3 reviewers)")
    assert [r["reviewer"] for r in out["reviewers"]] == REVIEWERS  # the [models] tiers named review*

    report = out["report"]
    assert re.fullmatch(rf"auditor/verdicts/\d{{8}}T\d{{6}}Z-{head}\.json", report["json"])
    written = json.loads((wlake.root / report["json"]).read_text())
    assert written["verdict"] == "request_changes" and written["head"] == head and written["findings"] == out["findings"]
    assert written["run_id"] == out["run_id"] and written["workflow"] == "pr-audit"
    markdown = (wlake.root / report["markdown"]).read_text()
    assert "**Verdict: request_changes**" in markdown and f"`calc.py:{bug_line()}`" in markdown
    (baseline,) = read_baselines(wlake.root / "auditor" / "audit_baselines.jsonl")
    assert baseline["head"] == head and baseline["counts"] == {"by_severity": {"high": 1, "low": 1},
                                                               "by_check": {"off-by-one": 1, "wording": 1}}
    assert wlake.corpus("scrum_findings")["rows"] == 2
    # each reviewer saw every chunk once, through the chat op, recorded as the review node
    chats = [o for o in wlake.observer.ops if o.op == "chat"]
    assert len(chats) == 3 and {(o.origin, o.node, o.run_id) for o in chats} == {("workflow", "review", out["run_id"])}


def test_a_second_audit_retrieves_earlier_findings(wlake: lakehouse.Lake, repo: Path, srv: LLMServer) -> None:
    script(srv)
    audit(wlake, repo)
    srv.requests.clear()
    again = audit(wlake, repo)
    assert again["status"] == "succeeded"
    prompt = srv.requests[0].body["messages"][-1]["content"]
    assert "<related chunk=" in prompt and "[scrum_findings:" in prompt and "off-by-one" in prompt
    assert len(read_baselines(wlake.root / "auditor" / "audit_baselines.jsonl")) == 2
    assert audit_baseline_drift(wlake.root, previous=1)["flagged"] == 0  # the same counts twice


def test_clean_change_is_approved(wlake: lakehouse.Lake, repo: Path, srv: LLMServer) -> None:
    srv.reply_fn = reviewer(None)
    out = audit(wlake, repo, reviewers=["ollama/one", "ollama/two"])
    assert out["verdict"] == "approve" and out["findings"] == []
    assert out["reason"] == "2 reviewer(s) found nothing to change"
    assert "scrum_findings" not in [c["name"] for c in wlake.corpora()]


def test_a_reviewer_that_answers_nonsense_is_reported_and_the_others_decide(wlake: lakehouse.Lake, repo: Path,
                                                                            srv: LLMServer) -> None:
    script(srv)
    srv.model_replies["reviewer-c"] = lambda messages: "Looks fine to me!"
    out = audit(wlake, repo)
    assert out["verdict"] == "request_changes"
    c = next(r for r in out["reviewers"] if r["reviewer"] == "tier:review_c")
    assert c["ok"] is False and c["error"]["code"] == "invalid_review"
    assert "failed: invalid_review" in (wlake.root / out["report"]["markdown"]).read_text()


def test_an_audit_whose_reviewers_all_fail_resumes(wlake: lakehouse.Lake, repo: Path, srv: LLMServer) -> None:
    srv.fail(500, times=6)  # three reviewers, the review node's one retry
    failed = audit(wlake, repo)
    assert failed["status"] == "failed" and "every reviewer failed" in failed["error"]
    assert not (wlake.root / "auditor").exists()
    script(srv)
    done = audit(wlake, repo, resume=failed["run_id"])
    assert done["run_id"] == failed["run_id"] and done["verdict"] == "request_changes"
    assert sum(o.op == "audit.diff" for o in wlake.observer.ops) == 1  # the diff was not taken again


def test_cli_audit(wlake: lakehouse.Lake, repo: Path, srv: LLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    from workflow_lakes import MODELS

    (wlake.root / "lakehouse.toml").write_text(
        f'embedder = "hash"\nkey_file = ""\nollama_base = "{srv.url}"\n[models]\n'
        + "".join(f'{k} = "{v}"\n' for k, v in MODELS.items() if isinstance(v, str)))
    script(srv)
    capsys.readouterr()
    code = cli_main(["audit", "--repo", str(repo), "--base", "HEAD~1", "--root", str(wlake.root)])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("request_changes: 1 finding(s) block")
    assert f"calc.py:{bug_line()}" in out and "report: " in out
    srv.reply_fn = reviewer(None)
    code = cli_main(["audit", "--repo", str(repo), "--base", "HEAD~1", "--reviewer", "ollama/x", "--json",
                     "--root", str(wlake.root)])
    assert code == 0 and json.loads(capsys.readouterr().out)["verdict"] == "approve"


# -- the ops ---------------------------------------------------------------------------------------------

def test_audit_diff_numbers_the_head_lines(wlake: lakehouse.Lake, repo: Path) -> None:
    out = wlake.ops.call("audit.diff", repo=str(repo), base="HEAD~1")
    assert [f["file"] for f in out["files"]] == ["README.md", "calc.py"]
    calc = next(c for c in out["chunks"] if c["file"] == "calc.py")
    assert f"{bug_line():>5} +     {BUG}" in calc["text"].splitlines()
    assert bug_line() in calc["changed"] and out["head"] == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(("field", "ref", "code"), [
    ("base", "--output=/tmp/x", "invalid_base"), ("base", "HEAD..main", "invalid_base"),
    ("head", "nope", "unknown_head"), ("base", "HEAD~9", "unknown_base")])
def test_audit_diff_refuses_bad_references(wlake: lakehouse.Lake, repo: Path, field: str, ref: str, code: str) -> None:
    args = {"repo": str(repo), "base": "HEAD~1", "head": "HEAD", field: ref}
    with pytest.raises(InvalidInput) as info:
        wlake.ops.call("audit.diff", args)
    assert info.value.code == code


def test_audit_diff_is_bound_to_import_dirs_for_remote_callers(wlake: lakehouse.Lake, repo: Path,
                                                               tmp_path: Path) -> None:
    with entrance("http"), pytest.raises(Forbidden) as info:
        wlake.ops.call("audit.diff", repo=str(repo), base="HEAD~1")
    assert info.value.code == "import_dirs_unset"
    with pytest.raises(InvalidInput, match="not a git repository"):
        wlake.ops.call("audit.diff", repo=str(tmp_path), base="HEAD~1")


def test_a_pr_audit_over_http_cannot_read_a_repository_outside_import_dirs(tmp_path: Path, repo: Path,
                                                                           srv: LLMServer) -> None:
    lake = open_lake(tmp_path / "remote", srv, import_dirs=[str(tmp_path / "elsewhere")])
    try:
        with entrance("http"):
            out = lake.ops.call("workflow.run", workflow="pr-audit", input={
                "repo": str(repo), "base": "HEAD~1", "head": "HEAD", "reviewers": ["ollama/x"], "corpora": [],
                "quorum": 2})
        assert out["nodes"]["diff"]["error"]["code"] == "path_outside_import_dirs"
        assert not (lake.root / "auditor").exists() and srv.requests == []
    finally:
        lake.close()


def test_audit_record_names_its_files_itself(wlake: lakehouse.Lake) -> None:
    verdict = wlake.ops.call("audit.verdict", reviewers=[])
    assert verdict["verdict"] == "approve"
    for label in ("../../etc/x", "a/b", ""):
        with pytest.raises(InvalidInput) as info:
            wlake.ops.call("audit.record", verdict=verdict, label=label)
        assert info.value.details["field"] == "label"
    first = wlake.ops.call("audit.record", verdict=verdict, label="abc", kind="scrum")
    second = wlake.ops.call("audit.record", verdict=verdict, label="abc", kind="scrum")
    assert first["json"] != second["json"] and first["baseline"] is None  # same second: a suffix, not an overwrite
    assert sorted(p.name for p in (wlake.root / "auditor" / "verdicts").iterdir()) == sorted(
        Path(p).name for p in (first["json"], first["markdown"], second["json"], second["markdown"]))


def test_audit_verdict_quorum_and_severity(wlake: lakehouse.Lake) -> None:
    def review(name: str, *found: tuple[str, int, str]) -> dict[str, Any]:
        return {"reviewer": name, "findings": [{"file": f, "line": n, "severity": s, "check": "c", "rationale": "r"}
                                               for f, n, s in found]}

    out = wlake.ops.call("audit.verdict", reviewers=[review("a", ("x.py", 10, "medium")),
                                                     review("b", ("x.py", 12, "high")), review("c")])
    (merged,) = out["findings"]
    assert (merged["line"], merged["severity"], merged["reviewers"]) == (10, "high", ["a", "b"])
    assert out["verdict"] == "request_changes"
    alone = [review("a", ("x.py", 10, "high")), review("b"), review("c")]
    assert wlake.ops.call("audit.verdict", reviewers=alone)["verdict"] == "approve"  # one of three: not enough
    assert wlake.ops.call("audit.verdict", quorum=1, reviewers=alone)["verdict"] == "request_changes"
    critical = wlake.ops.call("audit.verdict", reviewers=[review("a", ("x.py", 1, "critical")), review("b")])
    assert critical["verdict"] == "request_changes"

