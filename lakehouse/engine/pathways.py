"""Pathway memory: remember the sequence of operations that once led to a good outcome, find it again
for a similar goal, and replay it.

    store = PathwayStore(root / "pathways.json")
    store.record(Pathway.build("IL forklift operators with OSHA-10",
                               [{"op": "sql", "input": {...}}, {"op": "matrix_search", "input": {...}}]))
    [best] = store.lookup("forklift drivers in Illinois", k=1)
    report = replay(best.pathway, run_op)          # run_op(op_name, input) -> output

Fingerprint (the lookup key, of the pathway's goal text): 32 integer buckets. Tokens are the matches of
`[a-z0-9]+` in the lower-cased text; each token adds 1 to bucket
`int.from_bytes(sha256(token.encode()).digest()[:4], "big") % 32`. Lookup ranks by cosine over the
buckets (ties by id); a text without tokens matches nothing.

State file (UTF-8 JSON, written to a temporary file and renamed over the old one, under an advisory
`flock` on `<file>.lock` so writers in several processes do not lose each other's records):

    {"version": 1, "pathways": [{"id", "text", "fingerprint": [32 ints], "steps": [{"op", "input",
      "output_digest"}], "annotations": [{"kind": ...}, ...], "successes", "created_at", "last_success"}]}

Pathways are sorted by id. Annotations are values with a `kind` discriminator:

    SemanticFlag    kind "semantic_flag"    a named fact about what the pathway means or needs
                                            (name, value: a JSON scalar, note), e.g. ("needs_filter", "state")
    BugFingerprint  kind "bug_fingerprint"  a failure met along the way (op, error_code, message, step,
                                            signature: the message's fingerprint), so a lookup can warn
                                            before the same step fails the same way again
    TypeHint        kind "type_hint"        the JSON type (string, integer, number, boolean, array, object,
                                            null) a step's input field had when the pathway succeeded;
                                            replay reports inputs that no longer match
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from lakehouse.errors import InvalidInput, LakehouseError, NotFound, StorageError

log = logging.getLogger(__name__)

BUCKETS = 32
STATE_VERSION = 1
MAX_K = 100
_TOKEN = re.compile(r"[a-z0-9]+")
_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
Scalar = str | int | float | bool | None
RunOp = Callable[[str, dict[str, Any]], Any]


def fingerprint(text: str) -> list[int]:
    """The 32-bucket token count vector of `text` (module docstring)."""
    if not isinstance(text, str):
        raise InvalidInput(f"a fingerprint needs a string, got {type(text).__name__}", code="invalid_text")
    buckets = [0] * BUCKETS
    for token in _TOKEN.findall(text.lower()):
        buckets[int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % BUCKETS] += 1
    return buckets


def cosine(a: Sequence[int], b: Sequence[int]) -> float:
    """Cosine similarity of two count vectors; 0.0 when either is all zeros."""
    dot = sum(x * y for x, y in zip(a, b))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


# -- annotations -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SemanticFlag:
    """A named fact about what the pathway means or needs: SemanticFlag("pii", True)."""

    name: str
    value: Scalar = True
    note: str = ""
    kind: ClassVar[str] = "semantic_flag"


@dataclasses.dataclass(frozen=True)
class BugFingerprint:
    """A failure met along the pathway. `signature` is the fingerprint of the message, so messages that
    differ only in ids or numbers still look alike; `message` is kept to 200 characters."""

    op: str
    error_code: str
    message: str = ""
    step: int | None = None
    signature: tuple[int, ...] = ()
    kind: ClassVar[str] = "bug_fingerprint"

    def __post_init__(self) -> None:
        if isinstance(self.signature, list):  # from JSON: keep the value hashable
            object.__setattr__(self, "signature", tuple(self.signature))

    @classmethod
    def of(cls, op: str, error_code: str, message: str, step: int | None = None) -> BugFingerprint:
        return cls(op, error_code, message[:200], step, tuple(fingerprint(message)))


@dataclasses.dataclass(frozen=True)
class TypeHint:
    """Step `step`'s input field `field` was of JSON type `type` when the pathway succeeded."""

    step: int
    field: str
    type: str
    kind: ClassVar[str] = "type_hint"


Annotation = SemanticFlag | BugFingerprint | TypeHint
_ANNOTATIONS: dict[str, type[Annotation]] = {c.kind: c for c in (SemanticFlag, BugFingerprint, TypeHint)}


def annotation_to_dict(item: Annotation) -> dict[str, Any]:
    body = dataclasses.asdict(item)
    if isinstance(item, BugFingerprint):
        body["signature"] = list(item.signature)
    return {"kind": item.kind, **body}


def annotation_from_dict(raw: Mapping[str, Any]) -> Annotation:
    """Rebuild an annotation from its dict; the `kind` picks the type, unknown fields are refused."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("an annotation must be an object", code="invalid_pathway", field="annotations")
    cls = _ANNOTATIONS.get(raw.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise InvalidInput(f"unknown annotation kind {raw.get('kind')!r}; use one of {', '.join(sorted(_ANNOTATIONS))}",
                           code="invalid_pathway", field="annotations.kind")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    body = {k: v for k, v in raw.items() if k != "kind"}
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(f"{cls.kind}: unknown field {unknown[0]!r}", code="invalid_pathway",
                           field=f"annotations.{unknown[0]}")
    try:
        item = cls(**body)
    except TypeError as exc:
        raise InvalidInput(f"{cls.kind}: {exc}", code="invalid_pathway", field="annotations") from None
    _check_annotation(item)
    return item


def _check_annotation(item: Annotation) -> None:
    def bad(field: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{item.kind}.{field} {problem}", code="invalid_pathway", field=f"annotations.{field}")

    if isinstance(item, SemanticFlag):
        if not isinstance(item.name, str) or not item.name:
            raise bad("name", "must be a non-empty string")
        if item.value is not None and not isinstance(item.value, (str, int, float, bool)):
            raise bad("value", "must be a JSON scalar")
    elif isinstance(item, BugFingerprint):
        if not isinstance(item.op, str) or not item.op or not isinstance(item.error_code, str):
            raise bad("op", "and error_code must be strings")
        if len(item.signature) not in (0, BUCKETS) or not all(isinstance(x, int) and x >= 0 for x in item.signature):
            raise bad("signature", f"must be {BUCKETS} non-negative integers")
    elif item.type not in _JSON_TYPES or not isinstance(item.field, str) or not isinstance(item.step, int):
        raise bad("type", f"must be one of {', '.join(_JSON_TYPES)} (with an integer step and a field name)")


def json_type(value: Any) -> str:
    """The JSON type name of a Python value (bool before int: True is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def infer_type_hints(steps: Sequence[Step]) -> list[TypeHint]:
    """A TypeHint per top-level input field of every step, in step then field order."""
    return [TypeHint(i, name, json_type(value)) for i, step in enumerate(steps) for name, value in step.input.items()]


# -- pathways --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """One operation of a pathway: its name, its input, and the digest of the output it gave."""

    op: str
    input: dict[str, Any]
    output_digest: str | None = None

    @classmethod
    def from_dict(cls, raw: Any, where: str = "steps") -> Step:
        if isinstance(raw, Step):
            return raw
        if not isinstance(raw, Mapping) or not isinstance(raw.get("op"), str) or not raw["op"]:
            raise InvalidInput(f"{where}: a step is an object with a non-empty 'op'", code="invalid_pathway", field=where)
        inp = raw.get("input") or {}
        if not isinstance(inp, Mapping):
            raise InvalidInput(f"{where}.input must be an object", code="invalid_pathway", field=f"{where}.input")
        digest = raw.get("output_digest")
        if digest is None and "output" in raw:
            digest = output_digest(raw["output"])
        return cls(raw["op"], json.loads(_canonical(dict(inp))), digest)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "input": self.input, "output_digest": self.output_digest}


def output_digest(output: Any) -> str:
    """SHA-256 of an op's output as canonical JSON (objects with to_dict() are serialised through it)."""
    return hashlib.sha256(_canonical(output).encode("utf-8")).hexdigest()


@dataclasses.dataclass
class Pathway:
    id: str
    text: str
    steps: list[Step]
    annotations: list[Annotation] = dataclasses.field(default_factory=list)
    fingerprint: list[int] = dataclasses.field(default_factory=list)
    successes: int = 1
    created_at: str = ""
    last_success: str = ""

    @classmethod
    def build(cls, text: str, steps: Sequence[Mapping[str, Any] | Step], *,
              annotations: Sequence[Annotation] = (), hints: bool = True, now: dt.datetime | None = None) -> Pathway:
        """A new pathway for goal `text`. Steps are {op, input, output?} (the output is kept as its digest);
        `hints` adds a TypeHint per step input field. The id is derived from the text and the steps."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("a pathway needs a non-empty goal text", code="invalid_pathway", field="text")
        parsed = [Step.from_dict(s, f"steps[{i}]") for i, s in enumerate(steps)]
        if not parsed:
            raise InvalidInput("a pathway needs at least one step", code="invalid_pathway", field="steps")
        for a in annotations:
            _check_annotation(a)
        items = list(annotations) + (infer_type_hints(parsed) if hints else [])
        key = _canonical({"text": text.strip(), "steps": [[s.op, s.input] for s in parsed]})
        stamp = _iso(now)
        return cls("pw_" + hashlib.sha256(key.encode()).hexdigest()[:16], text.strip(), parsed,
                   list(dict.fromkeys(items)), fingerprint(text), 1, stamp, stamp)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "fingerprint": list(self.fingerprint),
                "steps": [s.to_dict() for s in self.steps], "annotations": [annotation_to_dict(a) for a in self.annotations],
                "successes": self.successes, "created_at": self.created_at, "last_success": self.last_success}

    @classmethod
    def from_dict(cls, raw: Any) -> Pathway:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("text"), str):
            raise InvalidInput("a stored pathway needs a string id and text", code="invalid_pathway")
        fp = raw.get("fingerprint")
        if not isinstance(fp, list) or len(fp) != BUCKETS or not all(isinstance(x, int) and x >= 0 for x in fp):
            raise InvalidInput(f"pathway {raw['id']}: fingerprint must be {BUCKETS} non-negative integers",
                               code="invalid_pathway", field="fingerprint")
        steps = raw.get("steps")
        if not isinstance(steps, list):
            raise InvalidInput(f"pathway {raw['id']}: steps must be a list", code="invalid_pathway", field="steps")
        successes = raw.get("successes", 1)
        if isinstance(successes, bool) or not isinstance(successes, int) or successes < 1:
            raise InvalidInput(f"pathway {raw['id']}: successes must be a positive integer", code="invalid_pathway",
                               field="successes")
        return cls(raw["id"], raw["text"], [Step.from_dict(s, f"steps[{i}]") for i, s in enumerate(steps)],
                   [annotation_from_dict(a) for a in raw.get("annotations") or []], fp, successes,
                   str(raw.get("created_at", "")), str(raw.get("last_success", "")))


@dataclasses.dataclass(frozen=True)
class PathwayMatch:
    pathway: Pathway
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "pathway": self.pathway.to_dict()}


class PathwayStore:
    """The pathways of one state file. Every call reads the file, so several processes share one memory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def all(self) -> list[Pathway]:
        return self._read()

    def get(self, pathway_id: str) -> Pathway:
        for p in self._read():
            if p.id == pathway_id:
                return p
        raise NotFound(f"no pathway {pathway_id!r}", code="pathway_not_found")

    def record(self, pathway: Pathway) -> Pathway:
        """Store a successful pathway. Recording one already known (same text and steps) counts another
        success and adds its new annotations. Returns the stored pathway."""
        with self._locked():
            pathways = {p.id: p for p in self._read()}
            known = pathways.get(pathway.id)
            if known is not None:
                known.successes += pathway.successes
                known.last_success = max(known.last_success, pathway.last_success)
                known.annotations = list(dict.fromkeys([*known.annotations, *pathway.annotations]))
                pathway = known
            pathways[pathway.id] = pathway
            self._write(list(pathways.values()))
        return pathway

    def forget(self, pathway_id: str) -> bool:
        with self._locked():
            pathways = self._read()
            kept = [p for p in pathways if p.id != pathway_id]
            if len(kept) == len(pathways):
                return False
            self._write(kept)
            return True

    def lookup(self, text: str, k: int = 5) -> list[PathwayMatch]:
        """The `k` pathways whose goal fingerprint is most similar to `text`'s (cosine > 0), best first."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}", code="invalid_k")
        query = fingerprint(text)
        scored = [(round(cosine(query, p.fingerprint), 6), p) for p in self._read()]
        scored = [(s, p) for s, p in scored if s > 0]
        scored.sort(key=lambda sp: (-sp[0], sp[1].id))
        return [PathwayMatch(p, s) for s, p in scored[:k]]

    # -- the file ------------------------------------------------------------------------------
    def _read(self) -> list[Pathway]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read pathway state {self.path}: {exc}", code="pathway_state") from exc
        if not isinstance(raw, Mapping) or raw.get("version") != STATE_VERSION or not isinstance(raw.get("pathways"), list):
            raise StorageError(f"{self.path} is not a version {STATE_VERSION} pathway state file", code="pathway_state")
        try:
            return [Pathway.from_dict(p) for p in raw["pathways"]]
        except InvalidInput as exc:  # a damaged file is the server's problem, not the caller's input
            raise StorageError(f"{self.path}: {exc.message}", code="pathway_state") from exc

    def _write(self, pathways: list[Pathway]) -> None:
        body = {"version": STATE_VERSION, "pathways": [p.to_dict() for p in sorted(pathways, key=lambda p: p.id)]}
        text = json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# -- replay ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One replayed step: ok, the error if not, whether the output equals the recorded one (None when
    nothing was recorded or the step failed), and inputs that no longer match the pathway's TypeHints."""

    index: int
    op: str
    ok: bool
    error_code: str | None = None
    error: str | None = None
    same_output: bool | None = None
    hint_mismatches: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hint_mismatches": list(self.hint_mismatches)}


@dataclasses.dataclass
class ReplayReport:
    pathway_id: str
    steps: list[StepResult]
    succeeded: int
    failed: int
    skipped: int

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.skipped == 0

    def to_dict(self) -> dict[str, Any]:
        return {"pathway_id": self.pathway_id, "ok": self.ok, "succeeded": self.succeeded, "failed": self.failed,
                "skipped": self.skipped, "steps": [s.to_dict() for s in self.steps]}


def replay(pathway: Pathway, run_op: RunOp, *, stop_on_failure: bool = False) -> ReplayReport:
    """Run the pathway's steps in order through `run_op(op_name, input)` and report which still succeed.
    A step fails when run_op raises; with `stop_on_failure` the steps after a failure are skipped."""
    hints: dict[int, list[TypeHint]] = {}
    for a in pathway.annotations:
        if isinstance(a, TypeHint):
            hints.setdefault(a.step, []).append(a)
    results: list[StepResult] = []
    failed = 0
    for i, step in enumerate(pathway.steps):
        if failed and stop_on_failure:
            break
        mismatches = tuple(f"{h.field}: expected {h.type}, got {json_type(step.input.get(h.field))}"
                           for h in hints.get(i, []) if json_type(step.input.get(h.field)) != h.type)
        try:
            output = run_op(step.op, json.loads(_canonical(step.input)))  # a copy: run_op may mutate it
        except Exception as exc:  # any failure of the op is the step's result, not ours
            failed += 1
            code = exc.code if isinstance(exc, LakehouseError) else type(exc).__name__
            log.info("replay %s step %d (%s) failed: %s", pathway.id, i, step.op, exc)
            results.append(StepResult(i, step.op, False, code, str(exc)[:500], None, mismatches))
            continue
        same = None if step.output_digest is None else output_digest(output) == step.output_digest
        results.append(StepResult(i, step.op, True, None, None, same, mismatches))
    succeeded = sum(1 for r in results if r.ok)
    return ReplayReport(pathway.id, results, succeeded, failed, len(pathway.steps) - len(results))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(value)


def _iso(now: dt.datetime | None) -> str:
    stamp = now if now is not None else dt.datetime.now(dt.UTC)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp.isoformat(timespec="seconds") + "Z"
