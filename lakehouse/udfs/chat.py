"""`chat(model, prompt) -> VARCHAR`: one LLM call per row, each the `chat` operation.

    SELECT id, chat('tier:local_fast', 'Summarise: ' || notes) FROM job_orders LIMIT 5;

The `chat` macro (sqlviews/20_chat.sql) calls `lh_chat` with the caller's profile (`lh_profile`): DuckDB may run
the function on a thread of its own, which does not carry the caller's context. A NULL model or prompt gives NULL.
A provider failure fails the query with the dispatcher's error (ProviderError, ProviderNotConfigured ...), after
its retries and fallbacks.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from lakehouse.engine.ops import entrance
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

MAX_PARALLEL = 4  # rows of one batch answered at once: LLM calls are slow, the dispatcher is thread-safe


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    @udf_errors
    def lh_chat(profiles: pa.Array, models: pa.Array, prompts: pa.Array) -> pa.Array:
        """SELECT id, chat('tier:local_fast', 'Summarise: ' || notes) FROM job_orders LIMIT 5"""
        pairs = list(zip(models.to_pylist(), prompts.to_pylist(), strict=True))
        profile = profiles[0].as_py() if len(profiles) else None  # one variable: the same on every row
        todo = [i for i, (m, p) in enumerate(pairs) if m is not None and p is not None]
        out: list[str | None] = [None] * len(pairs)

        def answer(i: int) -> str:
            model, prompt = pairs[i]
            return lake.ops.call("chat", model=model, prompt=prompt).content

        with entrance("sql", read_only=read_only, profile=profile):
            if len(todo) == 1:
                out[todo[0]] = answer(todo[0])
            elif todo:
                caller = contextvars.copy_context()  # pool threads start with an empty context: carry the caller
                with ThreadPoolExecutor(min(MAX_PARALLEL, len(todo)), thread_name_prefix="lh-chat") as pool:
                    # map() re-raises the first failing row's error here, inside udf_errors
                    results = pool.map(lambda i: caller.copy().run(answer, i), todo)
                    for i, text in zip(todo, results, strict=True):
                        out[i] = text
        return pa.array(out, type=pa.string())

    # side_effects: every row is a fresh call (never folded into a constant or cached by DuckDB)
    con.create_function("lh_chat", lh_chat, ["VARCHAR", "VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                        null_handling="special", side_effects=True)
