"""Ask: a question -> a grounded answer (rag.ask) with its numbered citations."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from lakehouse.http.ui.blueprint import attempt, bp, call, form_args, page


@bp.get("/")
def home() -> Response:
    return redirect(url_for("ui.ask"))


@bp.get("/ui/")
def ui_home() -> Response:
    return redirect(url_for("ui.ask"))


@bp.route("/ui/ask", methods=["GET", "POST"])
def ask() -> Any:
    context = {"corpora": call("corpus.list"), "models": call("chat.models")}
    if request.method == "GET":
        return page("ask.html", chosen=[c["name"] for c in context["corpora"]], answer=None, **context)
    chosen = request.form.getlist("corpora")
    args = {**form_args("question", "k", "model"), "corpora": chosen or None}
    answer, error = attempt("rag.ask", args, text_args=True)
    return page("ask.html", "_answer.html", chosen=chosen, answer=answer, error=error,
                question=request.form.get("question", ""), model=request.form.get("model", ""), **context)
