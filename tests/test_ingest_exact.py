"""Ingest stores exactly the records a file holds, with the values it holds, or refuses and changes
nothing (issue 16). One section per defect class; each case failed on main before the fix."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from decimal import Decimal

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from http_server import LiveServer

from lakehouse.errors import InvalidInput
from lakehouse.http import create_app


def rows(lake, sql):
    return lake.sql(sql).fetchall()


def refused(lake, write, name, content, dataset="d", code=None, match=None, **options):
    """Ingest must raise InvalidInput, leave no table and no ledger row for `dataset`."""
    with pytest.raises(InvalidInput, match=match) as info:
        lake.ingest(write(name, content), dataset, **options)
    if code:
        assert info.value.code == code, info.value.to_dict()
    assert "staging" not in str(info.value) and not any((lake.root / "staging").glob("*"))
    assert rows(lake, f"SELECT count(*) FROM lake.lh.ingests WHERE dataset = '{dataset}'") == [(0,)]
    return info.value


GOOD = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(100))


# -- 1. ragged CSVs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "line", "found", "expected"),
    [
        (GOOD + "101,x,y\n", 102, 3, 2),                    # a long last line: was 1 row, columns column0..2
        (GOOD + "101;x\n", 102, 1, 2),                      # a ';' in the last line: was 1 row
        (GOOD + "101\n", 102, 1, 2),                        # a short last line
        ("a,b,c\n1,2\n3,4,5\n6\n7,8,9\n", 2, 2, 3),         # small, short and long rows
        ('a,b\n1,"x\ny"\n2,z\n3,w,extra\n', 5, 3, 2),       # line numbers count the quoted newline
        ("a\tb\n1\t2\n3\t4\t5\n", 3, 3, 2),                 # TSV
        ("a,b,c\n1,2\n3,4\n5,6\n", 2, 2, 3),                 # a header wider than every row
        ("a,b\r\n1,2\r\n3,4,5\r\n", 3, 3, 2),                # CRLF
        ("id,t\n" + "".join(f'{i},"t {i}, ok"\n' for i in range(30_000)) + '30000,"x",y\n', 30_002, 3, 2),
    ],
)
def test_ragged_csv_is_refused_with_its_line(lake, write, content, line, found, expected):
    name = "r.tsv" if "\t" in content else "r.csv"
    err = refused(lake, write, name, content, code="ragged_rows",
                  match=rf"line {line} of .*{name} has {found} fields, expected {expected}")
    assert err.details["line"] == line


def test_ragged_csv_uploaded_as_bytes_names_the_upload(lake):
    with pytest.raises(InvalidInput, match=r"line 3 of people\.csv has 3 fields") as info:
        lake.ingest(b"id,name\n1,a\n2,b,c\n", "people", filename="people.csv")
    assert "staging" not in str(info.value)


def test_on_ragged_pad_fills_missing_fields_and_refuses_extra_ones(lake, write):
    res = lake.ingest(write("p.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n"), "p", on_ragged="pad")
    assert res.rows == 3 and rows(lake, "SELECT * FROM p ORDER BY a") == [(1, 2, 3), (4, 5, None), (6, 7, 8)]
    refused(lake, write, "q.csv", "a,b,c\n1,2,3\n4,5,6,7\n", dataset="q", on_ragged="pad",
            code="ragged_rows", match="line 3 of .*q.csv has 4 fields, expected 3")


def test_on_ragged_skip_and_report_stores_the_good_rows(lake, write):
    content = "a,b,c\n1,2,3\n4,5\n6,7,8\n9,9,9,9\n10,11,12\n"
    res = lake.ingest(write("s.csv", content), "s", on_ragged="skip_and_report")
    assert (res.rows, res.skipped_lines) == (3, [3, 5])
    assert rows(lake, "SELECT a FROM s ORDER BY a") == [(1,), (6,), (10,)]
    with pytest.raises(InvalidInput, match="field 'on_ragged': Input should be 'error', 'pad' or 'skip_and_report'"):
        lake.ingest(write("t.csv", content), "t", on_ragged="maybe")


@pytest.mark.parametrize(
    "content",
    [
        "a,b\r\n1,2\r\n\r\n3,4\r\n",              # CRLF with a blank line (DuckDB read it as 0 rows with new_line=)
        "a,b\n1,2\n#3,4\n5,6\n",                   # '#' starts data, not a comment: the sniffer dropped it
        'a,b\n1,"x\n\ny"\n2,"p""q"\n',             # quoted newlines and doubled quotes
        "a,b\n1,5'10\"\n2,6'1\"\n",                # a quote inside an unquoted field
        'a,b\n"x\\"y",1\n"p",2\n',                 # backslash-escaped quote
        "a,b\n1,2\n3,4",                           # no newline at the end
        "a,b\n" + "".join(f"{i},x\n" for i in range(25_000)) + '1,"p, q"\n',  # first quote after the sample
    ],
)
def test_every_record_is_stored(lake, write, content):
    import csv

    expected = [r for r in csv.reader(io.StringIO(content.replace("\\\"", "\"\""))) if r][1:]
    res = lake.ingest(write("e.csv", content), "e")
    assert res.rows == len(expected)
    assert rows(lake, "SELECT count(*) FROM e") == [(len(expected),)]


# -- 2. binary files ---------------------------------------------------------------------------
def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "a PNG image"),
        ("photo.csv", b"\xff\xd8\xff\xe0" + b"\x00" * 32, "a JPEG image"),
        ("data.zip", b"PK\x03\x04" + b"\x00" * 40, "a ZIP archive"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, "an Excel 97-2003 workbook"),
        ("x.csv.xz", b"\xfd7zXZ\x00" + b"\x00" * 20, "an xz-compressed file"),
        ("page.csv", b"<!DOCTYPE html>\n<html><body>1,2</body></html>\n", "an HTML document"),
        ("blob.bin", b"\x01\x02\x00\x03" * 30, "binary data"),
        ("noise.csv", bytes(range(1, 256)) * 20, "binary data"),                 # no NUL, no magic
    ],
)
def test_binary_files_are_refused_saying_what_they_look_like(lake, write, name, content, what):
    refused(lake, write, name, content, code="unsupported_format", match=f"looks like {what}")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not a readable PDF"),
        ("report.csv", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not a readable PDF"),   # the name lies
        ("late.pdf.csv", b"\xef\xbb\xbf\r\n%PDF-1.7\n1 0 obj\n", "not a readable PDF"),    # header after junk
        ("book.xlsx", _xlsx(), "not a readable .xlsx workbook"),
    ],
)
def test_documents_are_recognised_by_content_and_damaged_ones_refused(lake, write, name, content, match):
    """PDF and .xlsx are formats of their own (tests/test_sources_documents.py): by content, whatever the name."""
    refused(lake, write, name, content, code="bad_file", match=match)


def test_binary_bytes_without_a_name_are_recognised(lake):
    with pytest.raises(InvalidInput, match="not a readable PDF") as info:
        lake.ingest(b"%PDF-1.7\n%\xb5\xb5\n", "d")
    assert info.value.code == "bad_file"


def test_compressed_csv_and_json_are_read_as_such(lake, write, tmp_path):
    csv_text = b"id,v\n1,a\n2,b\n3,c\n"
    assert lake.ingest(write("a.csv.gz", gzip.compress(csv_text)), "a").rows == 3
    assert lake.ingest(gzip.compress(csv_text), "b").rows == 3                      # gzip magic, no name
    assert lake.ingest(gzip.compress(b'{"x": 1}\n{"x": 2}\n'), "c").format == "ndjson"
    zst = tmp_path / "z.csv.zst"
    duckdb.sql(f"COPY (SELECT range AS id, 'v' || range AS v FROM range(5)) TO '{zst}' (FORMAT csv, COMPRESSION zstd)")
    assert lake.ingest(zst.read_bytes(), "z").rows == 5                            # zstd magic, no name
    assert rows(lake, "SELECT string_agg(v, ',' ORDER BY id) FROM z") == [("v0,v1,v2,v3,v4",)]
    refused(lake, write, "p.parquet.gz", gzip.compress(b"PAR1" + b"\x00" * 20), dataset="p",
            code="unsupported_format", match="compressed Parquet")


def test_a_text_header_that_starts_like_magic_is_still_csv(lake, write):
    assert lake.ingest(write("mz.csv", "MZ_code,ORC_id\nA,1\n"), "mz").rows == 1


def test_json_saved_as_csv_is_read_as_json(lake, write):
    res = lake.ingest(write("j.csv", '[{"a": 1}, {"a": 2}]'), "j")   # as CSV: "success", no rows
    assert (res.format, res.rows) == ("json", 2)
    assert lake.ingest(write("n.csv", '{"a": 1}\n{"a": 2}\n'), "n").format == "ndjson"
    assert lake.ingest(write("s.csv", "[id],[name]\n1,Ann\n"), "s").format == "csv"


def test_a_file_of_blank_lines_is_empty(lake, write):
    refused(lake, write, "blank.csv", "\n\n\n", code="empty_file")


# -- 3. appends and deltas refuse what they would convert ---------------------------------------
@pytest.fixture
def priced(lake, write):
    lake.ingest(write("a.csv", "id,code,price\n1,abc,10\n"), "items")
    return lake


@pytest.mark.parametrize(
    ("content", "column", "value"),
    [
        ("id,code,price\n2,f,9.99\n", "price", "9.99"),   # was stored as (2, 'false', 10)
        ("id,code,price\n7.9,x,1\n", "id", "7.9"),         # was rounded to 8
        ("id,code,price\n007,x,1\n", "id", "007"),
        ("id,code,price\n2,x,1e3\n", "price", "1e3"),
        ("id,code,price\n2,x, 5\n", "price", " 5"),
        ("id,code,price\n99999999999999999999,x,1\n", "id", "99999999999999999999"),
    ],
)
def test_append_refuses_values_the_stored_type_cannot_hold(priced, write, content, column, value):
    before = rows(priced, "SELECT * FROM items")
    with pytest.raises(InvalidInput, match=rf"column '{column}'.*'{re.escape(value)}' at line 2 of .*b\.csv") as info:
        priced.ingest(write("b.csv", content), "items", mode="append")
    assert info.value.code == "type_conflict"
    assert rows(priced, "SELECT * FROM items") == before


def test_append_reads_text_as_the_stored_type(priced, write):
    priced.ingest(write("b.csv", "id,code,price\n2,f,9\n3,,\n"), "items", mode="append")
    assert rows(priced, "SELECT * FROM items ORDER BY id") == [(1, "abc", 10), (2, "f", 9), (3, None, None)]


def test_append_typed_sources_must_round_trip(priced, write):
    with pytest.raises(InvalidInput, match=r"column 'price'.*'7.9'"):
        priced.ingest(write("b.json", '[{"id": 5, "code": "j", "price": 7.9}]'), "items", mode="append")
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [6], "code": ["p"], "price": [2.5]}), buf)
    with pytest.raises(InvalidInput, match=r"column 'price'.*'2.5'"):
        priced.ingest(buf.getvalue(), "items", mode="append")
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [6], "code": ["p"], "price": [2.0]}), buf)  # 2.0 is exactly 2
    assert priced.ingest(buf.getvalue(), "items", mode="append").rows == 1


def test_widen_on_request_says_what_was_widened(priced, write):
    res = priced.ingest(write("b.csv", "id,code,price\n2,f,9.99\n"), "items", mode="append", widen=True)
    assert res.widened == [{"column": "price", "from": "BIGINT", "to": "DOUBLE"}]
    assert rows(priced, "SELECT id, code, price FROM items ORDER BY id") == [(1, "abc", 10.0), (2, "f", 9.99)]
    res = priced.ingest(write("c.csv", "id,code,price\nA-3,g,1\n"), "items", mode="append", widen=True)
    assert res.widened == [{"column": "id", "from": "BIGINT", "to": "VARCHAR"}]
    assert rows(priced, "SELECT id FROM items ORDER BY id") == [("1",), ("2",), ("A-3",)]
    assert [c["type"] for c in priced.dataset("items")["columns"]] == ["VARCHAR", "VARCHAR", "DOUBLE"]


def test_delta_refuses_and_widens_like_append(priced, write):
    with pytest.raises(InvalidInput, match=r"column 'price'.*'2.5'"):
        priced.ingest(write("d.csv", "id,code,price\n1,abc,2.5\n"), "items", mode="delta", key="id")
    res = priced.ingest(write("d.csv", "id,code,price\n1,abc,2.5\n"), "items", mode="delta", key="id", widen=True)
    assert res.widened == [{"column": "price", "from": "BIGINT", "to": "DOUBLE"}]
    assert rows(priced, "SELECT * FROM items") == [(1, "abc", 2.5)]


# -- 4. everything ingested reads back -------------------------------------------------------------
def _deep(depth: int) -> dict:
    value: object = [1, {"leaf": "x"}]
    for i in range(depth):
        value = {f"k{i}": value, "n": [i, None]}
    return value


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("small.json", json.dumps([{"a": {"b": [{"c": [1, {"d": 2}]}]}, "u": [1, "x"]}])),
        ("deep.ndjson", "\n".join(json.dumps(_deep(d)) for d in (6, 7, 8)) + "\n"),
        ("mixed.ndjson", '{"m": [1, "a", {"b": []}]}\n{"m": {"x": [[1], [2, 3]]}}\n'),
    ],
)
def test_nested_json_reads_back(lake, write, name, content):
    res = lake.ingest(write(name, content), "nested")
    assert rows(lake, "SELECT count(*) FROM nested") == [(res.rows,)]
    assert len(rows(lake, "SELECT * FROM nested")) == res.rows  # every value decodes


def test_parquet_union_column_reads_back(lake, tmp_path):
    path = tmp_path / "u.parquet"
    duckdb.sql(f"COPY (SELECT union_value(i := 1)::UNION(i INT, s VARCHAR) AS u, 1 AS k) TO '{path}'")
    lake.ingest(path, "un")
    assert len(rows(lake, "SELECT * FROM un")) == 1


def test_a_csv_of_2100_columns_is_stored(lake, write):
    header = ",".join(f"c{i}" for i in range(2100))
    res = lake.ingest(write("wide.csv", f"{header}\n" + ",".join(map(str, range(2100))) + "\n"), "wide")
    assert res.rows == 1 and rows(lake, "SELECT c0, c2099 FROM wide") == [(0, 2099)]


def test_json_records_of_2100_keys_are_2100_columns(lake, write):
    res = lake.ingest(write("wide.ndjson", json.dumps({f"k{i}": i for i in range(2100)}) + "\n"), "wj")
    assert len(res.columns) == 2100 and rows(lake, "SELECT k0, k2099 FROM wj") == [(0, 2099)]


def test_types_the_lake_cannot_store_exactly_are_converted_or_refused(lake, tmp_path):
    from lakehouse.engine import exact_types

    assert exact_types.storable("e", "ENUM('a', 'b')") == ("VARCHAR", "the lake has no ENUM type: "
                                                                         "the labels are stored as text")
    assert exact_types.storable("v", "FLOAT[384]")[0] == "FLOAT[]"
    assert exact_types.storable("h", "STRUCT(h HUGEINT)")[0] == "STRUCT(h DECIMAL(38,0))"
    with pytest.raises(InvalidInput, match="cannot store UNION") as info:
        exact_types.storable("u", "UNION(i INTEGER, s VARCHAR)")
    assert info.value.code == "unsupported_type"


# -- 5. JSON keys and types beyond the sample ---------------------------------------------------------
def test_ndjson_key_and_type_after_the_sample(lake, write):
    body = "".join(json.dumps({"id": i, "v": i}) + "\n" for i in range(25_000))
    body += json.dumps({"id": 25_000, "v": 7.5, "late": "here"}) + "\n"
    res = lake.ingest(write("late.ndjson", body), "late")
    assert [c["name"] for c in res.columns] == ["id", "v", "late"]
    assert rows(lake, "SELECT v, late FROM late WHERE id = 25000") == [(7.5, "here")]  # was 8, key dropped


def test_json_big_integers_are_exact(lake, write):
    res = lake.ingest(write("big.json", '[{"n": 123456789012345678901234}, {"n": 5}]'), "big")
    assert res.columns == [{"name": "n", "type": "DECIMAL(38,0)"}]
    assert rows(lake, "SELECT n::VARCHAR FROM big ORDER BY n") == [("5",), ("123456789012345678901234",)]


# -- 6. the same file appended twice to a new dataset --------------------------------------------------
def test_repeated_append_to_a_new_dataset_is_skipped(lake, write):
    path = write("a.csv", "id,v\n1,a\n2,b\n")
    first = lake.ingest(path, "fresh", mode="append")
    again = lake.ingest(path, "fresh", mode="append")
    assert (first.mode, first.skipped, again.skipped) == ("create", False, True)
    assert rows(lake, "SELECT count(*) FROM fresh") == [(2,)]
    assert rows(lake, "SELECT mode FROM lake.lh.ingests WHERE dataset = 'fresh'") == [("create",)]


# -- 7. delta rows without a key ------------------------------------------------------------------------
def test_delta_with_null_keys_is_refused(lake, write):
    lake.ingest(write("base.csv", "id,v\n1,a\n"), "keyed")
    with pytest.raises(InvalidInput, match=r"key column 'id' is empty in 2 record\(s\), the first at line 3 of "
                                           r".*d.csv") as info:
        lake.ingest(write("d.csv", "id,v\n5,x\n,y\n,z\n"), "keyed", mode="delta", key="id")
    assert info.value.code == "null_key"
    assert rows(lake, "SELECT * FROM keyed") == [(1, "a")]
    refused(lake, write, "n.ndjson", '{"id": 1}\n{"id": null}\n', dataset="fresh", mode="delta", key="id",
            code="null_key", match="line 2 of .*n.ndjson")


# -- 8. quieter conversions ---------------------------------------------------------------------------
def test_an_all_text_csv_needs_header_said(lake, write):
    refused(lake, write, "names.csv", "Ann\nBob\nCy\n", code="header_ambiguous", match="pass header=True")
    refused(lake, write, "people.csv", "Ann,Chicago\nBob,Boston\n", dataset="people", code="header_ambiguous",
            match="line 1 of .*people.csv \\('Ann,Chicago'\\)")
    res = lake.ingest(write("names.csv", "Ann\nBob\nCy\n"), "names", header=False)
    assert (res.rows, res.header) == (3, False)
    assert rows(lake, "SELECT * FROM names") == [("Ann",), ("Bob",), ("Cy",)]
    res = lake.ingest(write("emails.csv", "email\na@x\n"), "emails", header=True)
    assert (res.rows, res.header, res.columns[0]["name"]) == (1, True, "email")
    assert lake.ingest(write("w.csv", "id,name\n1,Ann\n"), "w").header is True   # reported when sniffed


def test_ambiguous_dates_stay_text_unless_a_format_is_given(lake, write):
    content = "d,v\n01/02/2024,1\n03/04/2024,2\n"
    res = lake.ingest(write("d.csv", content), "dm")
    assert res.columns[0] == {"name": "d", "type": "VARCHAR"} and "day/month" in res.type_notes[0]["why"]
    assert rows(lake, "SELECT d FROM dm ORDER BY v") == [("01/02/2024",), ("03/04/2024",)]
    lake.ingest(write("d.csv", content), "dm2", date_format="%d/%m/%Y")
    assert rows(lake, "SELECT d::VARCHAR FROM dm2 ORDER BY v") == [("2024-02-01",), ("2024-04-03",)]
    lake.ingest(write("t.csv", "t\n02/01/2024 10:00:00\n"), "tm")
    assert rows(lake, "SELECT t FROM tm") == [("02/01/2024 10:00:00",)]
    lake.ingest(write("iso.csv", "d,t\n2024-01-02,2024-01-02 10:00:00\n"), "iso")   # unambiguous: typed
    assert [c["type"] for c in lake.dataset("iso")["columns"]] == ["DATE", "TIMESTAMP"]


def test_quoted_empty_string_stays_empty(lake, write):
    lake.ingest(write("q.csv", 'a,b\n"",1\nx,2\n,3\n'), "q")
    assert rows(lake, "SELECT a FROM q ORDER BY b") == [("",), ("x",), (None,)]


@pytest.mark.parametrize(
    ("content", "type_", "text"),
    [
        ("a\n123456789012345678901234\n5\n", "DECIMAL(38,0)", "123456789012345678901234"),
        ("a\n1.23456789012345678901\n5\n", "DECIMAL(38,20)", "1.23456789012345678901"),
        ("a\n" + "".join(f"{6000 + i}\n" for i in range(25_000)) + "01234\n", "VARCHAR", "01234"),  # zip code
        ("a\n" + "".join(f"{i}\n" for i in range(25_000)) + "7.9\n", "DOUBLE", "7.9"),  # beyond the sample
        ("a\nyes\nno\n", "VARCHAR", "yes"),                                         # no bool re-spelling
        ("a\n 6 \n7\n", "VARCHAR", " 6 "),
    ],
)
def test_numbers_and_words_are_never_rounded_or_respelled(lake, write, content, type_, text):
    res = lake.ingest(write("n.csv", content), "n", header=True)
    assert res.columns == [{"name": "a", "type": type_}]
    assert (text,) in rows(lake, "SELECT a::VARCHAR FROM n")
    if res.type_notes:
        assert res.type_notes[0]["stored"] == type_


_NAIVE = "".join(f"2024-01-01 00:00:{i % 60:02d}\n" for i in range(25_000))  # beyond the sniffer's sample


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("t\n2024-01-01 00:00:00.1234567\n2024-01-01 00:00:00\n", "2024-01-01 00:00:00.1234567"),  # 7th digit
        ("t\n" + _NAIVE + "2024-01-02 03:04:05+02:00\n", "2024-01-02 03:04:05+02:00"),  # offset of a TIMESTAMP
        ("t\n2024-01-02 03:04:05+02:00\n2024-01-02 03:04:05\n", "2024-01-02 03:04:05"),  # no zone in a TIMESTAMPTZ
        ("t\n" + "03:04:05\n" * 25_000 + "2024-01-02 03:04:05\n", "2024-01-02 03:04:05"),  # the date of a TIME
    ],
)
def test_timestamps_keep_their_digits_offsets_and_dates(lake, write, content, text):
    """A cast to TIMESTAMP/TIME drops fraction digits, an offset, a date, and reads a zone-less text as
    TIMESTAMPTZ in the host's zone: such a column is stored as its text, and an append to a typed one refused."""
    res = lake.ingest(write("t.csv", content), "ts", header=True)
    assert res.columns == [{"name": "t", "type": "VARCHAR"}] and res.type_notes[0]["stored"] == "VARCHAR"
    assert (text,) in rows(lake, "SELECT t FROM ts")
    lake.ingest(write("ok.csv", "t\n2024-01-01 00:00:00\n"), "typed", header=True)
    with pytest.raises(InvalidInput, match="type conflict in column 't'") as info:
        lake.ingest(write("more.csv", "t\n2024-01-01 00:00:00.1234567\n2024-01-02 03:04:05+02:00\n"), "typed",
                    mode="append", header=True)
    assert info.value.code == "type_conflict"
    assert rows(lake, "SELECT count(*) FROM typed") == [(1,)]


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("n.ndjson", '{"a": 1.5}\n{"a": 12345678901234567890.5}\n', 2),
        ("n.json", '[{"a": 1.5},\n {"s": {"x": [0.1000000000000000055511151231257827]}}]', 2),  # nested, too
        ("n.ndjson.gz", gzip.compress(b'{"a": 1}\n{"a": 1.00000000000000001}\n', mtime=0), 2),  # mtime: one test id
    ],
)
def test_json_numbers_with_more_digits_than_a_double_are_refused(lake, write, name, content, line):
    """DuckDB's JSON reader parses a number with a fraction into a DOUBLE even when the column is read as
    text: 12345678901234567890.5 was stored as the text '1.2345678901234567e+19'."""
    err = refused(lake, write, name, content, code="inexact_number", match=f"line {line} of .*write it as a string")
    assert err.to_dict()["line"] == line


def test_json_numbers_a_double_holds_are_stored_and_strings_are_not_numbers(lake, write):
    content = ('{"a": 0.30000000000000004, "b": 1.50000000000000000000, "s": "12345678901234567890.5"}\n'
               '{"a": 0.8444218515250481, "b": -0.0, "s": "x"}\n')
    lake.ingest(write("ok.ndjson", content), "js")
    stored = rows(lake, "SELECT a, b, s FROM js")
    assert [(Decimal(str(a)), Decimal(str(b)), s) for a, b, s in stored] == [
        (Decimal("0.30000000000000004"), Decimal("1.5"), "12345678901234567890.5"),
        (Decimal("0.8444218515250481"), Decimal("-0.0"), "x")]


# -- what DuckDB's CSV reader refuses is the file's fault: a 4xx saying why, never a crash or a bare line number ---

def test_pad_with_a_line_break_in_a_quoted_field_is_refused_in_the_callers_words(lake, write):
    """DuckDB's parallel reader cannot pad such a file (its base Error class: answered 500); its serial reader
    pads but swallows an unterminated quote and every line after it, so the file is refused, saying what to use."""
    content = 'a,b\n1,"x\ny"\n2\n'
    refused(lake, write, "q.csv", content, dataset="q", on_ragged="pad", code="ragged_rows",
            match=r"on_ragged='pad' cannot read .*q\.csv: a quoted field holds a line break \(line 2\); use")
    lake.ingest(write("q.csv", content.replace("\n2\n", "\n2,z\n")), "q")  # the same file, not ragged, stores
    assert rows(lake, "SELECT * FROM q ORDER BY a") == [(1, "x\ny"), (2, "z")]
    refused(lake, write, "u.csv", 'a,b\n1,"abc\n2,3\n4,5\n', dataset="u", on_ragged="pad", code="bad_file",
            match=r"could not read .*u\.csv as csv \(line 2\): Value with unterminated quote found\.$")


@pytest.mark.parametrize("content", ["a,b\n1," + "x" * 3_000_000 + "\n2,y\n",
                                     'a,b\n1,"' + "x\n" * 1_100_000 + '"\n2,y\n'], ids=["long-line", "long-quoted"])
def test_a_line_longer_than_the_reader_takes_is_refused_with_the_reason(lake, write, content):
    """The quoted one crashed (Python's csv module refuses a field over 128 KiB while ingest looked up the line);
    both said only 'CSV Error on Line: N'."""
    refused(lake, write, "big.csv", content, dataset="big", code="bad_file",
            match=r"could not read .*big\.csv as csv \(line [12]\): Maximum line size of 2000000 bytes exceeded")


def test_a_quoted_field_over_128_kib_is_stored_exactly(lake, write):
    text = "line\n" * 60_000
    lake.ingest(write("w.csv", f'a,b\n1,"{text}"\n2,y\n'), "w")
    assert rows(lake, "SELECT a, b FROM w ORDER BY a") == [(1, text), (2, "y")]


def test_csv_read_errors_are_4xx_over_http(lake):
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
        resp = http.post("/ingest", data={"dataset": "q", "on_ragged": "pad"},
                         files={"file": ("q.csv", b'a,b\n1,"x\ny"\n2\n')})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "ragged_rows", resp.text
        resp = http.post("/ingest", data={"dataset": "b"}, files={"file": ("b.csv", b'a,b\n1,"' + b"x\n" * 1_100_000
                                                                           + b'"\n')})
        assert resp.status_code == 400 and "Maximum line size" in resp.json()["error"]["message"], resp.text
    assert lake.datasets() == []


@pytest.mark.parametrize("minified", [True, False])
def test_json_number_check_reads_across_chunks(lake, write, monkeypatch, minified):
    """The check reads the file in chunks (16 MB; 64 bytes here): a line longer than a chunk (a minified file is
    one line) is gathered whole, and the line number counts the lines of every earlier chunk."""
    monkeypatch.setattr("lakehouse.engine.ingest_read._CHUNK", 64)
    records = [f'{{"id": {i}, "s": "0.10000000000000000555", "x": 0.30000000000000004}}' for i in range(40)]
    records[33] = '{"id": 33, "s": "x", "x": 12345678901234567890.5}'
    content = "[" + ",".join(records) + "]" if minified else "\n".join(records) + "\n"
    err = refused(lake, write, "n.json" if minified else "n.ndjson", content, code="inexact_number")
    assert err.to_dict()["line"] == (1 if minified else 34)
    records[33] = records[32]
    lake.ingest(write("ok.json" if minified else "ok.ndjson", "[" + ",".join(records) + "]" if minified
                      else "\n".join(records) + "\n"), "ok")
    assert rows(lake, "SELECT count(*), count(DISTINCT s) FROM ok") == [(40, 1)]
