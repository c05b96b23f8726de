"""`chat(model, prompt) -> VARCHAR`: one LLM call per row, through the lake's chat dispatcher.

    SELECT id, chat('tier:local_fast', 'Summarise: ' || notes) FROM job_orders LIMIT 5;

A NULL model or prompt gives NULL. A provider failure fails the query with the dispatcher's
error (ProviderError, ProviderNotConfigured ...), after its retries and fallbacks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

MAX_PARALLEL = 4  # rows of one batch answered at once: LLM calls are slow, the dispatcher is thread-safe


def register(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    @udf_errors
    def chat(models: pa.Array, prompts: pa.Array) -> pa.Array:
        """SELECT id, chat('tier:local_fast', 'Summarise: ' || notes) FROM job_orders LIMIT 5"""
        pairs = list(zip(models.to_pylist(), prompts.to_pylist(), strict=True))
        todo = [i for i, (m, p) in enumerate(pairs) if m is not None and p is not None]
        out: list[str | None] = [None] * len(pairs)
        if todo:
            dispatcher = lake.chat

            def answer(i: int) -> str:
                model, prompt = pairs[i]
                return dispatcher.chat(model, prompt=prompt).content

            if len(todo) == 1:
                out[todo[0]] = answer(todo[0])
            else:
                with ThreadPoolExecutor(min(MAX_PARALLEL, len(todo)), thread_name_prefix="lh-chat") as pool:
                    # map() re-raises the first failing row's error here, inside udf_errors
                    for i, text in zip(todo, pool.map(answer, todo), strict=True):
                        out[i] = text
        return pa.array(out, type=pa.string())

    # side_effects: every row is a fresh call (never folded into a constant or cached by DuckDB)
    con.create_function("chat", chat, ["VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                        null_handling="special", side_effects=True)
