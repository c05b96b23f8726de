"""A PostgreSQL table or query as an ingest source, through DuckDB's postgres extension.

    lake.ingest("postgres://user:PASSWORD@db.internal:5432/app", "orders", table="public.orders")
    lake.ingest("postgres://user:PASSWORD@db.internal/app", "recent", query="SELECT * FROM orders WHERE ...")

Snapshot-consistent: the rows are read by ONE statement, `postgres_query` (a `COPY (SELECT ...) TO STDOUT`
that the extension runs inside `BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`), never by the
extension's parallel ctid-range scans over several connections: a table being written meanwhile is read as of
one moment, and a query cannot write (the transaction is read-only on the server's side).

The password never leaves this module: the connection is made from a temporary DuckDB secret on a throwaway
DuckDB instance (the attach string is empty, so DuckDB's connection errors cannot echo it), the password is
added to the scrubber (any message, log line or op record that would still hold it shows `***`), and what
the lake records as the source (ledger, results, errors) is `postgres://host:port/db` without user and password.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from lakehouse.engine.extensions import load_extension
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.errors import Forbidden, InvalidInput, ProviderError, clean_duckdb_message
from lakehouse.scrub import SCRUB

SCHEMES = ("postgres", "postgresql")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_OPTIONS = {"sslmode"}


def is_postgres(source: Any) -> bool:
    return isinstance(source, str) and source.split("://", 1)[0].lower() in SCHEMES and "://" in source


@dataclasses.dataclass(frozen=True)
class PgSource:
    host: str
    port: int
    database: str
    user: str | None
    password: str | None = dataclasses.field(repr=False)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def public(self) -> str:
        """The URL without user and password: what the lake records and says."""
        return f"postgres://{self.host}:{self.port}/{self.database}"


def parse(url: str) -> PgSource:
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        raise InvalidInput("the PostgreSQL URL is malformed: use postgres://user:password@host:port/database",
                           code="invalid_source") from None
    if parts.password:
        SCRUB.add(unquote(parts.password))  # before anything can echo it
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database or "/" in database:
        raise InvalidInput("a PostgreSQL source needs a host and a database: postgres://user:password@host:port/db",
                           code="invalid_source")
    options = tuple(parse_qsl(parts.query))
    unknown = [k for k, _ in options if k not in _OPTIONS]
    if unknown:
        raise InvalidInput(f"unsupported PostgreSQL URL option {unknown[0]!r} (supported: {', '.join(sorted(_OPTIONS))})",
                           code="invalid_source")
    return PgSource(parts.hostname, port, database, unquote(parts.username) if parts.username else None,
                    unquote(parts.password) if parts.password else None, options)


def check_allowed(src: PgSource, allowed: list[str]) -> None:
    """A remote caller may make the server connect only to a database listed in `allowed_sources`
    (`postgres://host:port/db`, or `postgres://host:port/*` for every database of that server)."""
    for entry in allowed:
        if not is_postgres(entry):
            continue
        a = parse(entry)
        if (a.host, a.port) == (src.host, src.port) and a.database in ("*", src.database):
            return
    raise Forbidden(f"{src.public} is not in allowed_sources: remote callers may ingest only from the databases it "
                    "lists", code="source_not_allowed")


def table_select(table: str) -> str:
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise InvalidInput(f"table {table!r} must be a name or schema.name", code="invalid_table", field="table")
    return "SELECT * FROM " + ".".join('"' + p + '"' for p in parts)


def pg_to_parquet(src: PgSource, out: Path, *, table: str | None, query: str | None) -> dict[str, Any]:
    """Read the table or query, as of one snapshot, into the Parquet file `out`."""
    if (table is None) == (query is None):
        raise InvalidInput("a PostgreSQL source needs exactly one of table= or query=", code="invalid_source")
    select = table_select(table) if table is not None else query.strip().rstrip(";")  # type: ignore[union-attr]
    con = duckdb.connect()
    try:
        load_extension(con, "postgres")
        secret = [f"HOST {sql_string(src.host)}", f"PORT {int(src.port)}", f"DATABASE {sql_string(src.database)}"]
        if src.user:
            secret.append(f"USER {sql_string(src.user)}")
        if src.password:
            secret.append(f"PASSWORD {sql_string(src.password)}")
        for key, value in src.options:
            secret.append(f"{key.upper()} {sql_string(value)}")
        try:
            con.execute(f"CREATE TEMPORARY SECRET lh_source (TYPE postgres, {', '.join(secret)})")
            con.execute("ATTACH '' AS lh_pg (TYPE postgres, SECRET lh_source, READ_ONLY)")
        except duckdb.Error as exc:
            raise ProviderError(f"could not connect to {src.public}: {_reason(exc)}", code="source_unavailable") from None
        try:
            as_text = _inexact_numerics(con, select)
            if as_text:  # read as their text, then stored as the DECIMAL that holds them (or kept as text)
                cols = ", ".join(f"{_pg_ident(c)}::text AS {_pg_ident(c)}" if c in as_text else _pg_ident(c)
                                 for c in _columns(con, select))
                select = f"SELECT {cols} FROM ({select}) AS lh_q"
            con.execute(f"SET temp_directory = {sql_string(str(out.parent))}")
            con.execute(f"CREATE TEMP TABLE lh_rows AS SELECT * FROM postgres_query('lh_pg', {sql_string(select)})")
            typed = ", ".join(_decimal(con, c) if c in as_text else quote_ident(c) for c in _columns(con, None))
            rows = con.execute(f"COPY (SELECT {typed} FROM lh_rows) TO {sql_string(str(out))} (FORMAT parquet)"
                               ).fetchone()[0]
        except duckdb.Error as exc:
            what = f"table {table}" if table is not None else "the query"
            raise InvalidInput(f"could not read {what} from {src.public}: {_reason(exc)}",
                               code="source_query") from None
    finally:
        con.close()
    return {"source": src.public, "table": table, "query": query, "rows": rows, "isolation": "repeatable read",
            "numeric_columns": sorted(as_text)}


def _columns(con: duckdb.DuckDBPyConnection, select: str | None) -> list[str]:
    """The columns of the PostgreSQL query (`select`), or of the rows read (None)."""
    source = f"postgres_query('lh_pg', {sql_string(select)})" if select is not None else "lh_rows"
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def _inexact_numerics(con: duckdb.DuckDBPyConnection, select: str) -> set[str]:
    """Columns PostgreSQL holds as NUMERIC that DuckDB would read as DOUBLE (an unconstrained `numeric`, or one of
    more than 38 digits), losing digits: asked of PostgreSQL with pg_typeof, on one row."""
    described = con.execute(f"DESCRIBE SELECT * FROM postgres_query('lh_pg', {sql_string(select)})").fetchall()
    doubles = [r[0] for r in described if r[1] == "DOUBLE"]
    if not doubles:
        return set()
    probe = ", ".join(f"pg_typeof({_pg_ident(c)})::text" for c in doubles)
    row = con.execute(f"SELECT * FROM postgres_query('lh_pg', "
                      f"{sql_string(f'SELECT {probe} FROM ({select}) AS lh_q LIMIT 1')})").fetchone()
    return {c for c, t in zip(doubles, row or ()) if t == "numeric"}


def _decimal(con: duckdb.DuckDBPyConnection, column: str) -> str:
    """The text of a NUMERIC column as the narrowest DECIMAL holding every value exactly, or as text when none does
    (more than 38 digits, NaN, Infinity)."""
    c = quote_ident(column)
    plain, whole, scale = con.execute(
        f"SELECT bool_and({c} IS NULL OR regexp_full_match({c}, '-?[0-9]+([.][0-9]+)?')), "
        f"max(length(ltrim(split_part({c}, '.', 1), '-'))), max(length(split_part({c}, '.', 2))) FROM lh_rows"
    ).fetchone()
    whole, scale = whole or 1, scale or 0
    if not plain or whole + scale > 38:
        return c
    return f"CAST({c} AS DECIMAL({whole + scale}, {scale})) AS {c}"


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reason(exc: duckdb.Error) -> str:
    """DuckDB's message, its first meaningful line (scrubbed again by LakehouseError)."""
    text = clean_duckdb_message(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:2])[:400]
