"""Explore: datasets and corpora page by page; a corpus's index generations with rebuild and roll back."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from lakehouse.http.ui.blueprint import attempt, bp, call, form_args, is_fragment, page
from lakehouse.http.ui.render import page_number

PAGE = 50


@bp.get("/ui/explore")
def explore() -> Any:
    return page("explore.html", datasets=call("dataset.list"), corpora=call("corpus.list"))


@bp.get("/ui/explore/datasets/<name>")
def dataset(name: str) -> Any:
    offset = (page_number() - 1) * PAGE
    rows = call("dataset.rows", name=name, offset=offset, limit=PAGE)
    if is_fragment():  # the pager: only the rows change
        return page("_rows.html", "_rows.html", rows=rows, base=url_for("ui.dataset", name=name))
    return page("dataset.html", info=call("dataset.describe", name=name), rows=rows,
                base=url_for("ui.dataset", name=name))


@bp.get("/ui/explore/corpora/<name>")
def corpus(name: str) -> Any:
    offset = (page_number() - 1) * PAGE
    rows = call("corpus.rows", name=name, offset=offset, limit=PAGE)
    if is_fragment():
        return page("_rows.html", "_rows.html", rows=rows, base=url_for("ui.corpus", name=name))
    return page("corpus.html", info=call("corpus.describe", name=name), rows=rows,
                base=url_for("ui.corpus", name=name), hits=None)


@bp.get("/ui/explore/corpora/<name>/search")
def corpus_search(name: str) -> Any:
    """A quick search of this corpus: the index keeps answering while a new generation is built and swapped."""
    query = request.args.get("q", "")
    found, error = attempt("vectors.search", corpus=name, query=query, k=10, with_rows=True)
    return page("corpus_search.html", "_corpus_hits.html", name=name, q=query, error=error,
                hits=found["results"] if found else None)


@bp.post("/ui/explore/corpora/<name>/rebuild")
def rebuild(name: str) -> Any:
    return _generations(name, "corpus.rebuild", {})


@bp.post("/ui/explore/corpora/<name>/rollback")
def rollback(name: str) -> Any:
    return _generations(name, "corpus.rollback", form_args("generation"))


def _generations(name: str, op: str, args: dict[str, Any]) -> Any:
    done, error = attempt(op, args, text_args=True, name=name)
    if is_fragment():
        return page("_generations.html", "_generations.html", info=call("corpus.describe", name=name), done=done,
                    error=error, op=op)
    if error is None:  # without JavaScript: back to the corpus page (post/redirect/get)
        return redirect(url_for("ui.corpus", name=name), code=303)
    return page("corpus.html", info=call("corpus.describe", name=name), done=None, error=error, op=op,
                rows=call("corpus.rows", name=name, limit=PAGE), base=url_for("ui.corpus", name=name), hits=None)
