"""What a file to ingest is, from its first bytes as well as its name.

A name can lie (a PDF saved as `.csv`) and bytes have no name (an upload), so both are read:
the content decides whenever it is recognisable, the name only breaks ties between text
formats. Compressed CSV/JSON (gzip, zstd) is read as such; PDF documents and Excel workbooks
(.xlsx) are formats of their own (`sources_pdf`, `sources_excel`), recognised by content; every other
binary format is refused with `unsupported_format`, saying what it looks like, before DuckDB's CSV
sniffer can turn it into a table with a column named `%PDF-1.4`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import BinaryIO

from lakehouse.errors import InvalidInput

FORMATS = ("csv", "tsv", "json", "ndjson", "parquet", "pdf", "xlsx")
DOCUMENT_FORMATS = ("pdf", "xlsx")  # read by a source module into rows, then ingested like Parquet
SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".ndjson": "ndjson",
    ".jsonl": "ndjson", ".parquet": "parquet", ".pq": "parquet",
}
_PDF = "a PDF document"
COMPRESSION_SUFFIX = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
HEAD = 8192

# (offset, magic, what it looks like). Checked in order; the first match wins. Magic made of printable
# characters could also start a CSV header ("MZ_code,..."), so those count only when the head is
# binary (see `_binary`); the rest are unmistakable.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", _PDF),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"PK\x03\x04", "a ZIP archive (or .xlsx/.docx)"),
    (0, b"PK\x05\x06", "a ZIP archive (or .xlsx/.docx)"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls) or another legacy Office document"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"\x7fELF", "an executable (ELF)"),
    (0, b"\xca\xfe\xba\xbe", "a Java class or Mach-O executable"),
    (0, b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (0, b"{\\rtf", "an RTF document"),
)
_PRINTABLE_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"BZh", "a bzip2-compressed file"),
    (257, b"ustar", "a tar archive"),
    (8, b"DUCK", "a DuckDB database"),
    (0, b"ARROW1", "an Arrow IPC (Feather) file"),
    (0, b"ORC", "an ORC file"),
    (0, b"Obj", "an Avro file"),
    (0, b"MZ", "a Windows executable"),
    (0, b"OggS", "an Ogg audio/video file"),
    (0, b"ID3", "an MP3 audio file"),
    (0, b"fLaC", "a FLAC audio file"),
    (4, b"ftyp", "an MP4/QuickTime video or HEIC image"),
    (0, b"RIFF", "a RIFF media file (WAV/AVI/WebP)"),
)
_UTF16 = (b"\xff\xfe", b"\xfe\xff")
# Names that say "a format we do not read yet" even when the bytes are not recognisable.
_UNSUPPORTED_SUFFIX = {
    ".pdf": "a PDF document", ".xlsx": "an Excel workbook", ".xlsm": "an Excel workbook",
    ".xls": "an Excel workbook", ".ods": "an OpenDocument spreadsheet", ".docx": "a Word document",
    ".doc": "a Word document", ".zip": "a ZIP archive", ".png": "a PNG image", ".jpg": "a JPEG image",
    ".jpeg": "a JPEG image", ".gif": "a GIF image", ".avro": "an Avro file", ".orc": "an ORC file",
    ".feather": "an Arrow IPC (Feather) file", ".arrow": "an Arrow IPC file", ".xml": "an XML document",
    ".html": "an HTML document", ".htm": "an HTML document", ".bz2": "a bzip2-compressed file",
    ".xz": "an xz-compressed file", ".7z": "a 7-Zip archive", ".rar": "a RAR archive", ".tar": "a tar archive",
}
# Objects or arrays of objects: what JSON data starts with, and no CSV does ("[id],[name]" does not match).
_JSON_START = re.compile(rb'\A(\xef\xbb\xbf)?\s*(\{\s*"|\[\s*[{\[\]])')
_PDF_LATE = re.compile(rb"[\r\n]%PDF-\d")
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


@dataclasses.dataclass(frozen=True)
class FileKind:
    format: str                 # one of FORMATS
    compression: str | None     # None, "gzip" or "zstd": what DuckDB's readers are told


def looks_like(head: bytes) -> str | None:
    """What a binary head looks like ("a PDF document"), or None for text and our own formats."""
    for offset, magic, what in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return _office(head) if magic.startswith(b"PK") else what
    if _PDF_LATE.search(head[:1024]):  # PDF readers accept junk before the header in the first kilobyte
        return _PDF
    if head.startswith(b"%!PS"):
        return "a PostScript document"
    if _binary(head):
        for offset, magic, what in _PRINTABLE_MAGIC:
            if head[offset:offset + len(magic)] == magic:
                return what
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML document"
    if text.startswith(b"<?xml"):
        return "an XML document"
    return None


def _office(head: bytes) -> str:
    """A ZIP archive, or the Office document it is (their first entries name the parts)."""
    for folder, what in ((b"xl/", "an Excel workbook (.xlsx)"), (b"word/", "a Word document (.docx)"),
                         (b"ppt/", "a PowerPoint presentation (.pptx)")):
        if folder in head:
            return what
    return "a ZIP archive (or .xlsx/.docx)"


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"


def _control_bytes(head: bytes) -> int:
    """How many bytes of `head` no text holds (NUL and other control characters but tab and newlines):
    about one in nine of compressed or random data, next to none of text in any 8-bit encoding."""
    if b"\x00" in head:
        return len(head)
    return len(head) - len(head.translate(None, _CONTROL))


def _binary(head: bytes) -> bool:
    """NUL bytes, or bytes that are not UTF-8 (ignoring a character cut at the end of the head)."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3 or exc.reason != "unexpected end of data"
    return False


def recognise(path: Path, name: str, format: str = "auto") -> FileKind:
    """The format and compression of the file at `path` (named `name` by the user), or InvalidInput."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    with path.open("rb") as fh:
        head = fh.read(HEAD)
    if head.startswith(_UTF16):
        raise InvalidInput(f"{name} is UTF-16 text: save it as UTF-8", code="bad_encoding")
    compression = "gzip" if head.startswith(_GZIP) else "zstd" if head.startswith(_ZSTD) else None
    if compression:
        head = _decompressed_head(path, name, compression)
    elif suffixes and suffixes[-1] in COMPRESSION_SUFFIX:
        raise InvalidInput(f"{name} is named {suffixes[-1]} but is not {COMPRESSION_SUFFIX[suffixes[-1]]}-compressed",
                           code="unsupported_format")
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIX:
        suffixes.pop()
    what = looks_like(head)
    document = _document_format(path, what) if not compression else None
    if format in DOCUMENT_FORMATS or document is not None:
        if document is None or format not in ("auto", document):
            raise InvalidInput(f"{name} is not {'a PDF document' if format == 'pdf' else 'an .xlsx workbook'}"
                               if format in DOCUMENT_FORMATS else f"{name} is a {document} file, not {format}",
                               code="unsupported_format", looks_like=what)
        return FileKind(document, None)
    if what is not None and what.startswith("a ZIP archive") and suffixes[-1:] == [".xlsx"]:
        raise InvalidInput(f"{name} is not a readable .xlsx workbook (a ZIP archive without a workbook part)",
                           code="bad_file")
    if what is None and suffixes and suffixes[-1] in _UNSUPPORTED_SUFFIX:
        what = _UNSUPPORTED_SUFFIX[suffixes[-1]]
    if what is not None:
        raise InvalidInput(f"{name} looks like {what}: ingest reads CSV, TSV, JSON, NDJSON and Parquet "
                           "(optionally gzip- or zstd-compressed), PDF and .xlsx", code="unsupported_format",
                           looks_like=what)
    parquet = head.startswith(b"PAR1")
    if format != "auto":
        fmt = format
    elif parquet:
        fmt = "parquet"
    elif suffixes and suffixes[-1] in SUFFIX_FORMAT and not (
            SUFFIX_FORMAT[suffixes[-1]] in ("csv", "tsv") and _JSON_START.match(head)):
        fmt = SUFFIX_FORMAT[suffixes[-1]]
    else:  # no telling name, or JSON saved as .csv (read as CSV it would "succeed" with no rows)
        fmt = _text_format(head)
    if compression and fmt == "parquet":
        raise InvalidInput(f"{name} is a {compression}-compressed Parquet file: Parquet compresses its own pages; "
                           "ingest the .parquet file itself", code="unsupported_format")
    if fmt != "parquet" and _control_bytes(head) > len(head) // 20:
        raise InvalidInput(f"{name} looks like binary data (control bytes), not {fmt} text",
                           code="unsupported_format", looks_like="binary data")
    return FileKind(fmt, compression)


def _document_format(path: Path, what: str | None) -> str | None:
    """"pdf" or "xlsx" when the content is one (a ZIP is an .xlsx when it holds a workbook part)."""
    if what == _PDF:
        return "pdf"
    if what is not None and what.startswith(("a ZIP archive", "an Excel workbook (.xlsx)")):
        from lakehouse.engine.sources_excel import is_xlsx

        return "xlsx" if is_xlsx(path) else None
    return None


def _text_format(head: bytes) -> str:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "ndjson" if b"\n{" in stripped.replace(b"\r\n", b"\n") or b"\n" not in stripped.rstrip() else "json"
    return "csv"


def open_bytes(path: Path, compression: str | None) -> BinaryIO:
    """The file's bytes, decompressed. pyarrow's streams, because Python's standard library has no
    zstd; imported here so that plain files do not pay for importing pyarrow."""
    if compression is None:
        return open(path, "rb")
    import pyarrow

    return pyarrow.input_stream(str(path), compression=compression)


def _decompressed_head(path: Path, name: str, compression: str) -> bytes:
    """The first decompressed bytes, to recognise what the compressed file holds."""
    try:
        with open_bytes(path, compression) as fh:
            return fh.read(HEAD)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid/ArrowIOError derive from these
        raise InvalidInput(f"{name} is not a readable {compression} file: {exc}", code="bad_file") from exc
