"""`export_sft(records, out, ...)`: supervised fine-tuning data from scored evidence.

Each record is scored (`score_record`); those at `min_category` or better go through the contamination
firewall (firewall.py) against the held-out evaluation set; the survivors are written, in input order,
as chat-format JSON lines:

    {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": <query>},
                  {"role": "assistant", "content": <answer>}],
     "metadata": {"id", "kind", "category", "scorer_version", "model", "source", "citations", "created_at"}}

The file is written to a temporary name beside `out` and renamed over it, so a reader never sees half an
export. The report lists every record left out, why (`stage` "category" or "firewall"), and for the
firewall which rule and which held-out item.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lakehouse.engine.distill.evidence import EvidenceRecord
from lakehouse.engine.distill.firewall import Embed, Firewall, HoldoutSource, Match, load_holdout
from lakehouse.engine.distill.scorer import CATEGORIES, Score, at_least, rank, score_record

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = ("You answer questions about the data in this lakehouse, using the rows you are "
                         "given and citing them.")


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A record left out of the export: at which stage, its category, and the firewall matches if any."""

    id: str
    stage: str
    category: str
    reason: str
    matches: tuple[Match, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "category": self.category, "reason": self.reason,
                "matches": [m.to_dict() for m in self.matches]}


@dataclasses.dataclass
class ExportReport:
    path: str
    considered: int
    written: int
    min_category: str
    by_category: dict[str, int]
    dropped: list[Dropped]
    firewall: dict[str, Any]
    scorer_versions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "considered": self.considered, "written": self.written,
                "min_category": self.min_category, "by_category": dict(self.by_category),
                "dropped": [d.to_dict() for d in self.dropped], "firewall": dict(self.firewall),
                "scorer_versions": list(self.scorer_versions)}


def export_sft(
    records: Sequence[EvidenceRecord],
    out: str | Path,
    *,
    min_category: str = "usable",
    holdout: HoldoutSource = (),
    embed: Embed | None = None,
    cosine_threshold: float = 0.9,
    ngram: int = 13,
    scorer: Callable[[EvidenceRecord], Score] = score_record,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> ExportReport:
    """Write the SFT JSONL to `out` and report what was kept and dropped (see the module docstring).
    `holdout` is a file path or rows (firewall.load_holdout); `embed(texts) -> (n, d) array` turns on the
    embedding rule."""
    rank(min_category)  # an unknown category is the caller's error, before any work
    firewall = Firewall(load_holdout(holdout), embed=embed, cosine_threshold=cosine_threshold, ngram=ngram)
    scored = [(i, r, scorer(r)) for i, r in enumerate(records)]
    dropped: list[tuple[int, Dropped]] = []
    eligible = []
    for i, record, score in scored:
        if at_least(score.category, min_category):
            eligible.append((i, record, score))
        else:
            dropped.append((i, Dropped(record.id, "category", score.category,
                                       f"{score.category} is below {min_category}: {score.reason}")))
    verdicts = firewall.check([{"query": r.query, "answer": r.answer} for _, r, _ in eligible])
    kept = []
    for (i, record, score), matches in zip(eligible, verdicts):
        if matches:
            first = matches[0]
            dropped.append((i, Dropped(record.id, "firewall", score.category,
                                       f"{first.field} matches held-out item {first.holdout_id!r} ({first.rule})",
                                       tuple(matches))))
        else:
            kept.append((record, score))
    path = Path(out)
    _write_atomically(path, [_line(r, s, system_prompt) for r, s in kept])
    by_category = {c: 0 for c in CATEGORIES}
    for _, _, score in scored:
        by_category[score.category] += 1
    dropped.sort(key=lambda pair: pair[0])
    log.info("export_sft: %d of %d records written to %s (%d dropped)", len(kept), len(records), path, len(dropped))
    return ExportReport(str(path), len(records), len(kept), min_category, by_category, [d for _, d in dropped],
                        firewall.describe(), sorted({s.scorer_version for _, _, s in scored}))


def _line(record: EvidenceRecord, score: Score, system_prompt: str) -> str:
    item = {
        "messages": [{"role": "system", "content": system_prompt}, {"role": "user", "content": record.query},
                     {"role": "assistant", "content": record.answer}],
        "metadata": {"id": record.id, "kind": record.kind, "category": score.category,
                     "scorer_version": score.scorer_version, "model": record.model, "source": record.source,
                     "citations": [c.id for c in record.citations],
                     "created_at": record.created_at.isoformat() if record.created_at else None},
    }
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


def _write_atomically(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
