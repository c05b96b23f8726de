"""Excel workbooks (.xlsx) as rows, through DuckDB's excel extension (`read_xlsx`), refused where the cells
would not be read exactly.

`read_xlsx` reads the value a cell holds, so the workbook is checked first (its sheet XML, streamed): a formula
without a cached value (a file written by a tool that does not calculate) would read as empty, a merged range
holds its value in the first cell only and empty cells elsewhere, and an error cell (#DIV/0!, #N/A) has no value:
each is refused with the cell (`formula_without_value`, `merged_cells`, `error_cell`). `read_xlsx` takes its
columns from the first to the last cell of the first row holding values (the header) and drops any cell outside
them: such a cell is refused too (`cell_outside_header`), as is a sheet with no value (`empty_file`). The first sheet is read
unless `sheet=` names one. Excel stores every number as a double; a column whose numbers are all whole (and
within 2^53) is stored as BIGINT, dates and times as DuckDB reads them from the cell format.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import duckdb

from lakehouse.engine.extensions import load_extension
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.errors import InvalidInput, from_duckdb

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_EXACT_INT = 2 ** 53
_REF = re.compile(r"^([A-Z]{1,3})([0-9]+)$")


def is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "xl/workbook.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def sheets(z: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, path of its XML in the archive), in workbook order."""
    book = ElementTree.fromstring(z.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(_PKG_REL)}
    out = []
    for s in book.iter(f"{_NS}sheet"):
        target = targets.get(s.get(_REL), "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        out.append((s.get("name", ""), path))
    return out


def check_sheet(path: Path, name: str, sheet: str | None) -> str:
    """The sheet to read (the first, or `sheet`), after checking its cells read exactly; InvalidInput otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            found = sheets(z)
            if not found:
                raise InvalidInput(f"{name} holds no sheet", code="empty_file")
            chosen = found[0] if sheet is None else next((s for s in found if s[0] == sheet), None)
            if chosen is None:
                raise InvalidInput(f"{name} has no sheet {sheet!r} (sheets: {', '.join(s for s, _ in found)})",
                                   code="sheet_not_found")
            with z.open(chosen[1]) as fh:
                _check_cells(fh, name, chosen[0])
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise InvalidInput(f"{name} is not a readable .xlsx workbook: {exc}", code="bad_file") from exc
    return chosen[0]


def _check_cells(fh: Any, name: str, sheet: str) -> None:
    header: tuple[int, int, int] | None = None  # (row, first column, last column) of the first row holding a value
    for _, el in ElementTree.iterparse(fh, events=("end",)):
        if el.tag == f"{_NS}c":
            ref = el.get("r", "?")
            formula, value = el.find(f"{_NS}f"), el.find(f"{_NS}v")
            if value is not None or el.find(f"{_NS}is") is not None:
                header = _within_header(header, ref, name, sheet)
            if formula is not None and (value is None or value.text is None) and el.get("t") != "inlineStr":
                raise InvalidInput(
                    f"cell {ref} of sheet {sheet!r} in {name} holds a formula ({formula.text or 'shared'}) without a "
                    "calculated value: open and save the workbook in Excel (or LibreOffice) first",
                    code="formula_without_value", cell=ref)
            if el.get("t") == "e":
                raise InvalidInput(f"cell {ref} of sheet {sheet!r} in {name} holds the error "
                                   f"{value.text if value is not None else ''!s}", code="error_cell", cell=ref)
            el.clear()
        elif el.tag == f"{_NS}mergeCell":
            ref = el.get("ref", "?")
            raise InvalidInput(f"cells {ref} of sheet {sheet!r} in {name} are merged: the value is in the first cell "
                               "only; unmerge them (and fill the cells) first", code="merged_cells", cells=ref)
    if header is None:
        raise InvalidInput(f"sheet {sheet!r} of {name} is empty", code="empty_file")


def _within_header(header: tuple[int, int, int] | None, ref: str, name: str, sheet: str
                   ) -> tuple[int, int, int] | None:
    """`header` after a cell holding a value at `ref`: `read_xlsx` takes the columns from the first to the last cell
    of the first row with values and drops any cell outside them, so such a cell is refused (its value would be lost)."""
    found = _REF.match(ref)
    if found is None:  # no reference (Excel always writes one): nothing to place it by
        return header
    column = 0
    for letter in found.group(1):
        column = column * 26 + ord(letter) - 64
    row = int(found.group(2))
    if header is None or row == header[0]:
        return (row, column if header is None else header[1], column)
    if not header[1] <= column <= header[2]:
        raise InvalidInput(f"cell {ref} of sheet {sheet!r} in {name} holds a value outside the columns of the header "
                           f"row {header[0]}: give the column a header (or move the value) first",
                           code="cell_outside_header", cell=ref)
    return header


def xlsx_to_parquet(paths: list[Path], names: list[str], out: Path, sheet: str | None) -> dict[str, Any]:
    """Read each workbook's sheet and write the rows to `out` (one workbook: several must share their columns)."""
    if len(paths) > 1:
        raise InvalidInput("ingest one .xlsx workbook at a time", code="invalid_source")
    chosen = check_sheet(paths[0], names[0], sheet)
    con = duckdb.connect()
    try:
        load_extension(con, "excel")
        call = f"read_xlsx({sql_string(str(paths[0]))}, sheet={sql_string(chosen)}, header=true, stop_at_empty=false)"
        try:
            columns = con.execute(f"DESCRIBE SELECT * FROM {call}").fetchall()
            _check_dates(con, call, [c[0] for c in columns if c[1] in ("DATE", "TIMESTAMP")],
                         [c[0] for c in columns if c[1] == "DATE"], chosen, names[0])
            whole = _whole_numbers(con, call, [c[0] for c in columns if c[1] == "DOUBLE"])
            select = ", ".join(f"CAST({quote_ident(c[0])} AS BIGINT) AS {quote_ident(c[0])}" if c[0] in whole
                               else quote_ident(c[0]) for c in columns)
            rows = con.execute(f"COPY (SELECT {select} FROM {call}) TO {sql_string(str(out))} (FORMAT parquet)"
                               ).fetchone()[0]
        except duckdb.Error as exc:
            err = from_duckdb(exc)
            raise InvalidInput(f"could not read sheet {chosen!r} of {names[0]}: {err.message.splitlines()[0]}",
                               code="bad_file") from exc
    finally:
        con.close()
    return {"sheet": chosen, "rows": rows}


def _check_dates(con: duckdb.DuckDBPyConnection, call: str, dated: list[str], days: list[str], sheet: str,
                 name: str) -> None:
    """Refuse a date column whose cells a date would not hold: Excel keeps a date as a serial number of days, and
    read_xlsx drops the fraction of one in a DATE column (a time of day, or a plain number such as 12.5 among the
    dates) and counts from 1899-12-30, so serials before 61 (Excel's 1900-02-29, which never was) are a day off."""
    if not dated:
        return
    raw = call[:-1] + ", all_varchar=true)"  # the cells' serial numbers, as the sheet holds them
    checks = " OR ".join([f"TRY_CAST({quote_ident(c)} AS DOUBLE) < 61" for c in dated]
                         + [f"TRY_CAST({quote_ident(c)} AS DOUBLE) <> trunc(TRY_CAST({quote_ident(c)} AS DOUBLE))"
                            for c in days])
    found = con.execute(f"SELECT n, * EXCLUDE (n) FROM (SELECT row_number() OVER () AS n, "
                        f"{', '.join(map(quote_ident, dated))} FROM {raw}) WHERE {checks} LIMIT 1").fetchone()
    if found is None:
        return
    n, values = found[0], dict(zip(dated, found[1:]))
    column = next(c for c in dated if values[c] is not None and (float(values[c]) < 61 or (
        c in days and float(values[c]) != int(float(values[c])))))
    why = ("is before 1900-03-01, where Excel's dates are a day off" if float(values[column]) < 61 else
           "has a fraction (a time of day, or a number that is not a date) a date column would drop")
    raise InvalidInput(f"column {column!r} of sheet {sheet!r} in {name} reads as dates, but data row {n} holds "
                       f"{values[column]}, which {why}: format the column as date and time, or as numbers",
                       code="inexact_date", column=column, row=n)


def _whole_numbers(con: duckdb.DuckDBPyConnection, call: str, doubles: list[str]) -> set[str]:
    """The DOUBLE columns whose every value is a whole number a BIGINT holds exactly (Excel's ids, counts)."""
    if not doubles:
        return set()
    checks = ", ".join(f"bool_and({quote_ident(c)} IS NULL OR ({quote_ident(c)} = trunc({quote_ident(c)}) AND "
                       f"abs({quote_ident(c)}) < {_EXACT_INT}))" for c in doubles)
    flags = con.execute(f"SELECT {checks} FROM {call}").fetchone()
    return {c for c, ok in zip(doubles, flags) if ok}


