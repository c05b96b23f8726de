"""Turn an ingest source (path, glob, bytes, file object) into local files, hashed, with a format."""

from __future__ import annotations

import dataclasses
import glob as globlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from lakehouse.errors import Forbidden, InvalidInput

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]
FORMATS = ("csv", "tsv", "json", "ndjson", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".ndjson": "ndjson",
    ".jsonl": "ndjson", ".parquet": "parquet", ".pq": "parquet",
}
_CHUNK = 1 << 20


@dataclasses.dataclass
class Staged:
    paths: list[Path]
    sha256: str
    format: str
    description: str
    temporary: list[Path] = dataclasses.field(default_factory=list)

    def cleanup(self) -> None:
        for p in self.temporary:
            p.unlink(missing_ok=True)


def stage(source: Source, staging_dir: Path, *, format: str = "auto", filename: str | None = None) -> Staged:
    """Resolve `source` to files on disk and hash their content (SHA-256 over every file in order)."""
    if format != "auto" and format not in FORMATS:
        raise InvalidInput(f"unknown format {format!r}; use one of auto, {', '.join(FORMATS)}",
                           code="unknown_format")
    temporary: list[Path] = []
    if isinstance(source, (bytes, bytearray, memoryview)):
        path, digest = _spool([bytes(source)], staging_dir, filename)
        temporary.append(path)
        paths, digests, description = [path], [digest], filename or f"<{len(source)} bytes>"
    elif hasattr(source, "read"):
        name = filename or os.path.basename(str(getattr(source, "name", "") or "")) or None
        path, digest = _spool(iter(lambda: source.read(_CHUNK), b""), staging_dir, name)
        temporary.append(path)
        paths, digests, description = [path], [digest], name or "<upload>"
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        paths = _expand(text)
        digests = [_hash_file(p) for p in paths]
        description = text
    else:
        raise InvalidInput(f"unsupported source type {type(source).__name__}; pass a path, glob, bytes or a binary file",
                           code="invalid_source")
    try:
        if all(p.stat().st_size == 0 for p in paths):
            raise InvalidInput(f"{description} is empty: nothing to ingest", code="empty_file")
        fmt = format if format != "auto" else detect_format(paths[0], filename or description)
    except BaseException:
        for p in temporary:
            p.unlink(missing_ok=True)
        raise
    total = hashlib.sha256("".join(digests).encode()).hexdigest() if len(digests) > 1 else digests[0]
    return Staged(paths, total, fmt, description, temporary)


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


def detect_format(path: Path, name: str) -> str:
    """By file suffix (ignoring .gz/.zst), else by the first bytes."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    while suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIX_FORMAT:
        return _SUFFIX_FORMAT[suffixes[-1]]
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "ndjson" if b"\n{" in stripped.replace(b"\r\n", b"\n") or b"\n" not in stripped.rstrip() else "json"
    if b"\x00" in head:
        raise InvalidInput(f"cannot tell the format of {name!r}: pass format=", code="unknown_format")
    return "csv"


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


