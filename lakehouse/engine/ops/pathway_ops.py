"""Pathway memory operations: pathways.record, pathways.lookup, pathways.replay, pathways.fingerprint.

The memory is one file, `<root>/pathways/pathways.json` (engine/pathways.py). A pathway's steps are
operations of this catalog: recording checks their names, and replay runs them through `lake.ops.call`
under the caller's own origin, so each step is validated, checked (a read-only or remote caller gets no more
than it could call directly) and recorded like any other call. A step may not replay a pathway: replays
would nest without end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.types import NonBlank
from lakehouse.engine.pathways import (
    BUCKETS,
    MAX_K,
    Pathway,
    PathwayStore,
    Step,
    annotation_from_dict,
    fingerprint,
    replay,
)
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

REPLAY = "pathways.replay"
MAX_STEPS = 1000


def store_of(lake: Lake) -> PathwayStore:
    return PathwayStore(lake.root / "pathways" / "pathways.json")


class PathwayRecord(Input):
    text: NonBlank = Field(description="the goal the steps reached")
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_STEPS,
                                        description="[{op, input, output?}]: catalog operations, in order")
    annotations: list[dict[str, Any]] = Field([], max_length=1000, description=(
        "[{kind: semantic_flag | bug_fingerprint | type_hint, ...}]"))
    hints: bool = Field(True, description="record each step input field's JSON type (checked at replay)")


def _record(lake: Lake, inp: PathwayRecord) -> dict[str, Any]:
    steps = [Step.from_dict(s, f"steps[{i}]") for i, s in enumerate(inp.steps)]
    for i, step in enumerate(steps):
        if step.op not in lake.ops.catalog:
            raise InvalidInput(f"steps[{i}].op {step.op!r} is not an operation of this lake", code="unknown_op",
                               field="steps")
        if step.op == REPLAY:
            raise InvalidInput(f"steps[{i}] replays a pathway: a pathway may not contain {REPLAY}",
                               code="invalid_pathway", field="steps")
    annotations = [annotation_from_dict(a) for a in inp.annotations]
    pathway = Pathway.build(inp.text, steps, annotations=annotations, hints=inp.hints)
    return store_of(lake).record(pathway).to_dict()


class PathwayLookup(Input):
    text: NonBlank
    k: int = Field(5, ge=1, le=MAX_K)


class PathwayReplay(Input):
    id: NonBlank = Field(description="the pathway's id (pw_...)")
    stop_on_failure: bool = Field(False, description="skip the steps after a failed one")


def _replay(lake: Lake, inp: PathwayReplay) -> dict[str, Any]:
    pathway = store_of(lake).get(inp.id)

    def run_op(name: str, args: dict[str, Any]) -> Any:
        if name == REPLAY:  # a state file edited by hand: refuse rather than recurse
            raise InvalidInput(f"a pathway may not contain {REPLAY}", code="invalid_pathway")
        return lake.ops.call(name, args)  # the caller's origin (context variable): no step runs with more rights

    return replay(pathway, run_op, stop_on_failure=inp.stop_on_failure).to_dict()


class Fingerprint(Input):
    text: str = Field(max_length=1_000_000)


OPS = [
    Op("pathways.record", "Remember a sequence of operations that reached a goal (a repeat counts a success).",
       PathwayRecord, _record, output=dict[str, Any], writes=True, http="POST /v1/pathways",
       cli="lakehouse pathways record TEXT --steps FILE", count=lambda d: len(d["steps"]),
       summary=lambda d: {"id": d["id"], "successes": d["successes"]}),
    Op("pathways.lookup", "Remembered pathways whose goal is most like a text (fingerprint cosine).", PathwayLookup,
       lambda lake, inp: {"results": [m.to_dict() for m in store_of(lake).lookup(inp.text, inp.k)]},
       output=dict[str, Any], http="POST /v1/pathways/lookup", cli="lakehouse pathways lookup TEXT",
       count=lambda d: len(d["results"])),
    Op("pathways.replay", "Run a remembered pathway's steps again, as the caller; report which still succeed.",
       PathwayReplay, _replay, output=dict[str, Any], writes=True, http="POST /v1/pathways/<id>/replay",
       cli="lakehouse pathways replay ID", count=lambda d: d["succeeded"],
       summary=lambda d: {"id": d["pathway_id"], "ok": d["ok"], "failed": d["failed"], "skipped": d["skipped"]}),
    Op("pathways.fingerprint", f"The {BUCKETS}-bucket token fingerprint pathways are looked up by.", Fingerprint,
       lambda lake, inp: {"buckets": fingerprint(inp.text)}, output=dict[str, Any],
       http="POST /v1/pathways/fingerprint", cli="lakehouse pathways fingerprint TEXT"),
]
