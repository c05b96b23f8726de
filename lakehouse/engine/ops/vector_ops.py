"""Operations on corpora and search: corpus.*, embed, vectors.search / hybrid, text.search, hybrid.search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from lakehouse.engine.matrix.builders import folder_source
from lakehouse.engine.ops import scope
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import remote
from lakehouse.engine.ops.data_ops import check_sql_size
from lakehouse.engine.ops.types import CorpusName, DatasetName, Ids, K, Matrix, NonBlank, Query, Rows
from lakehouse.engine.safe_sql import check_read_only, read_arrow
from lakehouse.engine.sources import resolve_import_path
from lakehouse.engine.vectors import hnsw
from lakehouse.engine.vectors.filters import ids_where, with_rows
from lakehouse.engine.vectors.follow import rows_from_table
from lakehouse.engine.vectors.hits import Hit
from lakehouse.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

ColumnName = NonBlank


class CorpusCreate(Input):
    name: CorpusName
    dataset: DatasetName | None = Field(None, description="build from this dataset's rows")
    sql: NonBlank | None = Field(None, description="or from a read-only query (run in the sandbox)")
    rows: Rows | None = Field(None, description="or from ready rows {id, text, metadata?}")
    id: ColumnName = Field("id", description="the id column (dataset / sql)")
    text: ColumnName | list[ColumnName] = Field("text", description="the column(s) whose text is embedded")
    metadata: list[ColumnName] = Field([], description="columns kept as metadata (for metadata filters)")
    embedder: NonBlank | None = None
    metric: Literal["cos", "ip", "l2sq"] = "cos"
    dtype: Literal["i8", "f16", "f32"] | None = None
    replace: bool = False
    follow: bool | None = Field(None, description="keep the corpus in step with its dataset (default: true for "
                                                  "dataset corpora; only dataset corpora can follow)")
    progress: bool | None = Field(None, description="a progress bar on a terminal (Python, CLI)")

    @model_validator(mode="after")
    def _one_source(self) -> CorpusCreate:
        if sum(x is not None for x in (self.dataset, self.sql, self.rows)) != 1:
            raise InvalidInput("give exactly one of dataset, sql or rows", code="invalid_corpus_source")
        if self.follow and self.dataset is None:
            raise InvalidInput("only a corpus built from a dataset can follow it", code="invalid_follow")
        if self.dtype is not None:
            hnsw.check_dtype(self.metric, self.dtype)
        return self


def _create(lake: Lake, inp: CorpusCreate) -> dict[str, Any]:
    if not inp.replace and lake.vectors.exists(inp.name):  # before any work: the answer will be a 409 anyway
        raise Conflict(f"corpus {inp.name!r} exists; drop it or pass replace=True", code="corpus_exists")
    texts = [inp.text] if isinstance(inp.text, str) else list(inp.text)
    read_at = lake.ctx.clock.latest()  # the rows are read at this snapshot or a later one: following starts here
    if inp.rows is not None:
        rows, builder = inp.rows, "rows"
    else:
        if inp.sql is not None:
            check_sql_size(lake, inp.sql)
            check_read_only(inp.sql)  # a request may read, never write, through a corpus definition
            source_sql = inp.sql
        else:
            source_sql = f"SELECT * FROM lake.main.{inp.dataset}"
        tbl = read_arrow(lake.ctx, f"SELECT * FROM ({source_sql})")
        rows, builder = rows_from_table(tbl, inp.id, texts, inp.metadata), "dataset" if inp.dataset else "sql"
    source = {"dataset": inp.dataset, "sql": inp.sql, "id": inp.id, "text": texts, "metadata": inp.metadata}
    out = lake.vectors.create_corpus(inp.name, rows=rows, source=source, embedder=inp.embedder, metric=inp.metric,
                                     dtype=inp.dtype, builder=builder, replace=inp.replace, progress=inp.progress)
    if inp.dataset is not None and inp.follow is not False:
        lake.follower.start(inp.name, inp.dataset, read_at)
    return _with_follow(lake, out)


def _with_follow(lake: Lake, corpus: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A corpus's description with `follow`: {dataset, synced_snapshot, lag, error} when it follows a dataset."""
    status = lake.follower.status() if status is None else status
    return {**corpus, "follow": status.get(corpus["name"])}


class CorpusBuild(Input):
    name: CorpusName
    folder: NonBlank = Field(description="a folder of Markdown docs or Python code (remote callers: in import_dirs)")
    kind: Literal["docs", "code"]
    max_chars: int | None = Field(None, ge=100, le=100_000, description="chunk size cap")
    embedder: NonBlank | None = None
    replace: bool = False


def _build(lake: Lake, inp: CorpusBuild) -> dict[str, Any]:
    folder = resolve_import_path(inp.folder, lake.settings.import_dirs) if remote() else inp.folder
    rows, source = folder_source(folder, inp.kind, inp.max_chars)
    return lake.vectors.create_corpus(inp.name, rows=rows, source=source, kind=inp.kind, builder=f"folder:{inp.kind}",
                                      embedder=inp.embedder, replace=inp.replace)


class CorpusAdd(Input):
    name: CorpusName
    rows: Rows = Field(description="rows {id, text, metadata?} (an Arrow table from Python)")
    embeddings: Matrix | None = Field(None, description="precomputed vectors, one per row")
    progress: bool | None = None


class CorpusName_(Input):
    name: CorpusName


class CorpusRollback(Input):
    name: CorpusName
    generation: int | None = Field(None, ge=1, description="the generation to activate (default: the one before)")


class NoInput(Input):
    pass


class Embed(Input):
    texts: list[str] = Field(max_length=10_000)
    embedder: NonBlank | None = None
    cache: bool = Field(False, description="look texts up in (and add them to) the lake's embedding cache")


def _embed(lake: Lake, inp: Embed) -> dict[str, Any]:
    spec = inp.embedder or lake.settings.embedder
    vectors = lake.vectors.embed(inp.texts, spec, cache=inp.cache)
    dim = int(vectors.shape[1]) if len(inp.texts) else lake.vectors.embedder(spec).dim
    return {"embedder": spec, "dim": dim, "embeddings": vectors}


class VectorSearch(Input):
    corpus: CorpusName
    query: Query
    k: K = 10
    ids: Ids = None
    with_rows: bool = Field(False, description="each hit with its source row (dataset corpora) or text + metadata")


def _search(lake: Lake, inp: VectorSearch) -> list[Hit] | dict[str, Any]:
    hits = lake.vectors.search(inp.corpus, inp.query, inp.k, inp.ids)
    return {"corpus": inp.corpus, "results": with_rows(lake.vectors, inp.corpus, hits)} if inp.with_rows else hits


class VectorHybrid(Input):
    corpus: CorpusName
    query: Query
    k: K = 10
    where: NonBlank | None = Field(None, description="one SQL boolean expression over the corpus's dataset")


def _hybrid(lake: Lake, inp: VectorHybrid) -> dict[str, Any]:
    ids = None
    if inp.where is not None:
        check_sql_size(lake, inp.where, "where")
        ids = ids_where(lake.vectors, inp.corpus, inp.where)
    hits = lake.vectors.search(inp.corpus, inp.query, inp.k, ids)
    return {"corpus": inp.corpus, "results": with_rows(lake.vectors, inp.corpus, hits), "where": inp.where}


class TextSearch(Input):
    corpus: CorpusName
    query: NonBlank
    k: K = 10
    ids: Ids = None


class HybridSearch(TextSearch):
    fusion: Literal["rrf", "linear"] = "rrf"


def _hits(out: Any) -> int:
    return len(out["results"]) if isinstance(out, dict) else len(out)


def _list(lake: Lake, inp: NoInput) -> list[dict[str, Any]]:
    status = lake.follower.status()
    return [_with_follow(lake, c, status) for c in scope.visible(lake.vectors.corpora(), "corpus")]


def _describe_out(d: dict[str, Any]) -> dict[str, Any]:
    return {"corpus": d.get("name"), "rows": d.get("rows"), "generation": d.get("active_generation")}


OPS = [
    Op("corpus.create", "Build a corpus from a dataset, a read-only query or rows: embed, store, index.",
       CorpusCreate, _create, output=dict[str, Any], writes=True, http="POST /v1/corpora",
       cli="lakehouse corpus create NAME --dataset D --text COL", count=lambda d: d["rows"], summary=_describe_out),
    Op("corpus.build", "Build a corpus from a folder of Markdown docs or Python code.", CorpusBuild, _build,
       output=dict[str, Any], writes=True, http="POST /v1/corpora/build",
       cli="lakehouse corpus build NAME --from DIR --kind docs",
       count=lambda d: d["rows"], summary=_describe_out),
    Op("corpus.add", "Add or replace rows {id, text, metadata?} of a corpus (same id: the new row wins).",
       CorpusAdd, lambda lake, inp: lake.vectors.add_to_corpus(inp.name, inp.rows, inp.embeddings, progress=inp.progress),
       output=dict[str, Any], writes=True, http="POST /v1/corpora/<name>/add", count=lambda d: d["added"],
       summary=lambda d: d),
    Op("corpus.list", "List corpora with their embedder, rows, index generations and how far they follow their "
       "dataset.", NoInput, _list, output=list[dict[str, Any]], http="GET /v1/corpora",
       sql="lakehouse_corpora()", cli="lakehouse corpus list", count=len),
    Op("corpus.describe", "One corpus: embedder, metric, rows, source, index generations and follow state.",
       CorpusName_, lambda lake, inp: _with_follow(lake, lake.vectors.describe(inp.name)), output=dict[str, Any],
       http="GET /v1/corpora/<name>",
       count=lambda d: d["rows"], summary=_describe_out),
    Op("corpus.sync", "Bring a corpus that follows its dataset up to the dataset's latest snapshot.", CorpusName_,
       lambda lake, inp: lake.follower.sync(inp.name), output=dict[str, Any], writes=True,
       http="POST /v1/corpora/<name>/sync", cli="lakehouse corpus sync NAME",
       count=lambda d: d["added"] + d["removed"], summary=lambda d: d),
    Op("corpus.rebuild", "Build a new index generation and swap it in (searches never stop).", CorpusName_,
       lambda lake, inp: lake.vectors.rebuild_index(
           inp.name, min_interval_s=lake.settings.rebuild_interval_s if remote() else 0.0),
       output=dict[str, Any], writes=True,
       http="POST /v1/corpora/<name>/rebuild", cli="lakehouse corpus rebuild NAME", summary=lambda d: d),
    Op("corpus.rollback", "Re-activate an earlier index generation (default: the one before the active one).",
       CorpusRollback, lambda lake, inp: lake.vectors.rollback_index(inp.name, inp.generation),
       output=dict[str, Any], writes=True, http="POST /v1/corpora/<name>/rollback",
       cli="lakehouse corpus rollback NAME", summary=lambda d: d),
    Op("corpus.drop", "Drop a corpus, its index generations and sidecars.", CorpusName_,
       lambda lake, inp: lake.vectors.drop_corpus(inp.name) or {"dropped": inp.name}, writes=True,
       http="DELETE /v1/corpora/<name>", cli="lakehouse corpus drop NAME"),
    Op("embed", "Embed texts with an embedder (default: the lake's).", Embed, _embed, output=dict[str, Any],
       http="POST /v1/embed", sql="embed(text[, embedder])", count=lambda d: len(d["embeddings"]),
       summary=lambda d: {"embedder": d["embedder"], "dim": d["dim"]}),
    Op("vectors.search", "Top-k rows of a corpus for a text or vector query, optionally among given ids.",
       VectorSearch, _search, output=list[Hit], http="POST /vectors/search",
       sql="vector_search(corpus, query, k, ids := NULL)", cli="lakehouse search CORPUS QUERY", count=_hits),
    Op("vectors.hybrid", "Vector search among the corpus's dataset rows matching a SQL where expression.",
       VectorHybrid, _hybrid, output=dict[str, Any], http="POST /vectors/hybrid", count=_hits),
    Op("text.search", "Top-k rows of a corpus by BM25 over its text.", TextSearch,
       lambda lake, inp: lake.vectors.text_search(inp.corpus, inp.query, inp.k, inp.ids), output=list[Hit],
       http="POST /v1/text/search", sql="text_search(corpus, query, k, ids := NULL)", count=len),
    Op("hybrid.search", "Vector and BM25 ranks of a corpus fused (rrf or linear).", HybridSearch,
       lambda lake, inp: lake.vectors.hybrid_search(inp.corpus, inp.query, inp.k, inp.ids, inp.fusion),
       output=list[Hit], http="POST /v1/hybrid/search",
       sql="hybrid_search(corpus, query, k, ids := NULL, fusion := 'rrf')", count=len),
]
