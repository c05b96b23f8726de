"""Corpus builders from a folder: Markdown docs split into chunks, Python code split into symbols.

    lakehouse corpus build lakehouse_arch_v1 --from docs/ --kind docs
    lakehouse corpus build lakehouse_symbols_v1 --from src/ --kind code
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lakehouse.errors import InvalidInput

log = logging.getLogger(__name__)
DOC_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


MAX_CHARS = {"docs": 1200, "code": 4000}  # default chunk size per corpus kind


def chunk_markdown(text: str, *, max_chars: int = MAX_CHARS["docs"]) -> Iterator[tuple[str, str]]:
    """(heading path, chunk) pairs: a chunk never spans headings; long sections split on
    paragraphs, and an over-long paragraph on sentence ends, so each chunk is <= max_chars."""
    path: list[str] = []
    buf: list[str] = []

    def flush() -> Iterator[tuple[str, str]]:
        body = "\n".join(buf).strip()
        buf.clear()
        if not body:
            return
        heading = " > ".join(path)
        for part in split_text(body, max_chars):
            yield heading, part

    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            yield from flush()
            level = len(m.group(1))
            path[:] = path[: level - 1] + [m.group(2)]
        else:
            buf.append(line)
    yield from flush()


def split_text(body: str, max_chars: int) -> Iterator[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    current = ""
    for para in paragraphs:
        pieces = [para] if len(para) <= max_chars else _sentences(para, max_chars)
        for piece in pieces:
            if current and len(current) + 2 + len(piece) > max_chars:
                yield current
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        yield current


def _sentences(para: str, max_chars: int) -> list[str]:
    out, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", para):
        while len(sentence) > max_chars:  # no sentence end in sight: cut hard
            out.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out


def python_symbols(source: str, module: str, *, max_chars: int = MAX_CHARS["code"]) -> Iterator[dict[str, Any]]:
    """The module, each class and each function/method: kind, qualified name, signature, docstring, body."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree) or ""
    yield {"name": module, "kind": "module", "line": 1, "signature": f"module {module}",
           "text": f"module {module}\n{doc}".strip()[:max_chars]}

    def walk(node: ast.AST, prefix: str) -> Iterator[dict[str, Any]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}.{child.name}"
                if isinstance(child, ast.ClassDef):
                    kind = "class"
                    bases = ", ".join(ast.unparse(b) for b in child.bases)
                    signature = f"class {child.name}({bases})" if bases else f"class {child.name}"
                else:
                    kind = "method" if isinstance(node, ast.ClassDef) else "function"
                    asyn = "async " if isinstance(child, ast.AsyncFunctionDef) else ""
                    ret = f" -> {ast.unparse(child.returns)}" if child.returns else ""
                    signature = f"{asyn}def {child.name}({ast.unparse(child.args)}){ret}"
                body = "\n".join(lines[child.lineno - 1: child.end_lineno])
                text = f"{kind} {qual}\n{signature}\n{ast.get_docstring(child) or ''}\n{body}"
                yield {"name": qual, "kind": kind, "line": child.lineno, "signature": signature,
                       "text": text[:max_chars]}
                yield from walk(child, qual)

    yield from walk(tree, module)


def build_rows(folder: Path, kind: str, *, max_chars: int | None = None) -> list[dict[str, Any]]:
    """Corpus rows {id, text, metadata} for every doc chunk or code symbol under `folder`."""
    if not folder.is_dir():
        raise InvalidInput(f"--from {str(folder)!r} is not a directory", code="invalid_source")
    rows: list[dict[str, Any]] = []
    if kind == "docs":
        cap = max_chars or MAX_CHARS[kind]
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in DOC_SUFFIXES and p.is_file()):
            rel = path.relative_to(folder).as_posix()
            text = path.read_text(encoding="utf-8", errors="replace")
            for i, (heading, chunk) in enumerate(chunk_markdown(text, max_chars=cap)):
                rows.append({"id": f"{rel}#{i}", "text": f"{heading}\n{chunk}" if heading else chunk,
                             "metadata": {"file": rel, "heading": heading, "chunk": i}})
    elif kind == "code":
        cap = max_chars or MAX_CHARS[kind]
        for path in sorted(p for p in folder.rglob("*.py") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            module = rel[:-3].replace("/", ".").removesuffix(".__init__")
            try:
                symbols = list(python_symbols(path.read_text(encoding="utf-8", errors="replace"), module,
                                              max_chars=cap))
            except SyntaxError as exc:
                log.warning("skipping %s: %s", rel, exc)
                continue
            for sym in symbols:
                rows.append({"id": f"{rel}:{sym['name']}", "text": sym["text"],
                             "metadata": {"file": rel, "symbol": sym["name"], "kind": sym["kind"],
                                          "line": sym["line"], "signature": sym["signature"]}})
    else:
        raise InvalidInput(f"unknown corpus kind {kind!r}; use docs or code", code="invalid_kind")
    return rows


def folder_source(folder: str | Path, kind: str, max_chars: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, source description) of a folder of docs or code, for `VectorEngine.create_corpus`."""
    folder = Path(folder).expanduser().resolve()
    rows = build_rows(folder, kind, max_chars=max_chars)
    if not rows:
        raise InvalidInput(f"no {kind} found under {str(folder)!r}", code="empty_source")
    files = len({r["metadata"]["file"] for r in rows})
    source = {"dir": str(folder), "files": files, "chunks": len(rows), "max_chars": max_chars or
              MAX_CHARS[kind], "chunking": "markdown headings + paragraphs" if kind == "docs"
              else "python ast symbols"}
    return rows, source
