"""Every route's failure modes answer `{"error": {"code": str, "message": str, ...}}` with a 4xx/5xx.

One table, one test: a new route adds its failure modes as rows of CASES.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from http_server import LiveServer, break_op, routes_without_cases

import lakehouse
from lakehouse.http import create_app

CSV = b"name,age\nann,31\nbob,45\n"
UPLOAD_LIMIT_MB = 1


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    json: Any = None  # a JSON body
    content: bytes | None = None  # a raw body (sent as application/json unless headers say otherwise)
    files: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    boom: str | None = None  # an operation (or, for /health, a Lake method) made to raise RuntimeError


def csv_file(data: bytes = CSV, name: str = "p.csv") -> dict[str, Any]:
    return {"file": (name, data, "text/csv")}


CASES = [
    # routing
    Case("unknown-route", "GET", "/no/such/route", 404, "not_found"),
    Case("health-wrong-method", "POST", "/health", 405, "method_not_allowed"),
    Case("health-internal", "GET", "/health", 500, "internal", boom="dataset_count"),
    # /ingest
    Case("ingest-wrong-method", "GET", "/ingest", 405, "method_not_allowed"),
    Case("ingest-no-file", "POST", "/ingest", 400, "missing_field", params={"dataset": "x"}),
    Case("ingest-no-dataset", "POST", "/ingest", 400, "missing_field", files=csv_file()),
    Case("ingest-bad-dataset-name", "POST", "/ingest", 400, "invalid_dataset_name", files=csv_file(),
         params={"dataset": "Bad-Name"}),
    Case("ingest-reserved-name", "POST", "/ingest", 400, "invalid_dataset_name", files=csv_file(),
         params={"dataset": "lh_x"}),
    Case("ingest-unknown-format", "POST", "/ingest", 400, "invalid_format", files=csv_file(),
         params={"dataset": "x", "format": "xls"}),
    Case("ingest-unknown-mode", "POST", "/ingest", 400, "invalid_mode", files=csv_file(),
         params={"dataset": "x", "mode": "upsert"}),
    Case("ingest-delta-without-key", "POST", "/ingest", 400, "missing_key", files=csv_file(),
         params={"dataset": "x", "mode": "delta"}),
    Case("ingest-empty-file", "POST", "/ingest", 400, "empty_file", files=csv_file(b""), params={"dataset": "x"}),
    Case("ingest-exists", "POST", "/ingest", 409, "dataset_exists", files=csv_file(b"name\nother\n"),
         params={"dataset": "people"}),
    Case("ingest-too-large", "POST", "/ingest", 413, "payload_too_large",
         files=csv_file(b"a\n" + b"1\n" * (UPLOAD_LIMIT_MB * 2**19 + 1)), params={"dataset": "x"}),
    Case("ingest-bad-json", "POST", "/ingest", 400, "invalid_json", content=b'{"path": '),
    Case("ingest-json-not-object", "POST", "/ingest", 400, "invalid_json", json=["people.csv"]),
    Case("ingest-json-no-path", "POST", "/ingest", 400, "missing_field", json={"dataset": "x"}),
    Case("ingest-json-dataset-not-string", "POST", "/ingest", 400, "invalid_dataset_name",
         json={"path": "p.csv", "dataset": 1}),
    Case("ingest-path-outside", "POST", "/ingest", 403, "path_outside_import_dirs",
         json={"path": "/etc/passwd", "dataset": "x"}),
    Case("ingest-path-traversal", "POST", "/ingest", 403, "path_outside_import_dirs",
         json={"path": "../../etc/passwd", "dataset": "x"}),
    Case("ingest-path-missing", "POST", "/ingest", 400, "file_not_found", json={"path": "nope.csv", "dataset": "x"}),
    Case("ingest-internal", "POST", "/ingest", 500, "internal", files=csv_file(), params={"dataset": "x"},
         boom="dataset.ingest"),
    # /sql
    Case("sql-wrong-method", "GET", "/sql", 405, "method_not_allowed"),
    Case("sql-bad-json", "POST", "/sql", 400, "invalid_json", content=b"{not json"),
    Case("sql-empty-body", "POST", "/sql", 400, "invalid_json", content=b""),
    Case("sql-json-not-object", "POST", "/sql", 400, "invalid_json", json="SELECT 1"),
    Case("sql-missing", "POST", "/sql", 400, "missing_field", json={}),
    Case("sql-not-string", "POST", "/sql", 400, "invalid_sql", json={"sql": 1}),
    Case("sql-empty", "POST", "/sql", 400, "invalid_sql", json={"sql": "  "}),
    Case("sql-params-string", "POST", "/sql", 400, "invalid_params", json={"sql": "SELECT 1", "params": "x"}),
    Case("sql-max-rows-string", "POST", "/sql", 400, "invalid_max_rows", json={"sql": "SELECT 1", "max_rows": "5"}),
    Case("sql-max-rows-bool", "POST", "/sql", 400, "invalid_max_rows", json={"sql": "SELECT 1", "max_rows": True}),
    Case("sql-max-rows-negative", "POST", "/sql", 400, "invalid_max_rows", json={"sql": "SELECT 1", "max_rows": -1}),
    Case("sql-drop", "POST", "/sql", 403, "statement_not_allowed", json={"sql": "DROP TABLE x"}),
    Case("sql-copy", "POST", "/sql", 403, "statement_not_allowed", json={"sql": "COPY (select 1) TO 'x.csv'"}),
    Case("sql-read-file", "POST", "/sql", 403, "function_not_allowed",
         json={"sql": "SELECT * FROM read_csv('/etc/passwd')"}),
    Case("sql-two-statements", "POST", "/sql", 403, "multiple_statements", json={"sql": "SELECT 1; SELECT 2"}),
    Case("sql-syntax", "POST", "/sql", 400, "sql_syntax", json={"sql": "SELEC 1"}),
    Case("sql-unknown-table", "POST", "/sql", 422, "sql_catalog", json={"sql": "SELECT * FROM nowhere"}),
    Case("sql-internal", "POST", "/sql", 500, "internal", json={"sql": "SELECT 1"}, boom="sql.query"),
    # /datasets
    Case("datasets-wrong-method", "POST", "/datasets", 405, "method_not_allowed"),
    Case("datasets-internal", "GET", "/datasets", 500, "internal", boom="dataset.list"),
    Case("dataset-unknown", "GET", "/datasets/nobody", 404, "dataset_not_found"),
    Case("dataset-bad-name", "GET", "/datasets/Bad-Name", 400, "invalid_dataset_name"),
    # /v1/embed
    Case("embed-missing-texts", "POST", "/v1/embed", 400, "missing_field", json={}),
    Case("embed-texts-not-strings", "POST", "/v1/embed", 400, "invalid_texts", json={"texts": [1]}),
    Case("embed-unknown-embedder", "POST", "/v1/embed", 400, "unknown_embedder", json={"texts": ["a"], "embedder": "x"}),
    # /vectors/search and /vectors/hybrid
    Case("search-missing-corpus", "POST", "/vectors/search", 400, "missing_field", json={"query": "x"}),
    Case("search-unknown-corpus", "POST", "/vectors/search", 404, "corpus_not_found",
         json={"corpus": "nope", "query": "x"}),
    Case("search-no-query", "POST", "/vectors/search", 400, "missing_field", json={"corpus": "people_c"}),
    Case("search-query-and-vector", "POST", "/vectors/search", 400, "invalid_query",
         json={"corpus": "people_c", "query": "x", "vector": [1.0]}),
    Case("search-bad-vector", "POST", "/vectors/search", 400, "invalid_query", json={"corpus": "people_c", "vector": ["a"]}),
    Case("search-dimensions", "POST", "/vectors/search", 400, "dimension_mismatch",
         json={"corpus": "people_c", "vector": [0.1, 0.2]}),
    Case("search-bad-k", "POST", "/vectors/search", 400, "invalid_k", json={"corpus": "people_c", "query": "x", "k": -1}),
    Case("search-k-string", "POST", "/vectors/search", 400, "invalid_k",
         json={"corpus": "people_c", "query": "x", "k": "5"}),
    Case("search-internal", "POST", "/vectors/search", 500, "internal", json={"corpus": "people_c", "query": "x"},
         boom="vectors.search"),
    Case("hybrid-subquery", "POST", "/vectors/hybrid", 403, "where_not_allowed",
         json={"corpus": "people_c", "query": "x", "where": "age IN (SELECT 1)"}),
    Case("hybrid-read-file", "POST", "/vectors/hybrid", 403, "where_not_allowed",
         json={"corpus": "people_c", "query": "x", "where": "read_text('/etc/passwd') IS NOT NULL"}),
    Case("hybrid-bad-where", "POST", "/vectors/hybrid", 400, "invalid_where",
         json={"corpus": "people_c", "query": "x", "where": "age = = 1"}),
    Case("hybrid-two-statements", "POST", "/vectors/hybrid", 400, "invalid_where",
         json={"corpus": "people_c", "query": "x", "where": "true; DROP TABLE people"}),
    Case("hybrid-unknown-column", "POST", "/vectors/hybrid", 422, "sql_binder",
         json={"corpus": "people_c", "query": "x", "where": "nope = 1"}),
    Case("hybrid-sql-corpus", "POST", "/vectors/hybrid", 400, "where_needs_dataset",
         json={"corpus": "sql_c", "query": "x", "where": "true"}),
    # /v1/corpora
    Case("corpora-wrong-method", "PUT", "/v1/corpora", 405, "method_not_allowed"),
    Case("corpora-internal", "GET", "/v1/corpora", 500, "internal", boom="corpus.list"),
    Case("corpora-create-no-name", "POST", "/v1/corpora", 400, "missing_field", json={"dataset": "people"}),
    Case("corpora-create-exists", "POST", "/v1/corpora", 409, "corpus_exists",
         json={"name": "people_c", "dataset": "people", "text": "name"}),
    Case("corpora-create-write-sql", "POST", "/v1/corpora", 403, "statement_not_allowed",
         json={"name": "evil", "sql": "DROP TABLE people"}),
    Case("corpora-create-both-sources", "POST", "/v1/corpora", 400, "invalid_corpus_source",
         json={"name": "both", "dataset": "people", "sql": "SELECT 1 AS id, 'x' AS text"}),
    Case("corpora-create-bad-text", "POST", "/v1/corpora", 400, "invalid_text",
         json={"name": "t", "dataset": "people", "text": 5}),
    Case("corpora-create-missing-column", "POST", "/v1/corpora", 400, "missing_column",
         json={"name": "t", "dataset": "people", "text": "nope"}),
    Case("corpora-rebuild-unknown", "POST", "/v1/corpora/nope/rebuild", 404, "corpus_not_found"),
    Case("corpora-rollback-unknown", "POST", "/v1/corpora/nope/rollback", 404, "corpus_not_found"),
    Case("corpora-rollback-nothing-earlier", "POST", "/v1/corpora/sql_c/rollback", 409, "no_earlier_generation"),
    Case("corpora-rollback-bad-generation", "POST", "/v1/corpora/people_c/rollback", 400, "invalid_generation",
         json={"generation": "one"}),
    Case("corpora-rollback-missing-generation", "POST", "/v1/corpora/people_c/rollback", 404,
         "generation_not_found", json={"generation": 42}),
    # /v1/chat (upstream failures, 502 provider_error, are checked in test_http_chat.py: the 5xx
    # rule below expects the fixed "internal error" message, while a 502 explains the upstream failure)
    Case("chat-bad-json", "POST", "/v1/chat", 400, "invalid_json", content=b'{"model": '),
    Case("chat-missing-model", "POST", "/v1/chat", 400, "missing_field", json={"prompt": "hi"}),
    Case("chat-model-not-string", "POST", "/v1/chat", 400, "invalid_model", json={"model": 1, "prompt": "hi"}),
    Case("chat-no-prompt", "POST", "/v1/chat", 400, "missing_field", json={"model": "ollama/x"}),
    Case("chat-prompt-not-string", "POST", "/v1/chat", 400, "invalid_prompt",
         json={"model": "ollama/x", "prompt": ["hi"]}),
    Case("chat-messages-not-objects", "POST", "/v1/chat", 400, "invalid_messages",
         json={"model": "ollama/x", "messages": ["hi"]}),
    Case("chat-empty-messages", "POST", "/v1/chat", 400, "invalid_messages", json={"model": "ollama/x", "messages": []}),
    Case("chat-bad-role", "POST", "/v1/chat", 400, "invalid_messages",
         json={"model": "ollama/x", "messages": [{"role": "robot", "content": "hi"}]}),
    Case("chat-temperature-string", "POST", "/v1/chat", 400, "invalid_temperature",
         json={"model": "ollama/x", "prompt": "hi", "temperature": "hot"}),
    Case("chat-temperature-range", "POST", "/v1/chat", 400, "invalid_temperature",
         json={"model": "ollama/x", "prompt": "hi", "temperature": 5}),
    Case("chat-max-tokens-zero", "POST", "/v1/chat", 400, "invalid_max_tokens",
         json={"model": "ollama/x", "prompt": "hi", "max_tokens": 0}),
    Case("chat-unknown-tier", "POST", "/v1/chat", 400, "unknown_tier", json={"model": "tier:nope", "prompt": "hi"}),
    Case("chat-provider-not-configured", "POST", "/v1/chat", 503, "provider_not_configured",
         json={"model": "openrouter/anthropic/claude-sonnet-4", "prompt": "hi"}),
    # /v1/chat/completions and /v1/models (OpenAI wire format, our error shape)
    Case("completions-bad-json", "POST", "/v1/chat/completions", 400, "invalid_json", content=b"{"),
    Case("completions-missing-model", "POST", "/v1/chat/completions", 400, "missing_field",
         json={"messages": [{"role": "user", "content": "hi"}]}),
    Case("completions-missing-messages", "POST", "/v1/chat/completions", 400, "missing_field",
         json={"model": "ollama/x"}),
    Case("completions-messages-not-array", "POST", "/v1/chat/completions", 400, "invalid_messages",
         json={"model": "ollama/x", "messages": "hi"}),
    Case("completions-image-part", "POST", "/v1/chat/completions", 400, "invalid_messages",
         json={"model": "ollama/x", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
    Case("completions-stream-not-bool", "POST", "/v1/chat/completions", 400, "invalid_stream",
         json={"model": "ollama/x", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}),
    Case("completions-stream-options-not-object", "POST", "/v1/chat/completions", 400, "invalid_stream_options",
         json={"model": "ollama/x", "messages": [{"role": "user", "content": "hi"}], "stream": True,
               "stream_options": True}),
    Case("completions-stream-not-configured", "POST", "/v1/chat/completions", 503, "provider_not_configured",
         json={"model": "kimi/kimi-k2", "messages": [{"role": "user", "content": "hi"}], "stream": True}),
    Case("models-wrong-method", "POST", "/v1/models", 405, "method_not_allowed"),
    Case("models-internal", "GET", "/v1/models", 500, "internal", boom="chat.models"),
    # /rag (the lake has two corpora, people_c and sql_c)
    Case("rag-missing-question", "POST", "/rag", 400, "missing_field", json={"corpora": "people_c"}),
    Case("rag-question-not-string", "POST", "/rag", 400, "invalid_question", json={"question": 1}),
    Case("rag-blank-question", "POST", "/rag", 400, "invalid_question", json={"question": " ", "corpora": "people_c"}),
    Case("rag-which-corpus", "POST", "/rag", 400, "corpus_required", json={"question": "who is ann"}),
    Case("rag-unknown-corpus", "POST", "/rag", 404, "corpus_not_found", json={"question": "ann", "corpora": "nope"}),
    Case("rag-corpora-not-strings", "POST", "/rag", 400, "invalid_corpus_name", json={"question": "ann", "corpora": [1]}),
    Case("rag-k-string", "POST", "/rag", 400, "invalid_k",
         json={"question": "ann", "corpora": "people_c", "k": "5"}),
    Case("rag-k-zero", "POST", "/rag", 400, "invalid_k", json={"question": "ann", "corpora": "people_c", "k": 0}),
    Case("rag-metadata-filter-not-object", "POST", "/rag", 400, "invalid_metadata_filter",
         json={"question": "ann", "corpora": "people_c", "metadata_filter": "state"}),
    Case("rag-where-several-corpora", "POST", "/rag", 400, "where_needs_one_corpus",
         json={"question": "ann", "corpora": ["people_c", "sql_c"], "where": "true"}),
    Case("rag-where-subquery", "POST", "/rag", 403, "where_not_allowed",
         json={"question": "ann", "corpora": "people_c", "where": "age IN (SELECT 1)"}),
    Case("rag-unknown-tier", "POST", "/rag", 400, "unknown_tier",
         json={"question": "ann", "corpora": "people_c", "model": "tier:nope"}),
    Case("rag-internal", "POST", "/rag", 500, "internal", json={"question": "ann", "corpora": "people_c"}, boom="rag.ask"),
    # /v1/matrix/...
    Case("matrix-search-no-query", "POST", "/v1/matrix/search", 400, "missing_field", json={"corpora": ["people_c"]}),
    Case("matrix-search-empty-query", "POST", "/v1/matrix/search", 400, "invalid_query",
         json={"query": " ", "corpora": ["people_c"]}),
    Case("matrix-search-no-corpora", "POST", "/v1/matrix/search", 400, "missing_corpora", json={"query": "x"}),
    Case("matrix-search-corpora-not-list", "POST", "/v1/matrix/search", 400, "invalid_corpora",
         json={"query": "x", "corpora": "people_c"}),
    Case("matrix-search-corpora-not-strings", "POST", "/v1/matrix/search", 400, "invalid_corpus_name",
         json={"query": "x", "corpora": [1]}),
    Case("matrix-search-unknown-corpus", "POST", "/v1/matrix/search", 404, "corpus_not_found",
         json={"query": "x", "corpora": ["nope"]}),
    Case("matrix-search-unknown-mode", "POST", "/v1/matrix/search", 400, "unknown_mode", json={"query": "x", "mode": "m"}),
    Case("matrix-search-bad-filter-json", "POST", "/v1/matrix/search", 400, "invalid_metadata_filter",
         json={"query": "x", "corpora": ["people_c"], "metadata_filter": "{\"state\": "}),
    Case("matrix-search-filter-not-object", "POST", "/v1/matrix/search", 400, "invalid_metadata_filter",
         json={"query": "x", "corpora": ["people_c"], "metadata_filter": "[1]"}),
    Case("matrix-search-bad-top", "POST", "/v1/matrix/search", 400, "invalid_top",
         json={"query": "x", "corpora": ["people_c"], "top": 0}),
    Case("matrix-search-internal", "POST", "/v1/matrix/search", 500, "internal",
         json={"query": "x", "corpora": ["people_c"]}, boom="matrix.search"),
    Case("matrix-corpora-wrong-method", "POST", "/v1/matrix/corpora", 405, "method_not_allowed"),
    Case("matrix-corpora-internal", "GET", "/v1/matrix/corpora", 500, "internal", boom="corpus.list"),
    Case("relevance-no-candidates", "POST", "/v1/matrix/relevance", 400, "missing_field", json={"query": "x"}),
    Case("relevance-bad-candidate", "POST", "/v1/matrix/relevance", 400, "invalid_candidates",
         json={"query": "x", "candidates": [{"id": 1}]}),
    Case("relevance-threshold-string", "POST", "/v1/matrix/relevance", 400, "invalid_threshold",
         json={"query": "x", "candidates": [], "threshold": "high"}),
    Case("playbook-record-invalid", "POST", "/v1/matrix/playbooks/record", 400, "invalid_playbook",
         json={"query": "x", "corpus": "people_c"}),
    Case("playbook-record-bad-json", "POST", "/v1/matrix/playbooks/record", 400, "invalid_json", content=b"{"),
    Case("playbook-bulk-not-list", "POST", "/v1/matrix/playbooks/bulk", 400, "invalid_entries", json={"entries": 1}),
    Case("playbook-lookup-no-query", "GET", "/v1/matrix/playbooks", 400, "missing_field"),
    Case("playbook-lookup-bad-k", "GET", "/v1/matrix/playbooks", 400, "invalid_k", params={"query": "x", "k": "a"}),
    Case("playbook-lookup-negative-k", "GET", "/v1/matrix/playbooks", 400, "invalid_k", params={"query": "x", "k": "-5"}),
    # datasets: drop and compact
    Case("dataset-drop-unknown", "DELETE", "/datasets/nobody", 404, "dataset_not_found"),
    Case("dataset-drop-bad-name", "DELETE", "/datasets/Bad-Name", 400, "invalid_dataset_name"),
    Case("dataset-compact-unknown", "POST", "/datasets/nobody/compact", 404, "dataset_not_found"),
    Case("dataset-compact-unknown-field", "POST", "/datasets/people/compact", 400, "unknown_field", json={"x": 1}),
    # text and hybrid search
    Case("text-search-missing-query", "POST", "/v1/text/search", 400, "missing_field", json={"corpus": "people_c"}),
    Case("text-search-unknown-corpus", "POST", "/v1/text/search", 404, "corpus_not_found",
         json={"corpus": "nope", "query": "x"}),
    Case("hybrid-search-bad-fusion", "POST", "/v1/hybrid/search", 400, "invalid_fusion",
         json={"corpus": "people_c", "query": "x", "fusion": "borda"}),
    Case("hybrid-search-internal", "POST", "/v1/hybrid/search", 500, "internal",
         json={"corpus": "people_c", "query": "x"}, boom="hybrid.search"),
    # corpora: one, add, build, drop
    Case("corpus-describe-unknown", "GET", "/v1/corpora/nope", 404, "corpus_not_found"),
    Case("corpus-drop-unknown", "DELETE", "/v1/corpora/nope", 404, "corpus_not_found"),
    Case("corpus-sync-not-following", "POST", "/v1/corpora/sql_c/sync", 404, "corpus_not_following"),
    Case("corpus-add-bad-row", "POST", "/v1/corpora/sql_c/add", 400, "invalid_row", json={"rows": [{"id": 1}]}),
    Case("corpus-add-unknown", "POST", "/v1/corpora/nope/add", 404, "corpus_not_found",
         json={"rows": [{"id": 1, "text": "x"}]}),
    Case("corpus-build-outside-imports", "POST", "/v1/corpora/build", 403, "path_outside_import_dirs",
         json={"name": "docs", "folder": "/etc", "kind": "docs"}),
    Case("corpus-build-bad-kind", "POST", "/v1/corpora/build", 400, "invalid_kind",
         json={"name": "docs", "folder": "docs", "kind": "pdf"}),
    # what happened
    Case("observer-ops-bad-status", "GET", "/v1/observer/ops", 400, "invalid_status", params={"status": "maybe"}),
    Case("observer-ops-bad-since", "GET", "/v1/observer/ops", 400, "invalid_time", params={"since": "yesterday"}),
    Case("observer-ops-bad-limit", "GET", "/v1/observer/ops", 400, "invalid_limit", params={"limit": "0"}),
    Case("observer-stats-bad-window", "GET", "/v1/observer/stats", 400, "invalid_window", params={"window": "-1h"}),
    Case("observer-stats-internal", "GET", "/v1/observer/stats", 500, "internal", boom="observer.stats"),
    Case("storage-errors-bad-kind", "GET", "/storage/errors", 400, "invalid_kind", params={"kind": "fire"}),
    Case("hnsw-trials-bad-corpus", "GET", "/hnsw/trials", 400, "invalid_corpus_name", params={"corpus": "A-B"}),
    # history and buckets
    Case("journal-bad-limit", "GET", "/v1/journal", 400, "invalid_limit", params={"limit": "0"}),
    Case("journal-unknown-field", "GET", "/v1/journal", 400, "unknown_field", params={"who": "me"}),
    Case("changes-bad-since", "GET", "/v1/datasets/people/changes", 400, "invalid_since_snapshot",
         params={"since_snapshot": "-1"}),
    Case("changes-unknown-dataset", "GET", "/v1/datasets/nobody/changes", 404, "dataset_not_found"),
    Case("changes-internal", "GET", "/v1/datasets/people/changes", 500, "internal", boom="dataset.changes"),
    Case("drain-unknown-field", "POST", "/storage/drain", 400, "unknown_field", json={"force": True}),
    Case("drain-internal", "POST", "/storage/drain", 500, "internal", boom="storage.drain"),
    # workflows
    Case("workflow-run-bad-yaml", "POST", "/v1/observer/workflow/run", 400, "invalid_workflow",
         json={"workflow": "name: x\nnodes: [\n"}),
    Case("workflow-run-no-workflow", "POST", "/v1/observer/workflow/run", 400, "missing_field", json={}),
    Case("workflow-run-not-json", "POST", "/v1/observer/workflow/run", 400, "invalid_json", content=b"{"),
    Case("workflow-run-unknown-name", "POST", "/v1/observer/workflow/run", 404, "workflow_not_found",
         json={"workflow": "nope"}),
    Case("workflow-run-bad-resume", "POST", "/v1/observer/workflow/run", 400, "invalid_resume",
         json={"workflow": "nope", "resume": "../x"}),
    Case("workflow-run-missing-input", "POST", "/v1/observer/workflow/run", 400, "missing_input",
         json={"workflow": "name: x\nnodes: [{id: a, mode: dataset.describe, input: {name: $input.n}}]"}),
    Case("workflow-run-internal", "POST", "/v1/observer/workflow/run", 500, "internal", json={"workflow": "x"},
         boom="workflow.run"),
    Case("workflow-list-internal", "GET", "/v1/observer/workflow/list", 500, "internal", boom="workflow.list"),
    Case("workflow-get-unknown", "GET", "/v1/observer/workflow/runs/" + "0" * 32, 404, "run_not_found"),
    Case("workflow-get-bad-id", "GET", "/v1/observer/workflow/runs/nope", 400, "invalid_run_id"),
    # /mcp: what the app refuses before the MCP SDK reads the body has this shape; the protocol's own errors
    # are JSON-RPC errors, as MCP clients expect (tests/test_mcp_http.py)
    Case("mcp-wrong-method", "GET", "/mcp", 405, "method_not_allowed"),
    Case("mcp-not-json", "POST", "/mcp", 415, "unsupported_media_type", files=csv_file()),
    Case("mcp-too-large", "POST", "/mcp", 413, "payload_too_large", content=b" " * (UPLOAD_LIMIT_MB * 2**20 + 1)),
    # drift
    Case("drift-scorer-bad-kind", "POST", "/v1/drift/scorer", 400, "invalid_kind", json={"kind": "rumour"}),
    Case("drift-scorer-internal", "POST", "/v1/drift/scorer", 500, "internal", boom="drift.scorer"),
    Case("drift-playbooks-bad-k", "POST", "/v1/drift/playbooks", 400, "invalid_k", json={"k": 0}),
    Case("drift-playbooks-bad-corpus", "POST", "/v1/drift/playbooks", 400, "invalid_corpus_name",
         json={"corpus": "A-B"}),
    Case("drift-embeddings-no-body", "POST", "/v1/drift/embeddings", 400, "invalid_json", content=b"[]"),
    Case("drift-embeddings-missing-b", "POST", "/v1/drift/embeddings", 400, "missing_field",
         json={"corpus": "people_c", "a": {"generation": 1}}),
    Case("drift-embeddings-two-forms", "POST", "/v1/drift/embeddings", 400, "invalid_selection",
         json={"corpus": "people_c", "a": {"generation": 1, "ids_sql": "SELECT 1"}, "b": {"generation": 1}}),
    Case("drift-embeddings-bad-since", "POST", "/v1/drift/embeddings", 400, "invalid_time",
         json={"corpus": "people_c", "a": {"generation": 1}, "b": {"since": "last week"}}),
    Case("drift-embeddings-unknown-test", "POST", "/v1/drift/embeddings", 400, "invalid_tests",
         json={"corpus": "people_c", "a": {"generation": 1}, "b": {"generation": 1}, "tests": ["vibes"]}),
    Case("drift-embeddings-unknown-corpus", "POST", "/v1/drift/embeddings", 404, "corpus_not_found",
         json={"corpus": "nope", "a": {"generation": 1}, "b": {"generation": 1}}),
    Case("drift-embeddings-no-generation", "POST", "/v1/drift/embeddings", 404, "generation_not_found",
         json={"corpus": "people_c", "a": {"generation": 42}, "b": {"generation": 1}}),
    Case("drift-embeddings-ids-sql-writes", "POST", "/v1/drift/embeddings", 403, "statement_not_allowed",
         json={"corpus": "people_c", "a": {"ids_sql": "DROP TABLE people"}, "b": {"generation": 1}}),
    Case("drift-embeddings-ids-sql-reads-files", "POST", "/v1/drift/embeddings", 403, "function_not_allowed",
         json={"corpus": "people_c", "a": {"ids_sql": "SELECT * FROM read_csv('/etc/passwd')"},
               "b": {"generation": 1}}),
    Case("drift-embeddings-too-few-rows", "POST", "/v1/drift/embeddings", 400, "too_few_rows",
         json={"corpus": "people_c", "a": {"ids_sql": "SELECT 'ann'"}, "b": {"generation": 1}}),
    Case("drift-audit-no-runs", "POST", "/v1/drift/audit", 404, "no_audit_runs"),
    Case("drift-audit-bad-previous", "POST", "/v1/drift/audit", 400, "invalid_previous", json={"previous": 0}),
    # distillation
    Case("distill-collect-bad-source", "POST", "/v1/distill/collect", 400, "invalid_sources",
         json={"sources": ["email"]}),
    Case("distill-collect-bad-record", "POST", "/v1/distill/collect", 400, "invalid_evidence",
         json={"records": [{"kind": "op", "rating": 9}]}),
    Case("distill-score-nothing", "POST", "/v1/distill/score", 400, "missing_field", json={}),
    Case("distill-score-unknown-id", "POST", "/v1/distill/score", 400, "evidence_not_found", json={"ids": ["ev_x"]}),
    Case("distill-export-outside-exports", "POST", "/v1/distill/export", 403, "path_outside_exports",
         json={"out": "/tmp/sft.jsonl"}),
    Case("distill-export-climbs-out", "POST", "/v1/distill/export", 403, "path_outside_exports",
         json={"out": "../catalog.sqlite"}),
    Case("distill-export-holdout-outside", "POST", "/v1/distill/export", 403, "path_outside_import_dirs",
         json={"out": "sft.jsonl", "holdout": "/etc/passwd"}),
    Case("distill-export-bad-category", "POST", "/v1/distill/export", 400, "invalid_min_category",
         json={"out": "sft.jsonl", "min_category": "great"}),
    # pathways
    Case("pathways-record-unknown-op", "POST", "/v1/pathways", 400, "unknown_op",
         json={"text": "x", "steps": [{"op": "rm", "input": {}}]}),
    Case("pathways-record-replays", "POST", "/v1/pathways", 400, "invalid_pathway",
         json={"text": "x", "steps": [{"op": "pathways.replay", "input": {"id": "pw_1"}}]}),
    Case("pathways-record-no-steps", "POST", "/v1/pathways", 400, "invalid_steps", json={"text": "x", "steps": []}),
    Case("pathways-lookup-missing-text", "POST", "/v1/pathways/lookup", 400, "missing_field", json={}),
    Case("pathways-replay-unknown", "POST", "/v1/pathways/pw_nope/replay", 404, "pathway_not_found"),
    Case("pathways-fingerprint-not-text", "POST", "/v1/pathways/fingerprint", 400, "invalid_text", json={"text": 5}),
    # validation and truth rules
    Case("rules-put-bad-kind", "POST", "/v1/rules", 400, "invalid_rule",
         json={"rules": [{"dataset": "people", "name": "r", "kind": "magic"}]}),
    Case("rules-put-twice", "POST", "/v1/rules", 400, "invalid_rule", json={"rules": [
        {"dataset": "people", "name": "r", "kind": "not_null", "params": {"column": "age"}}] * 2}),
    Case("rules-list-bad-dataset", "GET", "/v1/rules", 400, "invalid_dataset_name", params={"dataset": "Bad-Name"}),
    Case("rules-delete-missing", "DELETE", "/v1/rules/people/nope", 404, "rule_not_found"),
    Case("rules-check-missing-dataset", "POST", "/v1/rules/nope/check", 404, "dataset_not_found"),
    Case("truth-check-bad-toml", "POST", "/v1/truth/check", 400, "invalid_truth_rules", json={"rules": "[[rule"}),
    Case("truth-check-reads-files", "POST", "/v1/truth/check", 403, "truth_rule_forbidden", json={
        "rules": '[[rule]]\nname = "r"\ndataset = "people"\nassert = "read_text(\'/etc/passwd\') IS NULL"\n'}),
    Case("truth-check-writes", "POST", "/v1/truth/check", 403, "truth_rule_forbidden", json={
        "rules": '[[rule]]\nname = "r"\ndataset = "people"\nassert = "true; DROP TABLE people"\n'}),
    # upstream failures keep their own message (a 502 explains the provider's error, not ours)
    Case("chat-upstream-unreachable", "POST", "/v1/chat", 502, "provider_error",
         json={"model": "ollama/no-such-model", "prompt": "hi"}),
]


@pytest.fixture(scope="module")
def served_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lakehouse.Lake, str]]:
    """One lake and server for the whole table: every case fails, so none changes the lake
    (and opening a lake per row would cost a second each)."""
    root = tmp_path_factory.mktemp("shape")
    imports = root / "imports"
    imports.mkdir()
    lake = lakehouse.open(root / "lake", import_dirs=[str(imports)], max_upload_mb=UPLOAD_LIMIT_MB, embedder="hash")
    try:
        lake.ingest(CSV, "people", filename="people.csv")
        lake.create_corpus("people_c", dataset="people", id="name", text="name")
        lake.create_corpus("sql_c", sql="SELECT 1 AS id, 'one' AS text")
        with LiveServer(create_app(lake)) as url:
            yield lake, url
    finally:
        lake.close()


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret detail")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_shape(case: Case, served_lake: tuple[lakehouse.Lake, str], monkeypatch: pytest.MonkeyPatch) -> None:
    lake, url = served_lake
    if case.boom in lake.ops.catalog:
        break_op(monkeypatch, lake, case.boom)
    elif case.boom:
        monkeypatch.setattr(lake, case.boom, _raise)
    headers = {"Content-Type": "application/json"} if case.content is not None else None
    resp = httpx.request(case.method, url + case.path, json=case.json, content=case.content, files=case.files,
                         params=case.params, headers=headers, timeout=30)

    assert resp.status_code == case.status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["error"], body  # nothing beside "error"
    error = body["error"]
    assert isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
    assert error["code"] == case.code, error
    assert error["message"]
    if case.code == "internal":
        assert error["message"] == "internal error" and "secret detail" not in resp.text


def test_every_route_has_a_failure_case() -> None:
    """A route added without a row in CASES fails here. The web UI answers HTML pages: its routes' failure cases
    are in tests/test_ui_views.py (UI_CASES)."""
    missing = routes_without_cases([(c.method, c.path) for c in CASES], lambda e: e != "static" and not e.startswith("ui."))
    assert not missing, f"routes without error-shape cases: {missing}"
