"""Drift operations, measurement not learning: drift.scorer, drift.playbooks, drift.embeddings, drift.audit.

Each is an ObservedOp like any other; a drift beyond the op's threshold is also written to the storage
journal as a `drift_alert` (read by `storage.errors`, SQL `storage_errors()` and the System tab), with the
op as its code and the numbers that crossed the line as its details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from lakehouse.engine.audit_drift import BASELINES, audit_baseline_drift
from lakehouse.engine.distill.evidence import KINDS, load_scored
from lakehouse.engine.drift import TESTS, embedding_drift
from lakehouse.engine.drift.samples import Selection, load_sample
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.data_ops import check_sql_size
from lakehouse.engine.ops.observer_ops import Timestamp
from lakehouse.engine.ops.types import CorpusName, NonBlank
from lakehouse.engine.playbook_drift import playbook_drift, recorded_successes
from lakehouse.engine.scorer_drift import scorer_drift
from lakehouse.errors import InvalidInput, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


def _alert(lake: Lake, op: str, target: str, message: str, **details: Any) -> None:
    lake.ctx.journal.record("drift_alert", target, message, code=op, **details)


def _share(drifted: int, total: int) -> float:
    return drifted / total if total else 0.0


class ScorerDrift(Input):
    kind: Literal[KINDS] | None = Field(None, description="only evidence of this kind")  # type: ignore[valid-type]
    entries: bool = Field(False, description="list each drifted record")
    threshold: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                             description="alert when the share of drifted records is above this")


def _scorer(lake: Lake, inp: ScorerDrift) -> dict[str, Any]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        pairs = load_scored(cur, kind=inp.kind)
    out = scorer_drift(pairs, entries=inp.entries)
    if out["drifted"] and _share(out["drifted"], out["total"]) > inp.threshold:
        _alert(lake, "drift.scorer", "lh.evidence",
               f"{out['drifted']} of {out['total']} scored evidence records change category under "
               f"{out['scorer_version']}", drifted=out["drifted"], total=out["total"], threshold=inp.threshold)
    return out


class PlaybookDrift(Input):
    corpus: CorpusName | None = Field(None, description="only playbooks recorded for this corpus")
    k: int = Field(10, ge=1, le=1000, description="the recorded answer must be in today's top k")
    relevance: bool | None = Field(None, description="apply the relevance filter (default: the setting)")
    limit: int = Field(10_000, ge=1, le=100_000, description="playbooks checked, oldest first")
    threshold: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                             description="alert when the share of drifted playbooks is above this")


def _playbooks(lake: Lake, inp: PlaybookDrift) -> dict[str, Any]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        entries = recorded_successes(cur, inp.corpus, inp.limit)

    def search(query: str, corpus: str) -> list[str]:
        # in-process, without playbook boosts: they would put the recorded answer back by construction
        res = lake.retrieval.matrix_search(query, [corpus], k_per_corpus=inp.k, top=inp.k, relevance=inp.relevance)
        return [h.id for h in res.results]

    out = playbook_drift(entries, search, inp.k)
    if out["drifted"] and _share(out["drifted"], out["total"]) > inp.threshold:
        worst = [c["corpus"] for c in out["corpora"] if c["drifted"]]
        _alert(lake, "drift.playbooks", ",".join(worst),
               f"{out['drifted']} of {out['total']} recorded answers are no longer in the top {inp.k}",
               drifted=out["drifted"], total=out["total"], threshold=inp.threshold, corpora=worst)
    return out


class SampleSelection(Input):
    """One of {generation}, {ids_sql} or {since, until?}."""

    generation: int | None = Field(None, ge=1, description="the rows index generation N indexed")
    ids_sql: NonBlank | None = Field(None, description="corpus rows whose id this read-only query returns")
    since: Timestamp | None = Field(None, description="rows added from this time (ISO 8601)")
    until: Timestamp | None = Field(None, description="... until this time (default: now)")

    @model_validator(mode="after")
    def _one_form(self) -> SampleSelection:
        self.selection()  # the engine's own check: exactly one form
        return self

    def selection(self) -> Selection:
        return Selection(self.generation, self.ids_sql, self.since, self.until)


class EmbeddingDrift(Input):
    corpus: CorpusName
    a: SampleSelection = Field(description="the reference sample")
    b: SampleSelection = Field(description="the current sample")
    tests: list[Literal[TESTS]] | None = Field(None, min_length=1,  # type: ignore[valid-type]
                                               description=f"which of {', '.join(TESTS)} (default: all)")
    thresholds: dict[str, float] | None = Field(None, description="per-test threshold overrides")
    min_fired: int | None = Field(None, ge=1, le=len(TESTS), description="tests that must fire (default 2)")
    seed: int = Field(0, ge=0, le=2**32 - 1)


def _embeddings(lake: Lake, inp: EmbeddingDrift) -> dict[str, Any]:
    samples = {}
    for side, chosen in (("a", inp.a), ("b", inp.b)):
        if chosen.ids_sql is not None:
            check_sql_size(lake, chosen.ids_sql, f"{side}.ids_sql")
        sample = samples[side] = load_sample(lake.ctx, inp.corpus, chosen.selection())
        if sample.vectors.shape[0] < 2:
            raise InvalidInput(f"selection {side} ({sample.selection.describe()}) holds {sample.vectors.shape[0]} "
                               f"rows of corpus {inp.corpus!r}; drift needs at least 2", code="too_few_rows", field=side)
    report = embedding_drift(samples["a"].vectors, samples["b"].vectors, seed=inp.seed, thresholds=inp.thresholds,
                             tests=inp.tests or TESTS, min_fired=inp.min_fired)
    out = {"corpus": inp.corpus, "a": samples["a"].describe(), "b": samples["b"].describe(), **report.to_dict()}
    if report.drifted:
        _alert(lake, "drift.embeddings", inp.corpus, f"embeddings of corpus {inp.corpus!r} drifted: "
               f"{', '.join(report.fired)} fired", a=out["a"], b=out["b"], fired=report.fired)
    return out


class AuditDrift(Input):
    previous: int = Field(5, ge=1, le=10_000, description="audit runs before the latest that form the baseline")
    threshold: float = Field(0.5, ge=0, allow_inf_nan=False, description="relative change that is flagged")
    min_delta: float = Field(1.0, ge=0, allow_inf_nan=False, description="absolute change that is flagged")


def _audit(lake: Lake, inp: AuditDrift) -> dict[str, Any]:
    # the file is always the lake's own: no path comes from the caller, and none goes back to it
    path = lake.root / BASELINES
    if not path.is_file():
        raise NotFound(f"no audit runs recorded: <root>/{BASELINES} does not exist", code="no_audit_runs")
    out = audit_baseline_drift(path, inp.previous, threshold=inp.threshold, min_delta=inp.min_delta)
    if out["flagged"]:
        names = [c["name"] for group in ("by_severity", "by_check") for c in out[group] if c["flagged"]]
        _alert(lake, "drift.audit", str(BASELINES), f"{out['flagged']} audit counts moved past the baseline: "
               f"{', '.join(names)}", flagged=names, head=out["latest"]["head"])
    return out


OPS = [
    Op("drift.scorer", "Re-score stored evidence with today's scorer: how many records change category.",
       ScorerDrift, _scorer, output=dict[str, Any], http="POST /v1/drift/scorer", sql="scorer_drift(kind := NULL)",
       cli="lakehouse drift scorer", count=lambda d: d["total"],
       summary=lambda d: {"total": d["total"], "drifted": d["drifted"], "scorer_version": d["scorer_version"]}),
    Op("drift.playbooks", "Re-run recorded playbook queries: answers that worked and are no longer in the top k.",
       PlaybookDrift, _playbooks, output=dict[str, Any], http="POST /v1/drift/playbooks",
       sql="playbook_drift(corpus := NULL, k := 10)", cli="lakehouse drift playbooks", count=lambda d: d["total"],
       summary=lambda d: {"total": d["total"], "drifted": d["drifted"], "k": d["k"]}),
    Op("drift.embeddings", "Drift between two samples of a corpus (generations, id queries, time windows).",
       EmbeddingDrift, _embeddings, output=dict[str, Any], http="POST /v1/drift/embeddings",
       sql="embedding_drift(corpus, a, b)", cli="lakehouse drift embeddings CORPUS --a A --b B",
       count=lambda d: d["n_reference"] + d["n_current"],
       summary=lambda d: {"corpus": d["corpus"], "drifted": d["drifted"], "fired": d["fired"]}),
    Op("drift.audit", "The latest audit run's counts against the mean of the runs before it.", AuditDrift, _audit,
       output=dict[str, Any], http="POST /v1/drift/audit", cli="lakehouse drift audit",
       count=lambda d: d["baseline"]["runs"] + 1, summary=lambda d: {"flagged": d["flagged"]}),
]
