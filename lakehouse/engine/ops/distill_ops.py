"""Distillation operations: distill.collect (evidence from what the lake saw, scored and stored),
distillation.score (today's scorer over records), distill.export (SFT JSONL through the contamination firewall).

Rules: an export written for a remote caller (HTTP, MCP, the UI, a workflow) lands inside `<root>/exports/`,
and a held-out file it reads must be inside `import_dirs`, like any server-side path from a request.
"""

from __future__ import annotations

import collections
import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from lakehouse.engine.distill import sources
from lakehouse.engine.distill.evidence import KINDS, EvidenceRecord, load_records, store_records
from lakehouse.engine.distill.export import export_sft
from lakehouse.engine.distill.scorer import CATEGORIES, SCORER_VERSION, score_record
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import remote
from lakehouse.engine.ops.observer_ops import Timestamp
from lakehouse.engine.ops.types import NonBlank
from lakehouse.engine.sources import resolve_import_path
from lakehouse.errors import Forbidden, InvalidInput, StorageError, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

EXPORTS = "exports"
MAX_RECORDS = 10_000
SKIPPED_LISTED = 20
Kind = Literal[KINDS]  # type: ignore[valid-type]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]


def _records(raws: list[dict[str, Any]], field: str) -> list[EvidenceRecord]:
    out = []
    for i, raw in enumerate(raws):
        try:
            out.append(EvidenceRecord.from_dict(raw))
        except InvalidInput as exc:
            raise InvalidInput(f"{field}[{i}]: {exc.message}", code=exc.code, field=field) from None
    return out


class DistillCollect(Input):
    sources: list[Literal["ops", "playbooks", "workflows"]] = Field(
        ["ops", "playbooks", "workflows"], description="the lake's records to build evidence from")
    ops: list[NonBlank] | None = Field(None, description="recorded ops to read (default: those taking a query)")
    since: Timestamp | None = Field(None, description="only what happened from this time on")
    limit: int = Field(10_000, ge=1, le=100_000, description="recorded ops read, newest first (per op name)")
    records: list[dict[str, Any]] | None = Field(None, max_length=MAX_RECORDS, description="evidence records to add")
    rag_answers: list[dict[str, Any]] | None = Field(None, max_length=MAX_RECORDS, description=(
        "rag.ask results to add: {result, outcome?, rating?, retrieved?, created_at?}"))


def _collect(lake: Lake, inp: DistillCollect) -> dict[str, Any]:
    given = _records(inp.records or [], "records") + sources.rag_records(inp.rag_answers or [])
    found = sources.Collected()
    if "playbooks" in inp.sources or "workflows" in inp.sources:
        with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
            if "playbooks" in inp.sources:
                found.extend(sources.playbook_records(cur, inp.since))
            if "workflows" in inp.sources:
                found.extend(sources.workflow_records(cur, inp.since))
    if "ops" in inp.sources:
        private = {op.name: op.private for op in lake.ops.catalog}
        for name in inp.ops or _query_ops(lake):
            found.extend(sources.op_records(lake.observer.query(op=name, since=inp.since, limit=inp.limit), private))
    by_id = {r.id: r for r in [*found.records, *given]}  # one row per id: what the caller handed in wins
    records = list(by_id.values())
    scores = [score_record(r) for r in records]
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        stored = lake.ctx.transaction(cur, lambda c: store_records(c, records, scores))
    return {"stored": stored, "scorer_version": SCORER_VERSION,
            "by_kind": dict(sorted(collections.Counter(r.kind for r in records).items())),
            "by_category": {c: sum(s.category == c for s in scores) for c in CATEGORIES},
            "skipped_count": len(found.skipped), "skipped": found.skipped[:SKIPPED_LISTED]}


def _query_ops(lake: Lake) -> list[str]:
    """The ops whose input is a question (a `query`, `question` or `prompt` not recorded by size only): in the others
    a `text` field is a column name or a document, not something a user asked."""
    return [op.name for op in lake.ops.catalog
            if any(f in op.input.model_fields and f not in op.private for f in ("query", "question", "prompt"))]


class DistillScore(Input):
    records: list[dict[str, Any]] | None = Field(None, max_length=MAX_RECORDS, description="evidence records")
    ids: list[NonBlank] | None = Field(None, max_length=MAX_RECORDS, description="or ids of stored evidence")

    @model_validator(mode="after")
    def _one_source(self) -> DistillScore:
        if (self.records is None) == (self.ids is None):
            raise InvalidInput("give records (evidence objects) or ids (of stored evidence)", code="missing_field",
                               field="records")
        return self


def _score(lake: Lake, inp: DistillScore) -> dict[str, Any]:
    if inp.records is not None:
        records = _records(inp.records, "records")
    else:
        with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
            records = load_records(cur, ids=inp.ids)
        missing = sorted(set(inp.ids or []) - {r.id for r in records})
        if missing:
            raise InvalidInput(f"no stored evidence with id {missing[0]!r}" + (
                f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""), code="evidence_not_found", field="ids")
    results = [{"id": r.id, **score_record(r).to_dict()} for r in records]
    return {"scorer_version": SCORER_VERSION,
            "by_category": {c: sum(x["category"] == c for x in results) for c in CATEGORIES}, "results": results}


class DistillExport(Input):
    out: NonBlank = Field(description="the JSONL to write (remote callers: inside <root>/exports/)")
    min_category: Category = Field("usable", description="the worst category exported")  # type: ignore[valid-type]
    holdout: NonBlank | list[str | dict[str, Any]] | None = Field(None, description=(
        "the held-out evaluation set: a .jsonl/.csv/.txt path (remote callers: inside import_dirs) or its rows"))
    kind: Kind | None = Field(None, description="only evidence of this kind")  # type: ignore[valid-type]
    embed: bool = Field(False, description="also drop near-duplicates by embedding cosine (the lake's embedder)")
    cosine_threshold: float = Field(0.9, gt=0, le=1, allow_inf_nan=False)
    ngram: int = Field(13, ge=1, le=100)


def export_path(lake: Lake, out: str) -> tuple[Path, str]:
    """(where to write, what to report). A remote caller writes only inside <root>/exports/ (a relative path is
    taken from there) and is told the path from the lake root, never the server's absolute path."""
    if not remote():
        return Path(out).expanduser(), out
    base = (lake.root / EXPORTS).resolve()
    target = (base / out).resolve()  # an absolute `out` replaces base; `..` and links are resolved
    if base not in target.parents:
        raise Forbidden(f"out {out!r} is outside the lake's {EXPORTS}/ folder", code="path_outside_exports",
                        field="out")
    return target, str(target.relative_to(lake.root.resolve()))


def _export(lake: Lake, inp: DistillExport) -> dict[str, Any]:
    path, shown = export_path(lake, inp.out)
    holdout = inp.holdout or []
    if isinstance(holdout, str) and remote():
        resolved = resolve_import_path(holdout, lake.settings.import_dirs)
        if not resolved.is_file():  # said here, in the caller's words: the firewall would name the server's path
            raise InvalidInput(f"holdout {holdout!r} is not a file in the import directories", code="invalid_holdout",
                               field="holdout")
        holdout = str(resolved)
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        records = load_records(cur, kind=inp.kind)
    embed = (lambda texts: lake.vectors.embed(texts)) if inp.embed else None
    try:
        report = export_sft(records, path, min_category=inp.min_category, holdout=holdout, embed=embed,
                            cosine_threshold=inp.cosine_threshold, ngram=inp.ngram).to_dict()
    except OSError as exc:  # told in the caller's words: the error's own text names the server's path
        why = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise StorageError(f"out {inp.out!r} could not be written: {why}", code="export_failed") from None
        raise InvalidInput(f"out {inp.out!r} cannot be written: {why}", code="invalid_out", field="out") from None
    return {**report, "path": shown}


OPS = [
    Op("distill.collect", "Build evidence from recorded ops, playbooks, workflow runs and RAG answers; score, store.",
       DistillCollect, _collect, output=dict[str, Any], writes=True, http="POST /v1/distill/collect",
       cli="lakehouse distill collect", count=lambda d: d["stored"],
       summary=lambda d: {"stored": d["stored"], "by_category": d["by_category"], "skipped": d["skipped_count"]}),
    Op("distillation.score", "Score evidence records (gold / usable / weak / reject) with today's scorer.",
       DistillScore, _score, output=dict[str, Any], http="POST /v1/distill/score", cli="lakehouse distill score --file FILE",
       count=lambda d: len(d["results"]), summary=lambda d: {"by_category": d["by_category"]}),
    Op("distill.export", "Write stored evidence at a category or better as SFT JSONL, through the contamination "
       "firewall.", DistillExport, _export, output=dict[str, Any], writes=True, http="POST /v1/distill/export",
       cli="lakehouse distill export --out FILE", count=lambda d: d["written"],
       summary=lambda d: {"path": d["path"], "written": d["written"], "considered": d["considered"]}),
]
