"""BM25 over a corpus's text: a DuckDB `fts` index kept beside the HNSW sidecar.

`PRAGMA create_fts_index` fails on a DuckLake table, so the index is a derived, rebuildable artifact:
the DuckDB file `<root>/indexes/<corpus>/fts.duckdb` holds `docs(key, text)`, the FTS index
(`fts_main_docs`: english stemmer and stopwords, lower-cased, accents stripped) and `lh_meta`, what
it was built from (live rows, the corpus's next key, the max key, a fingerprint of the live ids, the
build time). The lake table stays the truth. Searches tokenise the query with the index's own macros and
score BM25 from its postings, read into memory when the file is opened (`Postings`).

The index is (re)built lazily by the first text search that finds it missing, unreadable or stale
versus the corpus's in-memory state (rows added, replaced or removed since). A build writes a temp
file and `os.replace`s it in, so a crash never leaves half an index. Each index holds one read-only
DuckDB connection; every search runs on its own `cursor()`. A rebuild opens the new file first and
then swaps the connection, so searches already running finish on the old one (its file stays
readable through the open handle until the last cursor on it is gone).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from lakehouse.engine.extensions import load_extension
from lakehouse.engine.vectors import store
from lakehouse.engine.vectors.corpus import CorpusState
from lakehouse.engine.vectors.hits import Hit, to_hits
from lakehouse.errors import StorageError, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.vectors.engine import VectorEngine

log = logging.getLogger(__name__)

FILENAME = "fts.duckdb"
FORMAT_VERSION = 1
FTS_OPTIONS = "stemmer = 'english', stopwords = 'english', lower = 1, strip_accents = 1, overwrite = 1"
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

# BM25 exactly as `fts_main_docs.match_bm25(key, query)` scores it (k1 1.2, b 0.75, same idf and document
# lengths), computed from the index's postings held in memory (see `Postings`).
BM25_K1 = 1.2
BM25_B = 0.75
# the query's distinct stems, tokenised as the index was; looked up in `Postings.term_ids` (a join with the
# dict table in SQL cost ~3 ms more per query)
_QUERY_STEMS_SQL = "SELECT list_distinct(list_transform(fts_main_docs.tokenize($query), x -> stem(x, 'english')))"


class Postings:
    """One opened index: its connection (for tokenising queries the way the index was built) and its
    term -> (document, term frequency) lists read into memory once. Scoring only the query terms'
    postings takes ~1 ms on SciFact's 5K abstracts; the same BM25 in SQL scanned every term row (~18 ms)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        docs = con.execute("SELECT docid, name, len FROM fts_main_docs.docs").fetchnumpy()
        n_docs = int(docs["docid"].max()) + 1 if len(docs["docid"]) else 0
        self.keys = np.full(n_docs, -1, dtype=np.int64)  # fts docid -> corpus key
        self.keys[docs["docid"]] = docs["name"]
        self.doc_len = np.zeros(n_docs, dtype=np.float64)
        self.doc_len[docs["docid"]] = docs["len"]
        terms = con.execute("SELECT termid, term, df FROM fts_main_docs.dict").fetchnumpy()
        self.term_ids: dict[str, int] = dict(zip(terms["term"].tolist(), terms["termid"].tolist()))
        n_terms = int(terms["termid"].max()) + 1 if len(terms["termid"]) else 0
        self.df = np.zeros(n_terms, dtype=np.float64)
        self.df[terms["termid"]] = terms["df"]
        post = con.execute("SELECT termid, docid, count(*) AS tf FROM fts_main_docs.terms "
                           "GROUP BY termid, docid ORDER BY termid, docid").fetchnumpy()
        self.offsets = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(post["termid"], minlength=n_terms), out=self.offsets[1:])
        self.post_doc = np.asarray(post["docid"], dtype=np.int64)
        self.post_tf = np.asarray(post["tf"], dtype=np.float64)
        self.num_docs, self.avgdl = con.execute("SELECT num_docs, avgdl FROM fts_main_docs.stats").fetchone()

    def search(self, query: str, k: int, allowed_keys: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        cur = self.con.cursor()
        try:
            stems = cur.execute(_QUERY_STEMS_SQL, {"query": query}).fetchone()[0] or []
        finally:
            cur.close()
        termids = [self.term_ids[t] for t in stems if t in self.term_ids]
        scores = np.zeros(len(self.keys), dtype=np.float64)
        hit = np.zeros(len(self.keys), dtype=bool)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * (self.doc_len / self.avgdl)) if len(termids) else None
        for t in termids:
            lo, hi = self.offsets[t], self.offsets[t + 1]
            docs, tf = self.post_doc[lo:hi], self.post_tf[lo:hi]
            idf = np.log10((self.num_docs - self.df[t] + 0.5) / (self.df[t] + 0.5) + 1)  # DuckDB's log() is log10
            scores[docs] += idf * (tf * (BM25_K1 + 1)) / (tf + norm[docs])  # a doc appears once per term
            hit[docs] = True
        docs = np.flatnonzero(hit)
        keys, found = self.keys[docs], scores[docs]
        if allowed_keys is not None:
            ok = np.isin(keys, allowed_keys)
            keys, found = keys[ok], found[ok]
        order = np.lexsort((keys, -found))[:k]  # best first, ties by key (as ORDER BY score DESC, key)
        return keys[order], found[order].astype(np.float32)


class TextIndex:
    """The BM25 index of one corpus. Thread-safe; `search` rebuilds it first when it is stale."""

    def __init__(self, engine: VectorEngine, corpus: str) -> None:
        self.engine = engine
        self.corpus = corpus
        self.path: Path = engine.ctx.root / "indexes" / corpus / FILENAME
        self._open: Postings | None = None
        self._built_from: tuple[int, int] | None = None  # (live rows, next_key) the open index matches
        self._state: CorpusState | None = None  # the corpus state that was checked (new state: check again)
        self._lock = threading.Lock()  # one build / open at a time; searches don't take it when fresh
        self._broken = False  # the open index failed a search: rebuild rather than reopen the file
        self.builds = 0  # builds done by this object (tests and logs)

    # -- freshness -----------------------------------------------------------------------
    def ensure(self) -> Postings | None:
        """The opened index matching the corpus now (None for an empty corpus)."""
        state = self.engine.state(self.corpus)
        want = (state.size, state.next_key)
        opened = self._open
        if opened is not None and self._state is state and self._built_from == want:
            return opened
        with self._lock:
            state = self.engine.state(self.corpus)
            with state.lock:  # the corpus doesn't change while we decide (and read its rows)
                want = (state.size, state.next_key)
                if self._open is not None and self._state is state and self._built_from == want:
                    return self._open
                if want[0] == 0:
                    self._swap(None, state, want)
                    return None
                # a file on disk is trusted at first use only: a new state object in this process means
                # the corpus was dropped and recreated (or reloaded), so the index is rebuilt
                if self._state is None and not self._broken:
                    opened = self._open_existing(state, want)
                    if opened is not None:
                        self._swap(opened, state, want)
                        return opened
                docs, meta = self._snapshot(state)
            path = self._build(docs, meta)  # outside the corpus lock: adds don't wait for the build
            con = self._connect(path)  # open the new file before it replaces the old one
            try:
                opened = Postings(con)
                os.replace(path, self.path)
            except (OSError, duckdb.Error) as exc:
                con.close()
                Path(path).unlink(missing_ok=True)
                raise StorageError(f"cannot write the text index of corpus {self.corpus!r}: {exc}",
                                   code="text_index_write_failed") from exc
            self._swap(opened, state, want)
            self._broken = False
            return opened

    def _swap(self, opened: Postings | None, state: CorpusState, want: tuple[int, int]) -> None:
        # the old connection is not closed here: searches still running hold cursors on it, and it is
        # closed when the last reference goes away
        self._open, self._state, self._built_from = opened, state, want

    def _open_existing(self, state: CorpusState, want: tuple[int, int]) -> Postings | None:
        """The index file on disk if it is readable and was built from exactly this corpus state."""
        if not self.path.exists():
            return None
        try:
            con = self._connect(self.path)
        except Exception as exc:  # corrupt, truncated, or not a DuckDB file: rebuilt from the lake
            log.warning("text index %s is unreadable (%s); rebuilding it", self.path, exc)
            return None
        try:
            row = con.execute("SELECT rows, next_key, fingerprint, version FROM lh_meta").fetchone()
            ok = row is not None and (row[0], row[1]) == want and row[2] == _fingerprint(state) \
                and row[3] == FORMAT_VERSION
            opened = Postings(con) if ok else None
        except Exception as exc:
            log.warning("text index %s is unreadable (%s); rebuilding it", self.path, exc)
            opened = None
        if opened is None:
            con.close()
        return opened

    @staticmethod
    def _connect(path: str | Path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path), read_only=True)
        try:
            load_extension(con, "fts")
        except BaseException:
            con.close()
            raise
        return con

    def _snapshot(self, state: CorpusState) -> tuple[pa.Table, dict[str, Any]]:
        """The corpus's live (key, text) rows and what they are (call under `state.lock`)."""
        with self.engine.ctx.fresh_cursor() as cur, map_duckdb_errors():
            tbl = store.fetch_table(cur, f"SELECT key, text FROM {store.table(self.corpus)} ORDER BY key")
        keys = tbl.column("key").to_numpy().astype(np.int64)
        live = keys < len(state.live)
        live[live] = state.live[keys[live]]
        meta = {"corpus": self.corpus, "rows": state.size, "next_key": state.next_key,
                "max_key": int(keys[live].max()) if live.any() else -1, "fingerprint": _fingerprint(state)}
        return tbl.filter(pa.array(live)), meta

    def _build(self, docs: pa.Table, meta: dict[str, Any]) -> str:
        """Write a complete index of `docs` to a temp file beside the index; its path."""
        t0 = time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(self.path.parent / f".{FILENAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            con = duckdb.connect(tmp)
            try:
                load_extension(con, "fts")
                con.register("lh_docs", docs)
                con.execute("CREATE TABLE docs AS SELECT key::BIGINT AS key, text::VARCHAR AS text FROM lh_docs")
                con.unregister("lh_docs")
                con.execute(f"PRAGMA create_fts_index('docs', 'key', 'text', {FTS_OPTIONS})")
                con.execute("CREATE TABLE lh_meta (corpus VARCHAR, rows BIGINT, next_key BIGINT, max_key BIGINT, "
                            "fingerprint VARCHAR, version INTEGER, options VARCHAR, built_at TIMESTAMP)")
                con.execute("INSERT INTO lh_meta VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                            [meta["corpus"], meta["rows"], meta["next_key"], meta["max_key"], meta["fingerprint"],
                             FORMAT_VERSION, FTS_OPTIONS])
                con.execute("CHECKPOINT")
            finally:
                con.close()
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            Path(tmp + ".wal").unlink(missing_ok=True)
            raise
        self.builds += 1
        log.info("corpus %s: built text index (%d rows) in %.2f s", self.corpus, len(docs), time.perf_counter() - t0)
        return tmp

    # -- search --------------------------------------------------------------------------
    def search(self, query: str, k: int, allowed_keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(keys int64, BM25 scores float32) of the k best rows, best first; with `allowed_keys`, only
        among them. Rows with none of the query's terms are not returned (so maybe fewer than k)."""
        if k <= 0 or (allowed_keys is not None and len(allowed_keys) == 0):
            return _EMPTY
        for attempt in (1, 2):
            opened = self.ensure()
            if opened is None:
                return _EMPTY
            state = self._state
            try:
                keys, scores = opened.search(query, k, allowed_keys)
                break
            except duckdb.Error as exc:  # the file went bad under us (e.g. overwritten): rebuild once
                if attempt == 2:
                    with map_duckdb_errors():
                        raise
                log.warning("text index %s failed a search (%s); rebuilding it", self.path, exc)
                self._invalidate(opened)
        if state is not None and len(keys):  # rows removed while a rebuild was running
            ok = keys < len(state.live)
            ok[ok] = state.live[keys[ok]]
            keys, scores = keys[ok], scores[ok]
        return keys, scores

    def _invalidate(self, opened: Postings) -> None:
        with self._lock:
            if self._open is opened:
                self._open, self._state, self._built_from = None, None, None
                self._broken = True
                try:
                    opened.con.close()  # so the next open doesn't get this database from DuckDB's instance cache
                except duckdb.Error:
                    pass

    def close(self) -> None:
        with self._lock:
            opened, self._open, self._built_from, self._state = self._open, None, None, None
        if opened is not None:
            opened.con.close()


def _fingerprint(state: CorpusState) -> str:
    """A digest of the live (key, id) pairs: tells a recreated corpus of the same size apart."""
    keys = np.flatnonzero(state.live).astype(np.int64)
    h = hashlib.blake2b(keys.tobytes(), digest_size=16)
    h.update("\x1f".join(map(str, state.ids[keys])).encode("utf-8"))
    return h.hexdigest()


# -- engine-level entry points ---------------------------------------------------------------
_registry_lock = threading.Lock()


def index_for(engine: VectorEngine, corpus: str) -> TextIndex:
    """The engine's TextIndex of `corpus` (one per corpus per engine)."""
    indexes = engine.text_indexes
    index = indexes.get(corpus)
    if index is None:
        with _registry_lock:
            index = indexes.get(corpus)
            if index is None:
                index = indexes[corpus] = TextIndex(engine, corpus)
    return index


def text_search(engine: VectorEngine, corpus: str, query: str, k: int = 10,
                ids: Sequence[Any] | None = None) -> list[Hit]:
    """BM25 top-k rows of a corpus (only rows sharing a term with the query); with `ids`, only among them."""
    state = engine.state(corpus)
    allowed = None if ids is None else state.keys_for_ids(ids)
    return to_hits(state, *index_for(engine, corpus).search(query, k, allowed))


def forget(engine: VectorEngine, corpus: str) -> None:
    """Close a corpus's text index and delete its file: call when the corpus is dropped."""
    indexes = engine.text_indexes
    with _registry_lock:
        index = indexes.pop(corpus, None)
    if index is not None:
        index.close()
    folder = engine.ctx.root / "indexes" / corpus
    (folder / FILENAME).unlink(missing_ok=True)
    for tmp in folder.glob(f".{FILENAME}.*.tmp"):
        tmp.unlink(missing_ok=True)


def close_all(engine: VectorEngine) -> None:
    """Close every text index connection of the engine (the files stay)."""
    indexes = engine.text_indexes
    with _registry_lock:
        items = list(indexes.values())
        indexes.clear()
    for index in items:
        index.close()
