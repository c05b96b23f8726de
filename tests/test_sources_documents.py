"""PDF documents and Excel workbooks as ingest sources, through the dataset.ingest op (Python and HTTP)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer
from pdf_docs import make_pdf
from xlsx_books import make_xlsx

import lakehouse
from lakehouse.errors import InvalidInput
from lakehouse.http import create_app

HANDBOOK = make_pdf([
    "Forklift safety\nOperators need an OSHA-10 card (and a licence).",
    None,  # a scanned page: no text layer
    "Night shift\n\nThe crane operator reports to the yard lead.",
])


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        yield lk


def test_a_pdf_becomes_chunks_per_page_and_pages_without_text_are_reported(lake: lakehouse.Lake,
                                                                          tmp_path: Path) -> None:
    path = tmp_path / "handbook.pdf"
    path.write_bytes(HANDBOOK)
    res = lake.ingest(str(path), "handbook")
    assert (res.format, res.rows) == ("pdf", 2)
    assert res.source_info["pages"] == 3
    assert res.source_info["pages_without_text"] == [{"document": "handbook.pdf", "page": 2}]
    rows = lake.sql("SELECT document, page, chunk, text FROM handbook ORDER BY page").fetchall()
    assert [(d, p, c) for d, p, c, _ in rows] == [("handbook.pdf", 1, 1), ("handbook.pdf", 3, 1)]
    assert "OSHA-10 card (and a licence)" in rows[0][3]
    assert lake.dataset("handbook")["snapshots"][0]["source"] == str(path)
    assert lake.ingest(str(path), "handbook", mode="append").skipped  # the same document again


def test_chunk_size_is_an_option_and_changes_what_is_stored(lake: lakehouse.Lake) -> None:
    long = make_pdf(["\n\n".join(f"Paragraph {i} says something about forklifts." for i in range(40))])
    small = lake.ingest(long, "small", filename="long.pdf", chunk_chars=200)
    big = lake.ingest(long, "big", filename="long.pdf")
    assert small.rows > big.rows >= 1
    assert lake.sql("SELECT max(length(text)) FROM small").fetchone()[0] <= 200


def test_a_pdf_with_no_text_at_all_is_refused(lake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput) as err:
        lake.ingest(make_pdf([None, None]), "scan", filename="scan.pdf")
    assert err.value.code == "no_text"
    assert lake.datasets() == []


def test_a_pdf_goes_straight_into_a_corpus(lake: lakehouse.Lake) -> None:
    res = lake.ingest(HANDBOOK, "handbook", filename="handbook.pdf", corpus="handbook_docs")
    assert res.source_info["corpus"] == {"name": "handbook_docs", "rows": 2}
    hits = lake.vector_search("handbook_docs", "forklift operators OSHA card", 1)
    assert hits[0].id == "handbook.pdf:1:1"
    other = make_pdf(["Welders wear a mask."])
    lake.ingest(other, "handbook", filename="welding.pdf", mode="append", corpus="handbook_docs")
    assert lake.corpus("handbook_docs")["rows"] == 3


def test_options_of_other_sources_are_refused_before_anything_is_written(lake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput) as err:
        lake.ingest(b"id,text\n1,a\n", "notes", filename="n.csv", corpus="c")
    assert (err.value.code, err.value.details["field"]) == ("invalid_option", "corpus")
    with pytest.raises(InvalidInput):
        lake.ingest(HANDBOOK, "h", filename="h.pdf", sheet="Sheet1")
    with pytest.raises(InvalidInput) as err:
        lake.ingest(b"id,text\n1,a\n", "notes", filename="n.csv", format="pdf")
    assert err.value.code == "unsupported_format"
    assert lake.datasets() == [] and lake.corpora() == []


def test_a_workbook_is_read_exactly(lake: lakehouse.Lake) -> None:
    book = make_xlsx({"People": [["id", "name", "rate", "total"], [1, "Ann", 1.5, ("=", "C2*2", 3)],
                                 [2, "Bob", 2.25, ("=", "C3*2", 4.5)]],
                      "Sites": [["site"], ["Joliet"]]})
    res = lake.ingest(book, "people", filename="people.xlsx")
    assert (res.format, res.rows, res.source_info["sheet"]) == ("xlsx", 2, "People")
    assert {c["name"]: c["type"] for c in res.columns} == {"id": "BIGINT", "name": "VARCHAR", "rate": "DOUBLE",
                                                           "total": "DOUBLE"}
    assert lake.sql("SELECT * FROM people ORDER BY id").fetchall() == [(1, "Ann", 1.5, 3.0), (2, "Bob", 2.25, 4.5)]
    sites = lake.ingest(book, "sites", filename="people.xlsx", sheet="Sites")
    assert lake.sql("SELECT site FROM sites").fetchall() == [("Joliet",)] and sites.rows == 1


@pytest.mark.parametrize(("book", "options", "code"), [
    (make_xlsx({"S": [["a"], [("=", "1+1", None)]]}), {}, "formula_without_value"),
    (make_xlsx({"S": [["a", "b"], [1, 2]]}, {"S": ["A2:B2"]}), {}, "merged_cells"),
    (make_xlsx({"S": [["a"], [("#", "#DIV/0!")]]}), {}, "error_cell"),
    (make_xlsx({"S": [["a"], [1]]}), {"sheet": "Other"}, "sheet_not_found"),
    # read_xlsx keeps the columns from the first to the last cell of the header row: a value outside was dropped
    (make_xlsx({"S": [["a", "b"], [1, "x", "extra"], [2]]}), {}, "cell_outside_header"),
    (make_xlsx({"S": [["a", None], [1, 2]]}), {}, "cell_outside_header"),
    (make_xlsx({"S": [[None, "b"], [1, 2]]}), {}, "cell_outside_header"),
    (make_xlsx({"S": []}), {}, "empty_file"),
    # read_xlsx drops the fraction of a serial in a date column, and counts serials before 61 a day early
    (make_xlsx({"S": [["d"], [("date", 45000)], [("date", 45000.75)]]}), {}, "inexact_date"),
    (make_xlsx({"S": [["d"], [("date", 45000)], [12.5]]}), {}, "inexact_date"),
    (make_xlsx({"S": [["d"], [("datetime", 45000.5)], [("datetime", 1)]]}), {}, "inexact_date"),
], ids=["formula-without-value", "merged-cells", "error-cell", "unknown-sheet", "cell-right-of-header",
        "value-under-a-blank-header", "value-left-of-header", "empty-sheet", "time-in-a-date-column",
        "number-among-dates", "serial-before-1900-03-01"])
def test_what_a_workbook_cannot_give_exactly_is_refused(lake: lakehouse.Lake, book: bytes, options: dict,
                                                         code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        lake.ingest(book, "book", filename="book.xlsx", **options)
    assert err.value.code == code
    assert lake.datasets() == []


def test_dates_and_times_are_stored_as_the_sheet_shows_them(lake: lakehouse.Lake) -> None:
    book = make_xlsx({"S": [["d", "t"], [("date", 45000), ("datetime", 45000.5)], [("date", 61), ("datetime", 61.25)]]})
    res = lake.ingest(book, "moments", filename="moments.xlsx")
    assert {c["name"]: c["type"] for c in res.columns} == {"d": "DATE", "t": "TIMESTAMP"}
    assert lake.sql("SELECT * FROM moments ORDER BY d").fetchall() == [
        (dt.date(1900, 3, 1), dt.datetime(1900, 3, 1, 6)), (dt.date(2023, 3, 15), dt.datetime(2023, 3, 15, 12))]


def test_a_sheet_keeps_blank_rows_and_a_blank_header_between_named_ones(lake: lakehouse.Lake) -> None:
    book = make_xlsx({"S": [["a", None, "c"], [1, 2, 3], [None, None, None], [4, None, 6]]})
    res = lake.ingest(book, "gaps", filename="gaps.xlsx")
    assert res.rows == 3
    assert lake.sql("SELECT * FROM gaps").fetchall() == [(1, 2, 3), (None, None, None), (4, None, 6)]


def test_documents_upload_over_http(lake: lakehouse.Lake) -> None:
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
        resp = http.post("/ingest", params={"dataset": "handbook"}, files={"file": ("handbook.pdf", HANDBOOK)})
        assert resp.status_code == 201, resp.text
        assert resp.json()["source_info"]["pages_without_text"] == [{"document": "handbook.pdf", "page": 2}]
        scan = http.post("/ingest", params={"dataset": "scan"}, files={"file": ("scan.pdf", make_pdf([None]))})
        assert scan.status_code == 400 and scan.json()["error"]["code"] == "no_text"
        ragged = http.post("/ingest", params={"dataset": "book"},
                           files={"file": ("book.xlsx", make_xlsx({"S": [["a"], [1, "lost"]]}))})
        assert ragged.status_code == 400 and ragged.json()["error"]["code"] == "cell_outside_header", ragged.text
        assert "cell B2" in ragged.json()["error"]["message"]
