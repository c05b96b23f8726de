"""SQL: one read-only statement (sql.query) -> the result table in place; the history lives in the browser."""

from __future__ import annotations

from typing import Any

from flask import request

from lakehouse.http.app import get_lake
from lakehouse.http.ui.blueprint import attempt, bp, form_args, page

DEFAULT_ROWS = 200  # a table a page can show; the operation caps it at the server's max_rows


@bp.route("/ui/sql", methods=["GET", "POST"])
def sql() -> Any:
    server_cap = get_lake().settings.max_rows
    context = {"server_cap": server_cap, "default_rows": min(DEFAULT_ROWS, server_cap)}
    if request.method == "GET":
        return page("sql.html", result=None, sql_text="", cap=None, **context)
    args = {"max_rows": str(context["default_rows"]), **form_args("sql", "max_rows")}
    result, error = attempt("sql.query", args, text_args=True)
    cap = min(int(args["max_rows"]), server_cap) if args["max_rows"].isdigit() else None
    return page("sql.html", "_sql_result.html", result=result, error=error, sql_text=request.form.get("sql", ""),
                cap=cap, **context)
