"""The engine's own tables, in DuckLake schema `lh`, and the dataset registry."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

from lakehouse.engine import journal, profiles

log = logging.getLogger(__name__)

# Later issues append their tables here; every statement is idempotent.
ENGINE_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS lake.lh",
    "CREATE SCHEMA IF NOT EXISTS lake.lh_store",
    """CREATE TABLE IF NOT EXISTS lake.lh.datasets (
        name VARCHAR, kind VARCHAR, key VARCHAR, columns VARCHAR,
        created_at TIMESTAMP, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.ingests (
        id VARCHAR, dataset VARCHAR, mode VARCHAR, key VARCHAR, format VARCHAR, source VARCHAR,
        content_sha256 VARCHAR, rows BIGINT, columns VARCHAR, ingested_at TIMESTAMP)""",
    "CREATE SCHEMA IF NOT EXISTS lake.lh_corpus",
    """CREATE TABLE IF NOT EXISTS lake.lh.corpora (
        name VARCHAR, embedder VARCHAR, embedder_id VARCHAR, dim INTEGER, metric VARCHAR, dtype VARCHAR,
        source VARCHAR, kind VARCHAR, builder VARCHAR, params VARCHAR, created_at TIMESTAMP, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.index_generations (
        corpus VARCHAR, generation INTEGER, snapshot_id BIGINT, path VARCHAR, params VARCHAR, sha256 VARCHAR,
        built_at TIMESTAMP, active BOOLEAN, max_key BIGINT, rows BIGINT)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.embedding_cache (
        embedder_id VARCHAR, sha256 VARCHAR, embedding FLOAT[])""",
    """CREATE TABLE IF NOT EXISTS lake.lh.playbooks (
        id VARCHAR, query VARCHAR, query_embedding FLOAT[], embedder_id VARCHAR, corpus VARCHAR,
        answer_id VARCHAR, answer_text VARCHAR, score DOUBLE, outcome INTEGER, recorded_at TIMESTAMP,
        source VARCHAR, tags VARCHAR[])""",
    """CREATE TABLE IF NOT EXISTS lake.lh.hnsw_trials (
        recorded_at TIMESTAMP, corpus VARCHAR, generation INTEGER, event VARCHAR, rows BIGINT, params VARCHAR,
        build_s DOUBLE, recall_at_10 DOUBLE, sample INTEGER)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.corpus_sync (
        corpus VARCHAR, dataset VARCHAR, snapshot BIGINT, tables VARCHAR, error VARCHAR, synced_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.workflow_runs (
        run_id VARCHAR, workflow VARCHAR, yaml_sha256 VARCHAR, status VARCHAR, input VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP, error VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.workflow_nodes (
        run_id VARCHAR, node_id VARCHAR, status VARCHAR, attempts INTEGER, input VARCHAR, output VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP, error_code VARCHAR, error_message VARCHAR, op_ids VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.evidence (
        id VARCHAR, kind VARCHAR, query VARCHAR, answer VARCHAR, retrieved_ids VARCHAR[], citations VARCHAR,
        model VARCHAR, outcome INTEGER, rating INTEGER, timings VARCHAR, created_at TIMESTAMP, source VARCHAR,
        category VARCHAR, reason VARCHAR, scorer_version VARCHAR, scored_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS lake.lh.validation_rules (
        dataset VARCHAR, name VARCHAR, kind VARCHAR, params VARCHAR, severity VARCHAR, created_at TIMESTAMP)""",
    journal.DDL,
    profiles.DDL,
)
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS lake\.(\w+)\.(\w+)")
EXPECTED = {m for stmt in ENGINE_DDL for m in _TABLE.findall(stmt)}


def ensure_engine_tables(cur: duckdb.DuckDBPyConnection) -> None:
    """Create schema `lh` and its tables in one transaction, only when something is missing."""
    have = {
        (r[0], r[1])
        for r in cur.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake'"
        ).fetchall()
    }
    if have >= EXPECTED:
        return
    in_transaction(cur, lambda c: [c.execute(stmt) for stmt in ENGINE_DDL])


def dataset_row(cur: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    row = cur.execute(
        "SELECT name, kind, key, columns, created_at, updated_at FROM lake.lh.datasets WHERE name = ?",
        [name],
    ).fetchone()
    if row is None:
        return None
    return {"name": row[0], "kind": row[1], "key": row[2], "columns": json.loads(row[3]),
            "created_at": row[4], "updated_at": row[5]}


def upsert_dataset(cur: duckdb.DuckDBPyConnection, name: str, kind: str, key: str | None,
                   columns: list[dict[str, str]]) -> None:
    existing = dataset_row(cur, name)
    if existing is None:
        cur.execute(
            "INSERT INTO lake.lh.datasets VALUES (?, ?, ?, ?, now()::TIMESTAMP, now()::TIMESTAMP)",
            [name, kind, key, json.dumps(columns)],
        )
    else:
        cur.execute(
            "UPDATE lake.lh.datasets SET kind = ?, key = ?, columns = ?, updated_at = now()::TIMESTAMP "
            "WHERE name = ?",
            [kind, key, json.dumps(columns), name],
        )


def table_exists(cur: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchone()[0] > 0


def view_exists(cur: duckdb.DuckDBPyConnection, schema: str, view: str) -> bool:
    return cur.execute(
        "SELECT count(*) FROM duckdb_views() WHERE database_name = 'lake' AND schema_name = ? AND view_name = ?",
        [schema, view],
    ).fetchone()[0] > 0


def rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass


T = TypeVar("T")
_RETRYABLE = ("database is locked", "conflict", "database table is locked")


def in_transaction(cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T], *,
                   attempts: int = 16, lock: contextlib.AbstractContextManager[Any] | None = None,
                   commit_lock: contextlib.AbstractContextManager[Any] | None = None) -> T:
    """Run `body` in one lake transaction (with its change-journal rows, see `journal`), retrying the whole
    of it when the commit collides with another writer (SQLite's write lock, or a DuckLake conflict).
    Anything else rolls back and raises.
    `lock` (the lake's write lock) is held throughout: writers of one process then queue instead of
    colliding and sleeping through the backoff. `commit_lock` is held around the COMMIT alone: this
    process's readers of the SQLite catalog file (`snapshots.CatalogWatch`) take it too, so they never
    hold the file while a commit of this process needs it."""
    with lock if lock is not None else contextlib.nullcontext():
        return _with_retries(cur, body, attempts, commit_lock or contextlib.nullcontext())


def _with_retries(cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T], attempts: int,
                  commit_lock: contextlib.AbstractContextManager[Any]) -> T:
    delay = 0.05
    for attempt in range(attempts):
        cur.execute("BEGIN")
        try:
            result = journal.journaled(cur, body)  # with the journal rows of what it changed
            with commit_lock:
                cur.execute("COMMIT")
            return result
        except duckdb.Error as exc:
            rollback(cur)
            if attempt == attempts - 1 or not any(m in str(exc).lower() for m in _RETRYABLE):
                raise
            log.info("lake commit collided (%s); retrying", str(exc).splitlines()[-1][:120])
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
        except BaseException:
            rollback(cur)
            raise
    raise AssertionError("unreachable")
