"""What a caller bound to a profile may do, checked by `Operations.call` before any op runs.

Deny by default: a profile may call only the operations of PROFILE_OPS (reads and writes of datasets and corpora,
searches, chat, its own observed ops); a read profile only those that do not write. Every dataset and corpus name
in the validated input (any field typed `DatasetName` / `CorpusName`, at any depth, and the corpora of a
configured mode) must match the profile's patterns. SQL is checked on the read-only path (`sql_scope`), and the
operations that list or search "everything" narrow it to the profile (`visible`, `default_corpora`).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pydantic

from lakehouse.engine.ops.context import CallContext, current
from lakehouse.engine.ops.types import CorpusName, DatasetName
from lakehouse.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake
    from lakehouse.engine.ops.base import Op
    from lakehouse.engine.profiles import Profile

# The operations a profile may call. Anything else (profile administration, storage, workflows, audits, drift,
# distillation, the lake-wide journal and stats) is the server owner's, and refused with profile_forbidden.
PROFILE_OPS = frozenset({
    "sql.query", "dataset.ingest", "dataset.list", "dataset.describe", "dataset.drop", "dataset.compact",
    "dataset.rows", "dataset.changes", "corpus.create", "corpus.add", "corpus.list", "corpus.describe",
    "corpus.sync", "corpus.rebuild", "corpus.rollback", "corpus.drop", "corpus.rows", "embed", "vectors.search",
    "vectors.hybrid", "text.search", "hybrid.search", "matrix.search", "matrix.relevance", "playbook.record",
    "playbook.lookup", "chat", "chat.models", "rag.ask", "observer.ops", "truth.check",
})


def resolve(lake: Lake, caller: CallContext) -> Profile | None:
    """The caller's profile: the one its entrance resolved, else looked up by name (a SQL function's caller)."""
    if caller.profile is None:
        return None
    if caller.scope is not None and caller.scope.name == caller.profile:
        return caller.scope
    try:
        return lake.profiles.get(caller.profile)
    except NotFound:
        raise Forbidden(f"profile {caller.profile!r} does not exist (any more)", code="profile_forbidden") from None


def check(lake: Lake, op: Op, inp: pydantic.BaseModel, profile: Profile) -> None:
    """Refuse (Forbidden, code profile_forbidden) what `profile` may not do with `op` and this input."""
    if op.name not in PROFILE_OPS:
        raise Forbidden(f"{op.name} is not available to profile {profile.name!r}", code="profile_forbidden")
    if op.writes and profile.access != "write":
        raise Forbidden(f"{op.name} writes to the lake; profile {profile.name!r} may only read",
                        code="profile_forbidden")
    for kind, name in names(inp):
        (profile.check_dataset if kind == "dataset" else profile.check_corpus)(name)
    for field in ("mode", "force_mode"):
        mode = getattr(inp, field, None)
        if mode is not None:
            for corpus in mode_corpora(lake.settings.modes, mode):
                profile.check_corpus(corpus)
    if op.name == "playbook.record":  # entries are checked one by one by the playbook store; their corpus here
        for entry in inp.entries:  # type: ignore[attr-defined]
            corpus = entry.get("corpus") if isinstance(entry, dict) else None
            if isinstance(corpus, str):
                profile.check_corpus(corpus)


def mode_corpora(modes: Any, name: str) -> list[str]:
    """The corpora a configured mode may search: its own and its isolation mode's (the gate may pick either)."""
    spec = modes.get(name) if hasattr(modes, "get") else None
    if not isinstance(spec, dict):
        return []  # an unknown mode is the search's error to report
    out = list(spec.get("corpora") or [])
    isolation = spec.get("isolation")
    if isinstance(isolation, str) and isinstance(modes.get(isolation), dict):
        out += list(modes[isolation].get("corpora") or [])
    return [c for c in out if isinstance(c, str)]


def names(inp: pydantic.BaseModel) -> Iterator[tuple[str, str]]:
    """("dataset" | "corpus", name) for every value of a DatasetName / CorpusName field, at any depth."""
    for field, kind in _fields(type(inp)):
        yield from _values(getattr(inp, field), kind)


def _values(value: Any, kind: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(kind, str):
        if isinstance(value, str):
            yield kind, value
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from _values(v, kind)
    elif isinstance(value, pydantic.BaseModel):
        yield from names(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _values(v, kind)


@functools.cache
def _fields(model: type[pydantic.BaseModel]) -> tuple[tuple[str, Any], ...]:
    """The fields of `model` that hold names (or models that may), with what they name."""
    out = []
    for field, info in model.model_fields.items():
        kind = _kind(info.rebuild_annotation() if hasattr(info, "rebuild_annotation") else info.annotation)
        if kind is not None:
            out.append((field, kind))
    return tuple(out)


def _kind(annotation: Any) -> Any:
    if annotation == DatasetName:
        return "dataset"
    if annotation == CorpusName:
        return "corpus"
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        kind = _kind(arg)
        if kind is not None:
            return kind
    return None


# -- narrowing what an operation returns or searches -------------------------------------------------------


def profile() -> Profile | None:
    """The profile of the running operation (None: an unscoped caller)."""
    return current().scope


def visible(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Of a listing of datasets or corpora, the ones the caller's profile binds."""
    p = profile()
    if p is None:
        return rows
    has = p.has_dataset if kind == "dataset" else p.has_corpus
    return [r for r in rows if has(r["name"])]


def default_corpora(lake: Lake, corpora: Any, mode: str | None = None) -> Any:
    """`corpora` as given; for a profile that gave neither corpora nor a mode, the corpora it binds."""
    p = profile()
    if p is None or corpora is not None or mode is not None:
        return corpora
    mine = [c["name"] for c in lake.vectors.corpora() if p.has_corpus(c["name"])]
    if not mine:
        raise NotFound(f"profile {p.name!r} binds no corpus that exists", code="no_corpora")
    return mine


def in_scope_corpus(corpus: str) -> bool:
    p = profile()
    return p is None or p.has_corpus(corpus)
