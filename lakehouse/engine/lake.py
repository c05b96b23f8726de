"""`Lake`: a DuckDB connection onto a DuckLake lake, with the engine's functions registered."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from lakehouse.engine import datasets as datasets_mod
from lakehouse.engine import ingest as ingest_mod
from lakehouse.engine.catalog import in_transaction
from lakehouse.engine.chat.routing import ModelTable
from lakehouse.engine.connection import Location, macro_values, prepare_connection, prepare_cursor, sandbox
from lakehouse.engine.ingest import IngestResult
from lakehouse.engine.observer import Observer
from lakehouse.engine.safe_sql import QueryResult, run_query
from lakehouse.engine.sources import Source
from lakehouse.errors import map_duckdb_errors
from lakehouse.settings import Settings

if TYPE_CHECKING:
    from lakehouse.engine.chat import ChatDispatcher
    from lakehouse.engine.matrix.playbooks import Playbooks
    from lakehouse.engine.vectors import VectorEngine

log = logging.getLogger(__name__)
T = TypeVar("T")


class Lake:
    """One lake: `lake.sql(...)`, `lake.query(...)`, `lake.ingest(...)`. Close it when done.

    Writes go through one read-write DuckDB instance (a cursor per thread). The read-only
    query path (`query`, HTTP `/sql`, MCP) runs on a second instance that attaches the lake
    READ_ONLY inside DuckDB's sandbox, created on first use.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        catalog: str | None = None,
        data_path: str | None = None,
        connection: duckdb.DuckDBPyConnection | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.location = Location.resolve(root, catalog, data_path)
        self.root = self.location.root
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings if settings is not None else Settings.load(self.root)
        self.models = ModelTable(self.settings.models)  # parsed once: a malformed table fails here, not at a chat
        self.observer = Observer(
            self.root / "observer" / "ops.jsonl" if self.settings.observer_log else None,
            capacity=self.settings.observer_buffer,
        )
        self._owns_connection = connection is None
        self._db = connection if connection is not None else duckdb.connect()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursor_lock = threading.Lock()
        self._ro: duckdb.DuckDBPyConnection | None = None
        self._ro_macro_db = ""
        self.write_lock = threading.RLock()  # one DuckLake writer per process; commits would conflict
        self._closed = False
        try:
            self._macro_db = prepare_connection(self._db, self)
        except BaseException:
            if self._owns_connection:
                self._db.close()
            raise

    # -- connections -------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read-write connection, with every function and macro. It is the user's:
        engine code uses `fresh_cursor()`, so it never leaves a transaction open on it."""
        cur = getattr(self._local, "rw", None)
        if cur is None:
            self._check_open()
            cur = prepare_cursor(self._db.cursor(), self._macro_db, temp_macros=macro_values(self))
            self._local.rw = cur
            with self._cursor_lock:
                self._cursors.append(cur)
        return cur

    def query_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's sandboxed, read-only connection (the path of /sql)."""
        cur = getattr(self._local, "ro", None)
        if cur is None:
            self._check_open()
            with self._cursor_lock:
                if self._ro is None:
                    ro = duckdb.connect()
                    try:
                        self._ro_macro_db = prepare_connection(ro, self, read_only=True)
                        with map_duckdb_errors():
                            sandbox(ro, self.location)
                    except BaseException:
                        ro.close()
                        raise
                    self._ro = ro
                cur = prepare_cursor(self._ro.cursor(), self._ro_macro_db, macros_first=True)
                self._cursors.append(cur)
            self._local.ro = cur
        return cur

    @contextlib.contextmanager
    def fresh_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new read-write cursor, closed afterwards: for engine code that may run inside a UDF call,
        where this thread's own cursor is busy with the calling query."""
        self._check_open()
        cur = prepare_cursor(self._db.cursor(), self._macro_db)
        try:
            yield cur
        finally:
            cur.close()

    def transaction(self, cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`body(cur)` as one lake transaction, one writer of this process at a time (concurrent commits to
        the SQLite catalog collide and back off otherwise), retried when it collides with another process."""
        return in_transaction(cur, body, lock=self.write_lock)

    @functools.cached_property
    def vectors(self) -> VectorEngine:
        from lakehouse.engine.vectors import VectorEngine

        return VectorEngine(self)

    @functools.cached_property
    def chat(self) -> ChatDispatcher:
        """The LLM dispatcher (providers, tiers, retries), recording into this lake's observer."""
        from lakehouse.engine.chat import ChatDispatcher

        return ChatDispatcher(self.settings, observer=self.observer, models=self.models)

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyRelation:
        """Run any SQL on this thread's read-write connection; returns a DuckDB relation."""
        cur = self.cursor()
        with map_duckdb_errors():
            if params is None:
                return cur.sql(query)
            return cur.sql(query, params=params)

    def query(self, sql: str, params: Any = None, *, max_rows: int | None = None,
              timeout_s: float | None = None, origin: str = "python") -> QueryResult:
        """Read-only, sandboxed query: one SELECT/WITH/EXPLAIN/DESCRIBE/SHOW/SUMMARIZE statement."""
        return run_query(self, sql, params, max_rows=max_rows, timeout_s=timeout_s, origin=origin)

    # -- datasets ------------------------------------------------------------------------
    def ingest(self, source: Source, dataset: str, *, format: str = "auto", mode: str = "create",
               key: str | None = None, filename: str | None = None, origin: str = "python") -> IngestResult:
        """Load a file, glob, bytes or binary file object into `dataset` (one transaction, idempotent)."""
        return ingest_mod.ingest(self, source, dataset, format=format, mode=mode, key=key,
                                 filename=filename, origin=origin)

    def compact(self, dataset: str) -> dict[str, Any]:
        """Fold a merge-on-read dataset's deltas into its base."""
        return ingest_mod.compact(self, dataset)

    def datasets(self) -> list[dict[str, Any]]:
        return datasets_mod.list_datasets(self)

    def dataset_count(self) -> int:
        with map_duckdb_errors(), self.fresh_cursor() as cur:
            return cur.execute("SELECT count(*) FROM lake.lh.datasets").fetchone()[0]

    def dataset(self, name: str) -> dict[str, Any]:
        return datasets_mod.describe_dataset(self, name)

    def drop_dataset(self, name: str) -> None:
        datasets_mod.drop_dataset(self, name)

    # -- vectors (lake.vectors holds the engine; these are the documented entry points) -----
    def create_corpus(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """Build a corpus from `dataset=` or `sql=`: embed `text`, store rows, build an HNSW index."""
        return self.vectors.create_corpus(name, **kwargs)

    def add_to_corpus(self, name: str, rows: Any, embeddings: Any = None) -> dict[str, Any]:
        return self.vectors.add_to_corpus(name, rows, embeddings)

    def corpora(self) -> list[dict[str, Any]]:
        return self.vectors.corpora()

    def drop_corpus(self, name: str) -> None:
        self.vectors.drop_corpus(name)

    def rebuild_index(self, corpus: str) -> dict[str, Any]:
        return self.vectors.rebuild_index(corpus)

    def rollback_index(self, corpus: str, generation: int | None = None) -> dict[str, Any]:
        return self.vectors.rollback_index(corpus, generation)

    def vector_search(self, corpus: str, query: Any, k: int = 10, ids: Any = None) -> list[Any]:
        """Top-k (id, score, rank) of `corpus` for a text or vector query, optionally among `ids`."""
        return self.vectors.search(corpus, query, k, ids)

    def text_search(self, corpus: str, query: str, k: int = 10, ids: Any = None) -> list[Any]:
        """Top-k by BM25 over the corpus text."""
        return self.vectors.text_search(corpus, query, k, ids)

    def hybrid_search(self, corpus: str, query: str, k: int = 10, ids: Any = None, fusion: str = "rrf") -> list[Any]:
        """Vector and BM25 ranks fused: `rrf` (reciprocal rank) or `linear` (normalised scores)."""
        return self.vectors.hybrid_search(corpus, query, k, ids, fusion)

    def embed(self, texts: Any, embedder: str | None = None) -> Any:
        return self.vectors.embed(texts, embedder)

    # -- retrieval layers --------------------------------------------------------------------
    def matrix_search(self, query: str, corpora: Any = None, **options: Any) -> Any:
        """Search several corpora at once, merged with attribution (see engine/matrix)."""
        from lakehouse.engine.matrix.search import matrix_search

        return matrix_search(self, query, corpora, **options)

    @functools.cached_property
    def playbooks(self) -> Playbooks:
        """Recorded outcomes (lh.playbooks) that boost matrix_search(use_playbook=True)."""
        from lakehouse.engine.matrix.playbooks import Playbooks

        return Playbooks(self)

    def record_playbooks(self, entries: Any) -> dict[str, Any]:
        """Record outcomes: [{query, corpus, answer_id, outcome, answer_text?, score?, recorded_at?, tags?}]."""
        return self.playbooks.record(list(entries))

    def ask(self, question: str, **options: Any) -> Any:
        """Answer with an LLM grounded in retrieved rows (see engine/rag.py)."""
        from lakehouse.engine.rag import ask

        return ask(self, question, **options)

    # -- lifecycle -----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            from lakehouse.errors import LakehouseError

            raise LakehouseError("this lake is closed", code="closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if "chat" in self.__dict__:
            self.chat.close()
        if "vectors" in self.__dict__:
            self.vectors.close()
        self.observer.close()
        with self._cursor_lock:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()
        if self._ro is not None:
            self._ro.close()
        if self._owns_connection:
            self._db.close()
        else:
            try:
                self._db.execute(f'USE "{self._macro_db}"')
                self._db.execute("DETACH lake")
            except duckdb.Error:
                log.debug("could not detach the lake from the caller's connection", exc_info=True)

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r}, catalog={self.location.catalog!r})"
