"""`Lake`: where Lakehouse is assembled. One DuckDB connection onto a DuckLake lake, the engine's
subsystems on a narrow `EngineContext`, and the operations catalog (`lake.ops`) every surface calls.

The methods below are the Python surface: each is one operation of the catalog (`lake.ops.call`), so
a Python call is validated, checked and recorded exactly like the same call over SQL, HTTP or MCP.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine import buckets
from lakehouse.engine.chat.keys import KeyRing
from lakehouse.engine.chat.routing import PROVIDERS, ModelTable
from lakehouse.engine.connection import Connections, Location
from lakehouse.engine.context import EngineContext
from lakehouse.engine.housekeeping import tidy
from lakehouse.engine.ingest import IngestResult
from lakehouse.engine.matrix.gate import check_modes
from lakehouse.engine.observer import Observer, StorageJournal
from lakehouse.engine.ops import CATALOG, Operations
from lakehouse.engine.s3 import S3Config
from lakehouse.engine.safe_sql import QueryResult
from lakehouse.engine.snapshots import LakeClock
from lakehouse.engine.sources import Source
from lakehouse.errors import LakehouseError, map_duckdb_errors
from lakehouse.settings import Settings

if TYPE_CHECKING:
    from lakehouse.engine.chat import ChatDispatcher
    from lakehouse.engine.matrix.playbooks import Playbooks
    from lakehouse.engine.matrix.search import MatrixResult, Retrieval
    from lakehouse.engine.profiles import ProfileStore
    from lakehouse.engine.vectors.engine import VectorEngine
    from lakehouse.engine.vectors.follow import Follower
    from lakehouse.engine.vectors.hits import Hit

log = logging.getLogger(__name__)

KEY_NAMES = tuple(dict.fromkeys([*(p.key_env for p in PROVIDERS.values() if p.key_env), "OPENAI_API_KEY"]))


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
        s = self.settings = settings if settings is not None else Settings.load(self.root)
        check_modes(s.modes)  # like [models]: a malformed table fails here, naming the key, not at a search
        stores = buckets.parse(s.buckets, self.root)  # likewise: a bad [buckets] table fails at open
        if data_path is None and stores.primary is not None:
            self.location = Location.resolve(root, catalog, stores.primary.path)
        self.location = dataclasses.replace(self.location, buckets=stores, s3=S3Config.resolve(s, os.environ))
        self.models = ModelTable(s.models)
        self.keys = KeyRing(KEY_NAMES, os.environ, s.key_file)
        self.observer = Observer(self.root / "observer", write=s.observer_log, capacity=s.observer_buffer,
                                 retention_days=s.observer_retention_days)
        self._exporter = None
        if s.otlp_endpoint:
            from lakehouse.engine.observer.otel import OtlpExporter

            self._exporter = OtlpExporter(s.otlp_endpoint)
            self.observer.listeners.append(self._exporter)
        journal = StorageJournal(self.root, s.observer_retention_days)  # before the connection: its SQL view reads it
        self.ops = Operations(self, CATALOG)
        self._db = Connections(self, connection)
        clock = LakeClock(self.location, self._db.fresh_cursor, s.sync_interval_s, self._db.commit_lock)
        self.ctx = EngineContext(s, self.location, self.models, self.keys, journal, self._db, clock)
        try:
            tidy(self.ctx)  # what an earlier crash left on disk
        except LakehouseError as exc:  # a lake that opens is worth more than a tidy one
            log.warning("could not tidy the lake: %s", exc)

    # -- subsystems (assembled here, each on the narrow context) ---------------------------
    @functools.cached_property
    def vectors(self) -> VectorEngine:
        from lakehouse.engine.vectors.engine import VectorEngine

        return VectorEngine(self.ctx)

    @functools.cached_property
    def follower(self) -> Follower:
        """Keeps dataset corpora in step with their dataset (engine/vectors/follow.py)."""
        from lakehouse.engine.vectors.follow import Follower

        return Follower(self.ctx, self.vectors)

    @functools.cached_property
    def playbooks(self) -> Playbooks:
        from lakehouse.engine.matrix.playbooks import Playbooks

        return Playbooks(self.ctx, self.vectors)

    @functools.cached_property
    def profiles(self) -> ProfileStore:
        """Profiles and their keys (engine/profiles.py); what they may do is checked by the operations layer."""
        from lakehouse.engine.profiles import ProfileStore

        return ProfileStore(self.ctx)

    @functools.cached_property
    def retrieval(self) -> Retrieval:
        from lakehouse.engine.matrix.search import Retrieval

        return Retrieval(self.ctx, self.vectors, self.playbooks)

    @functools.cached_property
    def llm(self) -> ChatDispatcher:
        """The LLM dispatcher (providers, tiers, retries, fallbacks)."""
        from lakehouse.engine.chat import ChatDispatcher

        return ChatDispatcher(self.settings, keys=self.keys, models=self.models)

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read-write connection, with every function and macro. It is the user's:
        engine code uses fresh cursors, so it never leaves a transaction open on it."""
        return self._db.cursor()

    def query_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's sandboxed, read-only connection (the path of /sql)."""
        return self._db.query_cursor()

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyRelation:
        """Run any SQL on this thread's read-write connection; returns a DuckDB relation."""
        cur = self.cursor()
        with map_duckdb_errors():
            if params is None:
                return cur.sql(query)
            return cur.sql(query, params=params)

    # -- the Python surface: one operation each ------------------------------------------------
    def query(self, sql: str, params: Any = None, *, max_rows: int | None = None,
              timeout_s: float | None = None, at_snapshot: int | None = None) -> QueryResult:
        """Read-only, sandboxed query: one SELECT/WITH/EXPLAIN/DESCRIBE/SHOW/SUMMARIZE statement; with
        `at_snapshot`, of the lake as of that DuckLake snapshot (time travel)."""
        return self.ops.call("sql.query", sql=sql, params=params, max_rows=max_rows, timeout_s=timeout_s,
                             at_snapshot=at_snapshot)

    def ingest(self, source: Source, dataset: str, *, format: str = "auto", mode: str = "create",
               key: str | None = None, filename: str | None = None, **options: Any) -> IngestResult:
        """Load a file, glob, bytes or binary file object into `dataset` (one transaction, idempotent, exact).
        Options: header, on_ragged ("error" | "pad" | "skip_and_report"), date_format, timestamp_format, widen
        (see README, "Ingest rules")."""
        return self.ops.call("dataset.ingest", source=source, dataset=dataset, format=format, mode=mode, key=key,
                             filename=filename, **options)

    def compact(self, dataset: str) -> dict[str, Any]:
        """Fold a merge-on-read dataset's deltas into its base."""
        return self.ops.call("dataset.compact", name=dataset)

    def datasets(self) -> list[dict[str, Any]]:
        return self.ops.call("dataset.list")

    def dataset(self, name: str) -> dict[str, Any]:
        return self.ops.call("dataset.describe", name=name)

    def drop_dataset(self, name: str) -> None:
        self.ops.call("dataset.drop", name=name)

    def dataset_count(self) -> int:
        with map_duckdb_errors(), self.ctx.fresh_cursor() as cur:
            return cur.execute("SELECT count(*) FROM lake.lh.datasets").fetchone()[0]

    def create_corpus(self, name: str, **options: Any) -> dict[str, Any]:
        """Build a corpus from `dataset=`, `sql=` or `rows=`: embed `text`, store rows, build an HNSW index."""
        return self.ops.call("corpus.create", name=name, **options)

    def build_corpus(self, name: str, folder: str | os.PathLike[str], kind: str, **options: Any) -> dict[str, Any]:
        """A corpus of Markdown chunks (`kind="docs"`) or Python symbols (`kind="code"`) from a folder."""
        return self.ops.call("corpus.build", name=name, folder=os.fspath(folder), kind=kind, **options)

    def add_to_corpus(self, name: str, rows: Any, embeddings: Any = None) -> dict[str, Any]:
        return self.ops.call("corpus.add", name=name, rows=rows, embeddings=embeddings)

    def corpora(self) -> list[dict[str, Any]]:
        return self.ops.call("corpus.list")

    def corpus(self, name: str) -> dict[str, Any]:
        return self.ops.call("corpus.describe", name=name)

    def sync_corpus(self, name: str) -> dict[str, Any]:
        """Bring a corpus that follows its dataset up to the dataset's latest snapshot."""
        return self.ops.call("corpus.sync", name=name)

    def drop_corpus(self, name: str) -> None:
        self.ops.call("corpus.drop", name=name)

    def rebuild_index(self, corpus: str) -> dict[str, Any]:
        return self.ops.call("corpus.rebuild", name=corpus)

    def rollback_index(self, corpus: str, generation: int | None = None) -> dict[str, Any]:
        return self.ops.call("corpus.rollback", name=corpus, generation=generation)

    def embed(self, texts: Sequence[str], embedder: str | None = None) -> Any:
        """float32 (n, d) embeddings (through the lake's embedding cache)."""
        return self.ops.call("embed", texts=list(texts), embedder=embedder, cache=True)["embeddings"]

    def vector_search(self, corpus: str, query: Any, k: int = 10, ids: Any = None) -> list[Hit]:
        """Top-k (id, score, rank) of `corpus` for a text or vector query, optionally among `ids`."""
        return self.ops.call("vectors.search", corpus=corpus, query=query, k=k, ids=ids)

    def hybrid_where(self, corpus: str, query: Any, k: int = 10, where: str | None = None) -> dict[str, Any]:
        """Vector search among the rows of the corpus's dataset matching one SQL boolean `where`."""
        return self.ops.call("vectors.hybrid", corpus=corpus, query=query, k=k, where=where)

    def text_search(self, corpus: str, query: str, k: int = 10, ids: Any = None) -> list[Hit]:
        """Top-k by BM25 over the corpus text."""
        return self.ops.call("text.search", corpus=corpus, query=query, k=k, ids=ids)

    def hybrid_search(self, corpus: str, query: str, k: int = 10, ids: Any = None, fusion: str = "rrf") -> list[Hit]:
        """Vector and BM25 ranks fused: `rrf` (reciprocal rank) or `linear` (normalised scores)."""
        return self.ops.call("hybrid.search", corpus=corpus, query=query, k=k, ids=ids, fusion=fusion)

    def matrix_search(self, query: str, corpora: Any = None, **options: Any) -> MatrixResult:
        """Search several corpora at once, merged with attribution (see engine/matrix/search.py)."""
        return self.ops.call("matrix.search", query=query, corpora=corpora, **options)

    def relevance(self, query: str, candidates: list[dict[str, Any]], threshold: float | None = None) -> dict[str, Any]:
        """Which of `candidates` ({id, text, ...}) the relevance filter keeps for `query`, and why the rest go."""
        return self.ops.call("matrix.relevance", query=query, candidates=candidates, threshold=threshold)

    def record_playbooks(self, entries: Any) -> dict[str, Any]:
        """Record outcomes: [{query, corpus, answer_id, outcome, answer_text?, score?, recorded_at?, tags?}]."""
        return self.ops.call("playbook.record", entries=list(entries))

    def playbook_lookup(self, query: str, k: int = 10) -> dict[str, Any]:
        return self.ops.call("playbook.lookup", query=query, k=k)

    def chat(self, model: str, messages: Any = None, **options: Any) -> Any:
        """One answer from `model` (prompt=, system=, temperature=, max_tokens=, timeout_s=); with
        `stream=True`, an iterator of text deltas."""
        return self.ops.call("chat", model=model, messages=messages, **options)

    def chat_models(self) -> list[dict[str, str]]:
        """The configured tiers and the model ids they name, with their provider."""
        return self.ops.call("chat.models")

    def ask(self, question: str, **options: Any) -> dict[str, Any]:
        """Answer with an LLM grounded in retrieved rows (see engine/rag.py)."""
        return self.ops.call("rag.ask", question=question, **options)

    def observed_ops(self, **filters: Any) -> list[dict[str, Any]]:
        """Recorded ops, newest first (op=, origin=, status=, since=, until=, limit=)."""
        return self.ops.call("observer.ops", **filters)

    def op_stats(self, window: str = "1h") -> dict[str, Any]:
        return self.ops.call("observer.stats", window=window)

    def storage_errors(self, **filters: Any) -> list[dict[str, Any]]:
        return self.ops.call("storage.errors", **filters)

    def hnsw_trials(self, corpus: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.ops.call("hnsw.trials", corpus=corpus, limit=limit)

    def drain_storage(self) -> dict[str, Any]:
        """Move rows written to the rescue bucket (while the primary failed) back to the primary bucket."""
        return self.ops.call("storage.drain")

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        """The lake's history, newest first (dataset=, corpus=, op=, since_snapshot=, limit=)."""
        return self.ops.call("journal", **filters)

    def changes(self, dataset: str, since_snapshot: int = 0, **options: Any) -> dict[str, Any]:
        """Rows inserted, deleted and updated in `dataset` after `since_snapshot` (until_snapshot=, limit=)."""
        return self.ops.call("dataset.changes", dataset=dataset, since_snapshot=since_snapshot, **options)

    def create_profile(self, name: str, *, datasets: Sequence[str] = (), corpora: Sequence[str] = (),
                       access: str = "read") -> dict[str, Any]:
        """A profile bound to `datasets` and `corpora` (glob patterns); the result holds its API key, shown once."""
        return self.ops.call("profile.create", name=name, datasets=list(datasets), corpora=list(corpora), access=access)

    def list_profiles(self) -> list[dict[str, Any]]:
        return self.ops.call("profile.list")

    def delete_profile(self, name: str) -> dict[str, Any]:
        return self.ops.call("profile.delete", name=name)

    def rotate_profile_key(self, name: str) -> dict[str, Any]:
        return self.ops.call("profile.rotate_key", name=name)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        if self._db.closed:
            return
        if "llm" in self.__dict__:
            self.llm.close()
        if "vectors" in self.__dict__:
            self.vectors.close()
        self.observer.close()
        if self._exporter is not None:
            self._exporter.close()
        self.ctx.clock.watch.close()
        self._db.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r}, catalog={self.location.catalog!r})"
