"""The contamination firewall: training data must not contain the evaluation set it will be judged on.

A record's text (its query, then its answer) is checked against every held-out text; the first rule
that matches, in this order, drops the record:

    | rule       | match                                                                         |
    |------------|-------------------------------------------------------------------------------|
    | exact      | the texts are equal once leading and trailing whitespace is stripped          |
    | normalised | equal after normalise(): NFKC, casefold, punctuation -> space, one space      |
    | ngram      | they share an n-gram (default 13) of normalised word tokens; a held-out text  |
    |            | shorter than n but of at least 5 tokens counts when it appears whole          |
    | embedding  | embedding cosine >= threshold (default 0.9); only when an `embed` is given    |

Held-out sets (`load_holdout`), a path or rows:
    *.jsonl / *.ndjson / *.json   one JSON value a line: a string, or an object whose `query`, `question`,
                                  `prompt`, `answer` and `text` keys each give a held-out text; `id`
                                  names the item (default `line:<n>`)
    *.csv                         a header row; the same columns (at least one of the text columns)
    *.txt                         one held-out text per non-blank line, id `line:<n>`
    rows                          a list of strings or of objects as in JSONL (id default `row:<n>`)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lakehouse.errors import InvalidInput

TEXT_FIELDS = ("query", "question", "prompt", "answer", "text")
RULES = ("exact", "normalised", "ngram", "embedding")
EMBED_BATCH = 1024
MIN_CONTAINED_TOKENS = 5  # a shorter held-out text ("Ann", "in Ohio") would match half of any corpus
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")
Embed = Callable[[list[str]], np.ndarray]
HoldoutSource = str | Path | Sequence[str | Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class HoldoutText:
    """One held-out text: the item it belongs to and the field it came from."""

    item_id: str
    field: str
    text: str


@dataclasses.dataclass(frozen=True)
class Match:
    """Why a record is contaminated: its field, the rule, the held-out item and field, and evidence
    (the shared n-gram, or the cosine)."""

    field: str
    rule: str
    holdout_id: str
    holdout_field: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def normalise(text: str) -> str:
    """NFKC, casefold, punctuation (and `_`) to spaces, whitespace collapsed, stripped."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold())).strip()


def load_holdout(source: HoldoutSource) -> list[HoldoutText]:
    """Held-out texts from a file or rows, in order (see the module docstring for the formats)."""
    if isinstance(source, (str, Path)):
        return _load_file(Path(source))
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Sequence):
        raise InvalidInput("holdout must be a file path or a list of strings / objects", code="invalid_holdout")
    out: list[HoldoutText] = []
    for i, row in enumerate(source, 1):
        out += _item(row, f"row:{i}", f"holdout row {i}")
    return out


class Firewall:
    """Checks texts against one held-out set; build it once, check any number of records."""

    def __init__(self, holdout: Sequence[HoldoutText], *, embed: Embed | None = None,
                 cosine_threshold: float = 0.9, ngram: int = 13) -> None:
        if isinstance(ngram, bool) or not isinstance(ngram, int) or ngram < 1:
            raise InvalidInput(f"ngram must be a positive integer, got {ngram!r}", code="invalid_ngram")
        if isinstance(cosine_threshold, bool) or not isinstance(cosine_threshold, (int, float)) \
                or not 0 < cosine_threshold <= 1:
            raise InvalidInput(f"cosine_threshold must be in (0, 1], got {cosine_threshold!r}",
                               code="invalid_cosine_threshold")
        self.holdout = list(holdout)
        self.embed = embed
        self.cosine_threshold = float(cosine_threshold)
        self.ngram = ngram
        self._exact: dict[str, int] = {}
        self._normal: dict[str, int] = {}
        self._grams: dict[tuple[str, ...], int] = {}  # n-grams, and whole held-out texts shorter than n
        for i, h in enumerate(self.holdout):  # the first held-out text wins: setdefault
            self._exact.setdefault(h.text.strip(), i)
            norm = normalise(h.text)
            self._normal.setdefault(norm, i)
            tokens = norm.split()
            if len(tokens) >= ngram:
                for gram in _grams(tokens, ngram):
                    self._grams.setdefault(gram, i)
            elif len(tokens) >= MIN_CONTAINED_TOKENS:
                self._grams.setdefault(tuple(tokens), i)
        self._sizes = sorted({len(g) for g in self._grams}, reverse=True)
        self._vectors: np.ndarray | None = None

    @property
    def rules(self) -> list[str]:
        """The rules this firewall applies (embedding only with an embed callable)."""
        return list(RULES if self.embed is not None else RULES[:-1])

    def check(self, texts: Sequence[Mapping[str, str | None]]) -> list[list[Match]]:
        """For each record's {field: text}, its matches: one per matching field (the first rule that
        matches, in RULES order). Texts no lexical rule caught are embedded EMBED_BATCH at a time."""
        found: list[dict[str, Match]] = [{} for _ in texts]
        pending: list[tuple[int, str, str]] = []
        for r, fields in enumerate(texts):
            for field, text in fields.items():
                if not text or not text.strip():
                    continue
                match = self._lexical(field, text)
                if match is not None:
                    found[r][field] = match
                elif self.embed is not None and self.holdout:
                    pending.append((r, field, text))
        for start in range(0, len(pending), EMBED_BATCH):  # bounded memory: batch x held-out cosines at a time
            batch = pending[start:start + EMBED_BATCH]
            sims = _unit(self.embed([t for _, _, t in batch])) @ self._holdout_vectors().T
            for (r, field, _), row in zip(batch, sims):
                best = int(np.argmax(row))
                if row[best] >= self.cosine_threshold:
                    found[r][field] = self._match(field, "embedding", best, f"cosine {row[best]:.4f}")
        return [[m[f] for f in fields if f in m] for m, fields in zip(found, texts)]

    def describe(self) -> dict[str, Any]:
        return {"holdout_items": len({h.item_id for h in self.holdout}), "holdout_texts": len(self.holdout),
                "rules": self.rules, "cosine_threshold": self.cosine_threshold, "ngram": self.ngram}

    def _lexical(self, field: str, text: str) -> Match | None:
        if (i := self._exact.get(text.strip())) is not None:
            return self._match(field, "exact", i, "identical text")
        norm = normalise(text)
        if (i := self._normal.get(norm)) is not None:
            return self._match(field, "normalised", i, "identical after normalising")
        tokens = norm.split()
        for size in self._sizes:
            for gram in _grams(tokens, size):
                if (i := self._grams.get(gram)) is not None:
                    return self._match(field, "ngram", i, " ".join(gram))
        return None

    def _match(self, field: str, rule: str, index: int, detail: str) -> Match:
        h = self.holdout[index]
        return Match(field, rule, h.item_id, h.field, detail)

    def _holdout_vectors(self) -> np.ndarray:
        if self._vectors is None:
            assert self.embed is not None
            self._vectors = _unit(self.embed([h.text for h in self.holdout]))
        return self._vectors


def _grams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise InvalidInput(f"embed() must return a 2-d array, got shape {vectors.shape}", code="invalid_embedding")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _load_file(path: Path) -> list[HoldoutText]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInput(f"holdout file {str(path)!r} does not exist", code="invalid_holdout")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"holdout file {path.name!r} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                           code="invalid_holdout") from None
    except OSError as exc:
        raise InvalidInput(f"holdout file {path.name!r} cannot be read: {exc.strerror or type(exc).__name__}",
                           code="invalid_holdout") from None
    out: list[HoldoutText] = []
    if suffix in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"{path.name}, line {n}: not JSON ({exc})", code="invalid_holdout",
                                       line=n) from exc
                out += _item(value, f"line:{n}", f"{path.name}, line {n}")
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not set(reader.fieldnames) & set(TEXT_FIELDS):
            raise InvalidInput(f"{path.name}: the header needs one of the columns {', '.join(TEXT_FIELDS)}",
                               code="invalid_holdout")
        for n, row in enumerate(reader, 2):
            out += _item({k: v for k, v in row.items() if k is not None}, f"line:{n}", f"{path.name}, line {n}")
    elif suffix in (".txt", ".text"):
        out = [HoldoutText(f"line:{n}", "text", line.strip())
               for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        raise InvalidInput(f"holdout file {path.name!r}: use .jsonl/.ndjson/.json (JSON lines), .csv or .txt",
                           code="invalid_holdout")
    return out


def _item(value: Any, default_id: str, where: str) -> list[HoldoutText]:
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"{where}: empty held-out text", code="invalid_holdout")
        return [HoldoutText(default_id, "text", value)]
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}: a held-out item is a string or an object", code="invalid_holdout")
    item_id = value.get("id")
    item_id = default_id if item_id in (None, "") else str(item_id)
    texts = [HoldoutText(item_id, f, value[f]) for f in TEXT_FIELDS
             if isinstance(value.get(f), str) and value[f].strip()]
    if not texts:
        raise InvalidInput(f"{where}: no held-out text (give one of {', '.join(TEXT_FIELDS)})", code="invalid_holdout")
    return texts
