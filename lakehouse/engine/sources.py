"""Turn an ingest source (path, glob, bytes, file object, PostgreSQL URL) into local files, hashed, with a format.

Each file keeps the name the user knows it by (`Staged.names`): error messages quote that, never
the uuid of a spooled copy in the staging folder. Sources that are not a table file (a PDF document, an
Excel workbook, a PostgreSQL table or query) are read by their module (`sources_pdf`, `sources_excel`,
`sources_postgres`) into one staged Parquet file, which ingest then reads exactly like any Parquet file;
`Staged.source_format` says what it was, and `source_info` what the source module found.
"""

from __future__ import annotations

import dataclasses
import glob as globlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lakehouse.engine import sources_postgres
from lakehouse.engine.ingest_formats import DOCUMENT_FORMATS, FORMATS, FileKind, recognise
from lakehouse.errors import Forbidden, InvalidInput

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]
_CHUNK = 1 << 20


@dataclasses.dataclass
class Staged:
    paths: list[Path]
    sha256: str
    format: str
    description: str
    temporary: list[Path] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)  # the user's name for each of `paths`
    compression: str | None = None  # "gzip" / "zstd" when the files are compressed
    source_format: str | None = None  # "pdf", "xlsx" or "postgres" when `paths` hold the rows read from it
    source_info: dict[str, Any] | None = None  # what the source module found (pages without text, the sheet...)

    @property
    def label(self) -> str:
        """The format the user gave: what the ledger and the result say."""
        return self.source_format or self.format

    def retell(self, text: str) -> str:
        """`text` (a DuckDB message) with staging paths replaced by the user's names for the files."""
        for path, name in zip(self.paths, self.names):
            text = text.replace(str(path), name)
        return text

    def cleanup(self) -> None:
        for p in self.temporary:
            p.unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """Options of the sources that are not table files; each is refused for any other source."""

    table: str | None = None        # PostgreSQL: schema.table
    query: str | None = None        # PostgreSQL: a SELECT
    sheet: str | None = None        # .xlsx: the sheet (default: the first)
    chunk_chars: int | None = None  # PDF: chunk size (default sources_pdf.CHUNK_CHARS)
    corpus: str | None = None       # PDF: the corpus the chunks are embedded into (by the dataset.ingest op)

    def check(self, kind: str) -> None:
        allowed = {"postgres": ("table", "query"), "xlsx": ("sheet",), "pdf": ("chunk_chars", "corpus")}.get(kind, ())
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is not None and f.name not in allowed:
                raise InvalidInput(f"option {f.name!r} does not apply to a {kind} source", code="invalid_option",
                                   field=f.name)


def stage(source: Source, staging_dir: Path, *, format: str = "auto", filename: str | None = None,
          options: SourceOptions | None = None) -> Staged:
    """Resolve `source` to files on disk and hash their content (SHA-256 over every file in order)."""
    if format != "auto" and format not in FORMATS:
        raise InvalidInput(f"unknown format {format!r}; use one of auto, {', '.join(FORMATS)}",
                           code="unknown_format")
    options = options or SourceOptions()
    if sources_postgres.is_postgres(source):
        options.check("postgres")
        return _stage_postgres(sources_postgres.parse(str(source)), staging_dir, options)
    temporary: list[Path] = []
    if isinstance(source, (bytes, bytearray, memoryview)):
        path, digest = _spool([bytes(source)], staging_dir, filename)
        temporary.append(path)
        paths, digests, description = [path], [digest], filename or f"<{len(source)} bytes>"
        names = [description]
    elif hasattr(source, "read"):
        name = filename or os.path.basename(str(getattr(source, "name", "") or "")) or None
        path, digest = _spool(iter(lambda: source.read(_CHUNK), b""), staging_dir, name)
        temporary.append(path)
        paths, digests, description = [path], [digest], name or "<upload>"
        names = [description]
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        paths = _expand(text)
        digests = [_hash_file(p) for p in paths]
        description = text
        names = [text] if len(paths) == 1 and not globlib.has_magic(text) else [str(p) for p in paths]
    else:
        raise InvalidInput(f"unsupported source type {type(source).__name__}; pass a path, glob, bytes or a binary file",
                           code="invalid_source")
    try:
        if all(p.stat().st_size == 0 for p in paths):
            raise InvalidInput(f"{description} is empty: nothing to ingest", code="empty_file")
        # `filename` names the content of a single file (its suffix may tell the format)
        kinds = [recognise(p, filename if filename and len(paths) == 1 else n, format) for p, n in zip(paths, names)]
        for kind, name in zip(kinds[1:], names[1:]):
            if kind != kinds[0]:
                raise InvalidInput(f"{name} holds {_kind_text(kind)} but {names[0]} holds {_kind_text(kinds[0])}: "
                                   "ingest one format at a time", code="mixed_formats")
        options.check(kinds[0].format)
        total = hashlib.sha256("".join(digests).encode()).hexdigest() if len(digests) > 1 else digests[0]
        staged = Staged(paths, total, kinds[0].format, description, temporary, names, kinds[0].compression)
        return _read_document(staged, staging_dir, options) if staged.format in DOCUMENT_FORMATS else staged
    except BaseException:
        for p in temporary:
            p.unlink(missing_ok=True)
        raise


def _read_document(staged: Staged, staging_dir: Path, options: SourceOptions) -> Staged:
    """A PDF's chunks or a workbook's rows, as one staged Parquet file. The hash covers the options that shape
    the rows, so the same document read another way is not skipped as already ingested."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    out = staging_dir / f"{uuid.uuid4().hex}.parquet"
    staged.temporary.append(out)
    if staged.format == "pdf":
        from lakehouse.engine.sources_pdf import CHUNK_CHARS, pdf_to_parquet

        chunk = options.chunk_chars or CHUNK_CHARS
        info, shape = pdf_to_parquet(staged.paths, staged.names, out, chunk), f"chunk_chars={chunk}"
    else:
        from lakehouse.engine.sources_excel import xlsx_to_parquet

        info = xlsx_to_parquet(staged.paths, staged.names, out, options.sheet)
        shape = f"sheet={info['sheet']}"
    digest = hashlib.sha256(f"{staged.sha256}:{staged.format}:{shape}".encode()).hexdigest()
    return Staged([out], digest, "parquet", staged.description, staged.temporary, [staged.description],
                  source_format=staged.format, source_info=info)


def _stage_postgres(src: sources_postgres.PgSource, staging_dir: Path, options: SourceOptions) -> Staged:
    staging_dir.mkdir(parents=True, exist_ok=True)
    out = staging_dir / f"{uuid.uuid4().hex}.parquet"
    try:
        info = sources_postgres.pg_to_parquet(src, out, table=options.table, query=options.query)
        digest = _hash_file(out)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    what = f"table {options.table}" if options.table is not None else "query"
    description = f"{src.public} {what}"
    return Staged([out], digest, "parquet", description, [out], [description], source_format="postgres",
                  source_info=info)


def _kind_text(kind: FileKind) -> str:
    return f"{kind.compression}-compressed {kind.format}" if kind.compression else kind.format


def _expand(text: str) -> list[Path]:
    if "://" in text:
        raise InvalidInput(f"remote sources are not supported yet: {text!r}", code="invalid_source")
    if globlib.has_magic(text):
        found = sorted(Path(p) for p in globlib.glob(os.path.expanduser(text)) if Path(p).is_file())
        if not found:
            raise InvalidInput(f"no files match {text!r}", code="file_not_found")
        return found
    path = Path(text).expanduser()
    if not path.is_file():
        raise InvalidInput(f"no such file: {text!r}", code="file_not_found")
    return [path]


def _spool(chunks: Iterable[bytes], staging_dir: Path, name: str | None) -> tuple[Path, str]:
    staging_dir.mkdir(parents=True, exist_ok=True)
    suffix = "".join(Path(name).suffixes[-2:]) if name else ""
    path = staging_dir / f"{uuid.uuid4().hex}{suffix}"
    h = hashlib.sha256()
    try:
        with path.open("wb") as fh:
            for chunk in chunks:
                h.update(chunk)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, h.hexdigest()


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def resolve_import_path(path: str, import_dirs: list[str]) -> Path:
    """A server-side path from a request: allowed only inside a configured import directory."""
    if not import_dirs:
        raise Forbidden("server-side paths are disabled: set import_dirs (LH_IMPORT_DIRS) to allow them",
                        code="import_dirs_unset")
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(import_dirs[0]).expanduser() / candidate
    bases = [Path(d).expanduser().resolve() for d in import_dirs]

    def inside(p: Path) -> bool:
        return any(p == b or b in p.parents for b in bases)

    resolved = candidate.resolve()
    if not inside(resolved):
        raise Forbidden(f"path {path!r} is outside the import directories", code="path_outside_import_dirs")
    if globlib.has_magic(str(candidate)):
        # Each match is checked after resolving links: a symlink in an import dir may point out of it.
        for match in globlib.glob(str(resolved)):
            if not inside(Path(match).resolve()):
                raise Forbidden(f"{match!r} (matched by {path!r}) links outside the import directories",
                                code="path_outside_import_dirs")
    return resolved


