"""Operations of the code reviews the shipped workflows run (pr-audit, scrum-review), and audit.run.

    audit.diff      a git diff between two commits (read-only), as numbered chunks
    scrum.chunks    a folder of files as numbered chunks, embedded as a corpus
    audit.context   related code, docs, earlier findings and playbooks per chunk (matrix.search)
    audit.review    N reviewer models on every chunk, in parallel
    scrum.review    each chunk up an escalation ladder of models
    audit.verdict   the reviewers' findings merged into one verdict
    audit.record    the verdict written: <root>/auditor/verdicts/<timestamp>-<label>.json and .md, a line of
                    <root>/auditor/audit_baselines.jsonl, and the findings in the scrum_findings corpus
    audit.run       the pr-audit workflow, with its defaults (`lakehouse audit`)

Paths: a repository or folder from a remote caller (HTTP, MCP, UI, or a workflow started by one) must be
inside import_dirs; what is written goes under <root>/auditor, named by the lake, never by the caller.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import datetime as dt
import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import current, remote
from lakehouse.engine.ops.types import CorpusName, NonBlank, Seconds
from lakehouse.engine.ops.workflow_ops import MaxParallel, RunId, run_workflow
from lakehouse.engine.sources import resolve_import_path
from lakehouse.engine.workflows import chunks as chunks_mod
from lakehouse.engine.workflows import findings, reviews
from lakehouse.engine.workflows.gitdiff import git_diff
from lakehouse.errors import Conflict, ProviderError

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

FINDINGS_CORPUS = "scrum_findings"
AUDITOR = "auditor"
BASELINES = "audit_baselines.jsonl"
REVIEWER_TIER_PREFIX = "review"  # [models] tiers named review* are the default reviewers of an audit
# without such tiers: three lineages behind one OpenRouter key
DEFAULT_REVIEWERS = ("openrouter/anthropic/claude-sonnet-4", "openrouter/openai/gpt-5",
                     "openrouter/google/gemini-2.5-pro")
_BASELINE_LOCK = threading.Lock()

Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                             description="names the report files: the head commit, or a name")]
Chunks = Annotated[list[dict[str, Any]], Field(max_length=5000, description="chunks from audit.diff or scrum.chunks")]
Context = Annotated[dict[str, list[dict[str, Any]]], Field(description="chunk id -> related rows (audit.context)")]


def _local_path(lake: Lake, path: str) -> Path:
    """A server-side path: anywhere for local callers, inside import_dirs for remote ones."""
    return resolve_import_path(path, lake.settings.import_dirs) if remote() else Path(path).expanduser()


def _asker(lake: Lake, timeout_s: float | None) -> reviews.Ask:
    """A reviewer's answer through the chat operation (so each call is validated, routed and recorded)."""
    def ask(model: str, messages: list[dict[str, str]]) -> str:
        return lake.ops.call("chat", model=model, messages=messages, timeout_s=timeout_s).content
    return ask


# -- audit.diff and scrum.chunks -------------------------------------------------------------------

class AuditDiff(Input):
    repo: NonBlank = Field(description="a git repository (remote callers: inside import_dirs)")
    base: NonBlank = Field(description="the commit the change starts from (branch, tag, sha)")
    head: NonBlank = Field("HEAD", description="the commit of the change")
    max_lines: int = Field(150, ge=10, le=2000, description="lines per chunk, at most")
    max_chunks: int = Field(200, ge=1, le=5000)


def _diff(lake: Lake, inp: AuditDiff) -> dict[str, Any]:
    out = git_diff(_local_path(lake, inp.repo), inp.base, inp.head, max_lines=inp.max_lines,
                   max_chunks=inp.max_chunks)
    return {"repo": inp.repo, **out}


class ScrumChunks(Input):
    folder: NonBlank = Field(description="a folder of files (remote callers: inside import_dirs)")
    corpus: CorpusName = Field("scrum_chunks", description="the corpus the chunks are embedded in (replaced)")
    include: list[NonBlank] | None = Field(None, description="file name patterns (default: common source files)")
    lines: int = Field(80, ge=1, le=2000, description="lines per chunk")
    max_files: int = Field(500, ge=1, le=20_000)


def _chunks(lake: Lake, inp: ScrumChunks) -> dict[str, Any]:
    out = chunks_mod.folder_chunks(_local_path(lake, inp.folder), include=inp.include or chunks_mod.INCLUDE,
                                   lines=inp.lines, max_files=inp.max_files)
    if out["chunks"]:
        rows = [{"id": c["id"], "text": c["text"], "metadata": {"file": c["file"], "start_line": c["start_line"],
                                                                 "end_line": c["end_line"]}} for c in out["chunks"]]
        lake.ops.call("corpus.create", name=inp.corpus, rows=rows, replace=True)
    return {"folder": inp.folder, "corpus": inp.corpus, **out}


# -- audit.context ------------------------------------------------------------------------------------

class AuditContext(Input):
    chunks: Chunks
    corpora: list[CorpusName] = Field([], description="corpora of related code, docs and playbook answers")
    earlier_findings: bool = Field(True, description=f"search {FINDINGS_CORPUS!r} too, when it exists")
    k: int = Field(4, ge=1, le=50, description="related rows per chunk")
    use_playbook: bool = True


_NUMBERS = re.compile(r"(?m)^\s*\d*\s[ +-]\s?")


def _context(lake: Lake, inp: AuditContext) -> dict[str, Any]:
    existing = {c["name"] for c in lake.vectors.corpora()}
    corpora = [c for c in dict.fromkeys(inp.corpora) if c in existing]
    if inp.earlier_findings and FINDINGS_CORPUS in existing and FINDINGS_CORPUS not in corpora:
        corpora.append(FINDINGS_CORPUS)
    context: dict[str, list[dict[str, Any]]] = {}
    for chunk in inp.chunks if corpora else ():
        query = _NUMBERS.sub("", str(chunk.get("text", "")))[:1000].strip()
        if not query:
            continue
        found = lake.ops.call("matrix.search", query=query, corpora=corpora, k_per_corpus=inp.k, top=inp.k,
                              use_playbook=inp.use_playbook)
        context[str(chunk.get("id"))] = [
            {"corpus": h.corpus, "id": h.id, "text": h.text[:600], "score": round(h.score, 4), "source": h.source}
            for h in found.results if h.id != chunk.get("id")]
    return {"corpora": corpora, "missing": [c for c in inp.corpora if c not in existing], "context": context}


# -- audit.review and scrum.review ------------------------------------------------------------------------

class AuditReview(Input):
    chunks: Chunks
    context: Context = {}
    reviewers: list[NonBlank] = Field(min_length=1, max_length=8, description="models or tier:<name>, asked at once")
    max_chars: int = Field(24_000, ge=1000, le=400_000, description="chunk text per prompt, at most")
    timeout_s: Seconds | None = None


def _review(lake: Lake, inp: AuditReview) -> dict[str, Any]:
    results = reviews.review_in_parallel(_asker(lake, inp.timeout_s), list(dict.fromkeys(inp.reviewers)), inp.chunks,
                                         inp.context, max_chars=inp.max_chars)
    if inp.chunks and not any(r["ok"] for r in results):
        raise ProviderError("every reviewer failed: " + "; ".join(
            f"{r['reviewer']}: {r['error']['message']}" for r in results), code="reviewers_failed")
    return {"chunks": len(inp.chunks), "reviewers": results}


class ScrumReview(Input):
    chunks: Chunks
    context: Context = {}
    ladder: list[NonBlank | list[NonBlank]] = Field(min_length=1, max_length=6, description=(
        "rungs, cheapest first: a model (or tier:<name>) or a list of models that must agree"))
    threshold: int = Field(7, ge=1, le=10, description="confidence (1-10) below which a chunk goes one rung up")
    max_workers: int = Field(4, ge=1, le=32, description="chunks reviewed at once")
    timeout_s: Seconds | None = None


def _scrum(lake: Lake, inp: ScrumReview) -> dict[str, Any]:
    ladder = [[rung] if isinstance(rung, str) else list(dict.fromkeys(rung)) for rung in inp.ladder]
    ask = _asker(lake, inp.timeout_s)
    with concurrent.futures.ThreadPoolExecutor(inp.max_workers, thread_name_prefix="scrum") as pool:
        futures = [pool.submit(contextvars.copy_context().run, reviews.review_on_ladder, ask, ladder, chunk, inp.context,
                               threshold=inp.threshold) for chunk in inp.chunks]
        results = [f.result() for f in futures]
    if results and not any(r["accepted"] for r in results):
        raise ProviderError("no model of the ladder answered: " + results[0]["steps"][-1]["escalated"],
                            code="reviewers_failed")
    return {"chunks": results, "reviewers": reviews.ladder_reviewers(results),
            "rungs": {str(k): v for k, v in sorted(collections.Counter(r["rung"] for r in results).items())},
            "unsettled": sum(not r["settled"] for r in results)}


# -- audit.verdict and audit.record ----------------------------------------------------------------------

Severity = Literal["critical", "high", "medium", "low", "info"]


class Finding(Input):
    file: NonBlank
    line: int = Field(ge=1)
    severity: Severity
    check: NonBlank
    rationale: str = ""


class Review(Input):
    reviewer: NonBlank
    ok: bool = True
    error: dict[str, Any] | None = None
    confidence: int | None = None
    findings: list[Finding] = []
    dropped: int = 0


class AuditVerdict(Input):
    reviewers: list[Review] = Field(description="the reviews (audit.review or scrum.review output's reviewers)")
    quorum: int = Field(2, ge=1, le=10, description="reviewers that must agree before a high or medium finding blocks")


def _verdict(lake: Lake, inp: AuditVerdict) -> dict[str, Any]:
    reviewed = [r.model_dump() for r in inp.reviewers]
    merged = findings.merge(reviewed)
    decision = findings.verdict(merged, sum(r["ok"] for r in reviewed), inp.quorum)
    return {**decision, "findings": merged, "counts": findings.counts(merged),
            "reviewers": [{"reviewer": r["reviewer"], "ok": r["ok"], "error": r["error"], "confidence": r["confidence"],
                           "findings": len(r["findings"]), "dropped": r["dropped"]} for r in reviewed]}


class MergedFinding(Finding):
    reviewers: list[NonBlank]
    agreement: int = Field(ge=0)
    reports: list[dict[str, Any]] = []


class VerdictDoc(Input):
    verdict: Literal["approve", "request_changes"]
    reason: str
    blocking: list[dict[str, Any]] = []
    findings: list[MergedFinding]
    counts: dict[str, dict[str, int]]
    reviewers: list[dict[str, Any]] = []


class AuditRecord(Input):
    verdict: VerdictDoc = Field(description="audit.verdict's output")
    kind: Literal["audit", "scrum"] = Field("audit", description="an audit also appends a line of the baselines")
    label: Label
    title: str | None = Field(None, max_length=200)
    repo: str | None = Field(None, max_length=1000)
    base: str | None = Field(None, max_length=200)
    head: str | None = Field(None, max_length=200, description="the head commit (an audit's baseline line names it)")


def _record(lake: Lake, inp: AuditRecord) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    caller = current()
    doc = {"title": inp.title or f"{'Audit' if inp.kind == 'audit' else 'Scrum review'} of {inp.label}",
           "kind": inp.kind, "label": inp.label, "repo": inp.repo, "base": inp.base, "head": inp.head,
           "recorded_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "workflow": caller.workflow, "run_id": caller.run_id,
           **inp.verdict.model_dump()}
    folder = lake.root / AUDITOR / "verdicts"
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, f"{now:%Y%m%dT%H%M%SZ}-{inp.label[:40]}")
    (folder / f"{stem}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / f"{stem}.md").write_text(findings.markdown_report(doc), encoding="utf-8")
    out = {"json": f"{AUDITOR}/verdicts/{stem}.json", "markdown": f"{AUDITOR}/verdicts/{stem}.md", "baseline": None,
           "corpus": FINDINGS_CORPUS, "findings_recorded": 0}
    if inp.kind == "audit":
        line = {"ts": doc["recorded_at"], "head": inp.head or inp.label, "counts": doc["counts"]}
        with _BASELINE_LOCK, (lake.root / AUDITOR / BASELINES).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
        out["baseline"] = f"{AUDITOR}/{BASELINES}"
    rows = findings.finding_rows(doc)
    if rows:
        _remember(lake, rows)
        out["findings_recorded"] = len(rows)
    return out


def _free_stem(folder: Path, stem: str) -> str:
    """`stem`, or `stem-2`, `stem-3`...: the JSON file is created here, so two records never share a name."""
    for n in range(1, 1000):
        candidate = stem if n == 1 else f"{stem}-{n}"
        try:
            with (folder / f"{candidate}.json").open("x", encoding="utf-8"):
                return candidate
        except FileExistsError:
            continue
    raise Conflict(f"too many reports named {stem!r}", code="report_exists")


def _remember(lake: Lake, rows: list[dict[str, Any]]) -> None:
    """The findings into the findings corpus (created on first use), where later reviews retrieve them."""
    if lake.vectors.exists(FINDINGS_CORPUS):
        lake.ops.call("corpus.add", name=FINDINGS_CORPUS, rows=rows)
        return
    try:
        lake.ops.call("corpus.create", name=FINDINGS_CORPUS, rows=rows)
    except Conflict:  # created meanwhile by another review
        lake.ops.call("corpus.add", name=FINDINGS_CORPUS, rows=rows)


# -- audit.run ---------------------------------------------------------------------------------------------

class AuditRun(Input):
    repo: NonBlank = Field(description="a git repository (remote callers: inside import_dirs)")
    base: NonBlank = Field(description="the commit the change starts from")
    head: NonBlank = "HEAD"
    reviewers: list[NonBlank] | None = Field(None, min_length=1, max_length=8, description=(
        "reviewer models (default: the [models] tiers named review*, else three lineages on OpenRouter)"))
    corpora: list[CorpusName] = Field([], description="corpora of related code, docs and playbook answers")
    quorum: int = Field(2, ge=1, le=10)
    resume: RunId | None = None
    max_parallel: MaxParallel = 4
    progress: bool | None = None


def default_reviewers(lake: Lake) -> list[str]:
    tiers = sorted(t for t in lake.models.tiers if t.startswith(REVIEWER_TIER_PREFIX))
    return [f"tier:{t}" for t in tiers] or list(DEFAULT_REVIEWERS)


def _audit(lake: Lake, inp: AuditRun) -> dict[str, Any]:
    inputs = {"repo": inp.repo, "base": inp.base, "head": inp.head, "quorum": inp.quorum, "corpora": inp.corpora,
              "reviewers": inp.reviewers or default_reviewers(lake)}
    run = run_workflow(lake, "pr-audit", None if inp.resume else inputs, resume=inp.resume,
                       max_parallel=inp.max_parallel, progress=inp.progress)
    nodes = run["nodes"]
    decided = nodes.get("verdict", {}).get("output") or {}
    return {"run_id": run["run_id"], "status": run["status"], "error": run["error"],
            "verdict": decided.get("verdict"), "reason": decided.get("reason"), "findings": decided.get("findings", []),
            "reviewers": decided.get("reviewers", []), "head": (nodes.get("diff", {}).get("output") or {}).get("head"),
            "report": nodes.get("record", {}).get("output")}


OPS = [
    Op("audit.diff", "A git diff between two commits (read-only) as chunks numbered by the head's lines.", AuditDiff,
       _diff, output=dict[str, Any], count=lambda d: len(d["chunks"]),
       summary=lambda d: {"head": d["head"], "files": len(d["files"]), "truncated": d["truncated"]}),
    Op("scrum.chunks", "A folder of files as line-numbered chunks, embedded as a corpus.", ScrumChunks, _chunks,
       output=dict[str, Any], writes=True, count=lambda d: len(d["chunks"]),
       summary=lambda d: {"corpus": d["corpus"], "files": d["files"], "skipped": len(d["skipped"])}),
    Op("audit.context", "Related code, docs, earlier findings and playbook answers for each chunk (matrix search).",
       AuditContext, _context, output=dict[str, Any], count=lambda d: len(d["context"]),
       summary=lambda d: {"corpora": d["corpora"], "missing": d["missing"]}),
    Op("audit.review", "Ask several reviewer models about every chunk at once; their findings, per reviewer.",
       AuditReview, _review, output=dict[str, Any], count=lambda d: sum(len(r["findings"]) for r in d["reviewers"]),
       summary=lambda d: {"reviewers": {r["reviewer"]: r["ok"] for r in d["reviewers"]}}),
    Op("scrum.review", "Review each chunk up an escalation ladder of models (next rung when unsure or in disagreement).",
       ScrumReview, _scrum, output=dict[str, Any], count=lambda d: len(d["chunks"]),
       summary=lambda d: {"rungs": d["rungs"], "unsettled": d["unsettled"]}),
    Op("audit.verdict", "Merge reviewers' findings into one verdict: approve or request_changes, with agreement.",
       AuditVerdict, _verdict, output=dict[str, Any], count=lambda d: len(d["findings"]),
       summary=lambda d: {"verdict": d["verdict"], "blocking": len(d["blocking"])}),
    Op("audit.record", "Write a verdict: JSON and Markdown under <root>/auditor, a baseline line, the findings corpus.",
       AuditRecord, _record, output=dict[str, Any], writes=True, count=lambda d: d["findings_recorded"],
       summary=lambda d: {"json": d["json"]}),
    Op("audit.run", "Audit a change between two commits with the pr-audit workflow: a verdict with findings.",
       AuditRun, _audit, output=dict[str, Any], writes=True, cli="lakehouse audit --repo PATH --base REF",
       count=lambda d: len(d["findings"]), summary=lambda d: {"run_id": d["run_id"], "verdict": d["verdict"]}),
]
