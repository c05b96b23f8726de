"""PDF documents as rows: the text of each page (pypdf), cut into chunks, one row per chunk.

    lake.ingest("handbook.pdf", "handbook")                  # (document, page, chunk, text)
    lake.ingest("handbook.pdf", "handbook", corpus="docs")   # and the chunks embedded into a corpus

A page with no text layer (a scan, an image) yields no row and is reported in the ingest result
(`source_info["pages_without_text"]`) instead of silently vanishing; a document none of whose pages has text
is refused (`no_text`): it needs OCR first. An encrypted or damaged document is refused (`bad_file`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.engine.matrix.builders import split_text
from lakehouse.errors import InvalidInput

log = logging.getLogger(__name__)
CHUNK_CHARS = 1200  # like the docs corpus builder: a chunk is a few paragraphs
SCHEMA = pa.schema([("document", pa.string()), ("page", pa.int32()), ("chunk", pa.int32()), ("text", pa.string())])


def pdf_to_parquet(paths: list[Path], names: list[str], out: Path, chunk_chars: int = CHUNK_CHARS) -> dict[str, Any]:
    """Write the chunks of every document to `out`; returns what was read (pages, chunks, pages without text)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    rows: dict[str, list[Any]] = {"document": [], "page": [], "chunk": [], "text": []}
    empty: list[dict[str, Any]] = []
    pages = 0
    for path, name in zip(paths, names):
        document = Path(name).name
        try:
            reader = PdfReader(path)
            if reader.is_encrypted:
                raise InvalidInput(f"{name} is an encrypted PDF: decrypt it before ingesting", code="bad_file")
            texts = [page.extract_text() or "" for page in reader.pages]
        except (PdfReadError, ValueError, KeyError, TypeError) as exc:  # pypdf's errors on damaged files
            raise InvalidInput(f"{name} is not a readable PDF: {exc}", code="bad_file") from exc
        with_text = 0
        for number, text in enumerate(texts, 1):
            chunks = list(split_text(text.replace("\x00", ""), chunk_chars)) if text.strip() else []
            if not chunks:
                empty.append({"document": document, "page": number})
                continue
            with_text += 1
            for i, chunk in enumerate(chunks, 1):
                rows["document"].append(document)
                rows["page"].append(number)
                rows["chunk"].append(i)
                rows["text"].append(chunk)
        if not with_text:
            raise InvalidInput(f"{name} has {len(texts)} page(s) and none holds text (a scanned document?): "
                               "run OCR on it first", code="no_text", pages=len(texts))
        pages += len(texts)
    pq.write_table(pa.table(rows, schema=SCHEMA), out)
    if empty:
        log.info("PDF ingest: %d page(s) without text: %s", len(empty), empty[:10])
    return {"documents": [Path(n).name for n in names], "pages": pages, "chunks": len(rows["text"]),
            "pages_without_text": empty}
