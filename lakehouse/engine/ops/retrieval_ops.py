"""Operations of the learning retrieval layer: matrix.search, matrix.relevance, playbook.*, chat, rag.ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from lakehouse.engine import rag
from lakehouse.engine.chat import ChatResult, parse_model
from lakehouse.engine.matrix.search import MatrixResult
from lakehouse.engine.ops import scope
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import current
from lakehouse.engine.ops.data_ops import check_sql_size
from lakehouse.engine.ops.types import MAX_RAG_K, CorpusName, NonBlank
from lakehouse.errors import InvalidInput, LakehouseError, ProviderError, QueryTimeout

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

Filter = dict[str, Any] | str | None
Threshold = float | None


class MatrixSearch(Input):
    query: NonBlank
    corpora: list[CorpusName] | None = Field(None, description="corpora to search (or give a mode)")
    k_per_corpus: int = Field(6, ge=1, le=1000)
    top: int = Field(8, ge=1, le=1000)
    relevance: bool | None = Field(None, description="apply the relevance filter (default: the relevance_filter setting)")
    threshold: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False, description="relevance threshold override")
    model: NonBlank | None = Field(None, description="the model that will read the results (drives the downgrade gate)")
    mode: NonBlank | None = Field(None, description="a configured mode ([modes] in lakehouse.toml)")
    force_mode: NonBlank | None = Field(None, description="a mode, bypassing the gate")
    metadata_filter: Filter = Field(None, description='{"field": value | [values]}, AND across fields')
    where: NonBlank | None = Field(None, description="one SQL boolean over the dataset of a single corpus")
    use_playbook: bool = Field(False, description="boost, demote or inject recorded outcomes")


def _matrix(lake: Lake, inp: MatrixSearch) -> MatrixResult:
    if inp.where is not None:
        check_sql_size(lake, inp.where, "where")
    corpora = scope.default_corpora(lake, inp.corpora, inp.mode or inp.force_mode)
    return lake.retrieval.matrix_search(
        inp.query, corpora, k_per_corpus=inp.k_per_corpus, top=inp.top, relevance=inp.relevance,
        threshold=inp.threshold, model=inp.model, mode=inp.mode, force_mode=inp.force_mode,
        metadata_filter=inp.metadata_filter, where=inp.where, use_playbook=inp.use_playbook)


class Candidate(Input):
    model_config = Input.model_config | {"extra": "allow"}  # the caller's own fields come back with the verdict
    id: str | int
    text: str


class MatrixRelevance(Input):
    query: NonBlank
    candidates: list[Candidate] = Field(max_length=1000)
    threshold: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False)


def _relevance(lake: Lake, inp: MatrixRelevance) -> dict[str, Any]:
    return lake.retrieval.relevance(inp.query, [c.model_dump() for c in inp.candidates], inp.threshold)


class PlaybookRecord(Input):
    entries: list[Any] = Field(max_length=10_000, description=(
        "[{query, corpus, answer_id, outcome: 1 | -1 | 'success' | 'failure', answer_text?, score?, recorded_at?, "
        "source?, tags?}]; a bad entry is reported in results, the others are recorded"))


class PlaybookLookup(Input):
    query: NonBlank
    k: int = Field(10, ge=1, le=1000)


def _lookup(lake: Lake, inp: PlaybookLookup) -> dict[str, Any]:
    found = lake.playbooks.lookup(inp.query, inp.k)
    return {"query": inp.query, "results": [{**e.to_dict(), "similarity": sim} for e, sim in found]}


class Message(Input):
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = Field(None, description="an assistant turn's calls: [{id, name, arguments}]")
    tool_call_id: str | None = Field(None, description="a tool turn: the id of the call it answers")


class Chat(Input):
    model: NonBlank = Field(description="a model id (ollama/m, openrouter/v/m, ...) or tier:<name>")
    messages: list[Message] | None = None
    prompt: str | None = None
    system: str | None = None
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    timeout_s: float | None = Field(None, gt=0, le=3600, allow_inf_nan=False)
    stream: bool = Field(False, description="text deltas as they arrive (an iterator; HTTP: server-sent events)")
    tools: list[dict[str, Any]] | None = Field(None, description=(
        "functions the model may call instead of answering: [{type: 'function', function: {name, description, "
        "parameters}}]; the answer's tool_calls lists the calls it asked for"))
    think: bool | None = Field(None, description="ask a reasoning model to think first (or not)")


def _chat(lake: Lake, inp: Chat) -> Any:
    if inp.messages is None and inp.prompt is None:
        raise InvalidInput("give 'messages' (an array of {role, content}) or 'prompt' (a string)", code="missing_field",
                           field="messages")
    messages = None if inp.messages is None else [m.model_dump(exclude_none=True) for m in inp.messages]
    timeout, limit = inp.timeout_s, None
    if current().origin == "sql":  # a chat() inside a query never outlives the query's own time limit
        limit = lake.settings.query_timeout_s
        timeout = min(timeout or lake.llm.policy.timeout_s, limit)
    options = dict(prompt=inp.prompt, system=inp.system, temperature=inp.temperature, max_tokens=inp.max_tokens,
                   think=inp.think, timeout_s=timeout)
    if inp.stream:
        if inp.tools:
            raise InvalidInput("tool calls are not streamed: leave out 'tools' or 'stream'", code="invalid_tools",
                               field="tools")
        return lake.llm.stream(inp.model, messages, **options)
    try:
        return lake.llm.chat(inp.model, messages, tools=inp.tools, **options)
    except ProviderError as exc:
        if limit is not None and timeout == limit and exc.code == "provider_timeout":
            raise QueryTimeout(f"{exc.message}: chat() in a query waits at most query_timeout_s ({limit:g} s)",
                               code="timeout") from exc
        raise


def _chat_summary(out: Any) -> dict[str, Any]:
    """Who answered and what it cost; never the prompt or the answer."""
    info = {"model": out.model, "provider": out.provider, "usage": out.usage}
    if isinstance(out, ChatResult):
        info.update(attempts=out.attempts, fallback_from=out.fallback_from)
    else:
        info.update(stream=True, cancelled=out.cancelled)
    return info


class NoInput(Input):
    pass


def _models(lake: Lake, inp: NoInput) -> list[dict[str, str]]:
    def owner(model: str) -> str:
        if model.startswith("tier:"):
            return "lakehouse"
        try:
            return parse_model(model)[0]
        except LakehouseError:
            return "lakehouse"

    return [{"id": m, "owned_by": owner(m)} for m in lake.llm.models()]


class Ask(Input):
    question: NonBlank
    corpora: CorpusName | list[CorpusName] | None = None
    k: int = Field(8, ge=1, le=MAX_RAG_K)
    model: NonBlank | None = None
    metadata_filter: Filter = None
    where: NonBlank | None = None
    use_playbook: bool = Field(True, description="answers recorded as worked (or failed) for similar questions steer "
                                                 "retrieval; their text reaches the model as quoted data")


def _ask(lake: Lake, inp: Ask) -> dict[str, Any]:
    if inp.where is not None:
        check_sql_size(lake, inp.where, "where")
    corpora = scope.default_corpora(lake, inp.corpora)
    return rag.ask(lake.retrieval, lake.llm, inp.question, corpora=corpora, k=inp.k, model=inp.model,
                   metadata_filter=inp.metadata_filter, where=inp.where, use_playbook=inp.use_playbook)


OPS = [
    Op("matrix.search", "Search several corpora at once: merged, attributed, relevance-filtered, playbook-boosted.",
       MatrixSearch, _matrix, output=MatrixResult, http="POST /v1/matrix/search",
       sql="matrix_search(query, corpora := [...], ...)", cli="lakehouse matrix QUERY --corpora A,B",
       count=lambda r: len(r.results),
       summary=lambda r: {"mode": r.mode, "corpora": r.corpora, "dropped_relevance": len(r.dropped["relevance"]),
                          "metadata_filter_rows": r.dropped["metadata_filter_rows"]}),
    Op("matrix.relevance", "Judge caller-supplied candidates against a query with the relevance filter.",
       MatrixRelevance, _relevance, output=dict[str, Any], http="POST /v1/matrix/relevance",
       count=lambda d: len(d["kept"])),
    Op("playbook.record", "Record outcomes (this answer worked / failed for this query) that steer matrix search.",
       PlaybookRecord, lambda lake, inp: lake.playbooks.record(inp.entries), output=dict[str, Any], writes=True,
       http="POST /v1/matrix/playbooks/bulk", count=lambda d: d["recorded"],
       summary=lambda d: {"recorded": d["recorded"], "failed": d["failed"]}),
    Op("playbook.lookup", "Recorded outcomes whose query is most similar to a query.", PlaybookLookup, _lookup,
       output=dict[str, Any], http="GET /v1/matrix/playbooks", sql="playbook_lookup(query, k)",
       count=lambda d: len(d["results"])),
    Op("chat", "One answer from an LLM through the dispatcher (providers, tiers, retries, fallbacks).", Chat, _chat,
       output=ChatResult, http="POST /v1/chat", sql="chat(model, prompt)", summary=_chat_summary, deferred=True,
       private=("messages", "prompt", "system")),
    Op("chat.models", "The configured model tiers ('tier:<name>') and the model ids they name, with their provider.",
       NoInput, _models, output=list[dict[str, str]], http="GET /v1/models", count=len),
    Op("rag.ask", "Answer a question with an LLM grounded in retrieved rows, with citations.", Ask, _ask,
       output=dict[str, Any], http="POST /rag", cli="lakehouse ask QUESTION", count=lambda d: d["retrieved"],
       private=("question",),
       summary=lambda d: {"mode": d["mode"], "answered_by": d["answered_by"], "model": d["model"],
                          "cited": len(d["citations"])}),
]
