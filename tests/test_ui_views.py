"""The web UI over HTTP, without a browser: pages readable without JavaScript, CSRF on every POST, escaping,
errors shown in place, every view an adapter recorded with origin `ui`. (tests/test_ui_browser.py clicks.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer, break_op, routes_without_cases
from ui_lake import IMG, SCRIPT, staffing_fixture  # noqa: F401

import lakehouse
from lakehouse.http import create_app

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def url(staffing: lakehouse.Lake) -> Iterator[str]:
    with LiveServer(create_app(staffing)) as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    """A browser-like client: it keeps cookies, so the form token it reads matches its session."""
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client


def token(http: httpx.Client, path: str = "/ui/sql") -> str:
    found = TOKEN.search(http.get(path).text)
    assert found, "no form token on the page"
    return found.group(1)


def _ui_records(lake: lakehouse.Lake, op: str) -> list[dict]:
    return [o.to_dict() for o in lake.observer.ops if o.op == op and o.origin == "ui"]


@pytest.mark.parametrize("path", ["/ui/ask", "/ui/explore", "/ui/explore/datasets/workers",
                                  "/ui/explore/corpora/workers", "/ui/sql", "/ui/system", "/console", "/ui/upload"])
def test_every_tab_is_a_page_readable_without_javascript(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'aria-current="page"' in r.text and "<main" in r.text
    assert "Content-Security-Policy" in r.headers and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_pages_hold_their_data_in_the_html(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    console = http.get("/console").text
    first = staffing.ops.call("staffing.job_orders", limit=1)["job_orders"][0]
    assert f'id="job-{first["id"]}"' in console and "<meter" in console and first["client"] in console
    rows = http.get("/ui/explore/datasets/workers", params={"page": 2}).text
    assert "rows 51–100 of 200" in rows
    corpus = http.get("/ui/explore/corpora/workers").text
    assert 'id="active-generation">generation 1<' in corpus
    system = http.get("/ui/system").text
    assert "workers" in system and "build" in system  # the HNSW trial of the corpus build


def test_root_leads_to_the_ui(http: httpx.Client) -> None:
    r = http.get("/")
    assert r.status_code == 302 and r.headers["location"] == "/ui/ask"


def test_views_call_operations_as_origin_ui(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    before = len(_ui_records(staffing, "sql.query"))
    r = http.post("/ui/sql", data={"sql": "SELECT count(*) AS n FROM workers", "csrf_token": token(http)})
    assert r.status_code == 200 and ">200<" in r.text
    assert len(_ui_records(staffing, "sql.query")) == before + 1
    http.get("/console")
    assert _ui_records(staffing, "staffing.job_orders") and _ui_records(staffing, "staffing.fill_probability")


def test_a_post_without_a_valid_token_is_refused(http: httpx.Client, url: str) -> None:
    good = token(http)
    form = {"sql": "SELECT 1"}
    assert http.post("/ui/sql", data={**form, "csrf_token": good}).status_code == 200
    assert http.post("/ui/sql", data=form).status_code == 403
    assert http.post("/ui/sql", data={**form, "csrf_token": "0" * 64}).status_code == 403
    assert http.post("/ui/sql", data=form, headers={"X-CSRF-Token": good}).status_code == 200  # HTMX sends a header
    with httpx.Client(base_url=url) as stranger:  # another browser: its own cookie, so this token is not its
        token(stranger)
        r = stranger.post("/ui/sql", data={**form, "csrf_token": good})
        assert r.status_code == 403 and "csrf_failed" in r.text
    with httpx.Client(base_url=url) as fresh:  # no cookie at all
        assert fresh.post("/ui/sql", data={**form, "csrf_token": good}).status_code == 403


def test_the_cookie_is_strict_and_http_only(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        cookie = client.get("/ui/ask").headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie and "path=/" in cookie


def test_cross_site_and_foreign_host_posts_are_refused_even_with_a_token(http: httpx.Client) -> None:
    good = token(http)
    form = {"sql": "SELECT 1", "csrf_token": good}
    assert http.post("/ui/sql", data=form, headers={"Origin": "https://evil.example"}).status_code == 403
    assert http.post("/ui/sql", data=form, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert http.post("/ui/sql", data=form, headers={"Host": "evil.example"}).status_code == 403
    # the JSON API still refuses a form post: the UI's routes are the only form-encoded ones
    assert http.post("/sql", data={"sql": "SELECT 1"}).status_code == 415


def test_hostile_cells_render_as_text(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    page = http.get("/ui/explore/datasets/hostile").text
    assert SCRIPT not in page and IMG not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    r = http.post("/ui/sql", data={"sql": "SELECT note FROM hostile", "csrf_token": token(http)})
    assert "&lt;script&gt;" in r.text and SCRIPT not in r.text


def test_an_sql_error_shows_duckdbs_message_in_place(http: httpx.Client) -> None:
    form = {"sql": "SELECT * FROM no_such_table", "csrf_token": token(http)}
    fragment = http.post("/ui/sql", data=form, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and fragment.headers["X-Lakehouse-Error"] == "sql_catalog"
    assert 'role="alert"' in fragment.text and "no_such_table does not exist" in fragment.text
    assert "<html" not in fragment.text  # only the result panel
    whole = http.post("/ui/sql", data=form)
    assert whole.status_code == 422 and "<html" in whole.text and "no_such_table does not exist" in whole.text
    write = http.post("/ui/sql", data={**form, "sql": "DROP TABLE workers"}, headers={"HX-Request": "true"})
    assert write.headers["X-Lakehouse-Error"] == "statement_not_allowed"


def test_sql_rows_are_capped_and_the_cap_is_shown(http: httpx.Client) -> None:
    r = http.post("/ui/sql", data={"sql": "SELECT * FROM workers", "max_rows": "7", "csrf_token": token(http)},
                  headers={"HX-Request": "true"})
    assert "7 rows in" in r.text and "row cap 7" in r.text and "capped: more rows exist" in r.text
    assert r.text.count("<tr>") == 8  # the header and seven rows


def test_ask_without_a_model_answers_extractively_and_says_so(http: httpx.Client) -> None:
    r = http.post("/ui/ask", data={"question": "forklift operator in IL", "corpora": ["workers"], "k": "4",
                                   "csrf_token": token(http, "/ui/ask")}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "extractive fallback" in r.text and "retrieval " in r.text
    assert r.text.count('<details id="cite-') == 4 and 'href="#cite-1"' in r.text
    missing = http.post("/ui/ask", data={"question": "  ", "csrf_token": token(http, "/ui/ask")},
                        headers={"HX-Request": "true"})
    assert missing.headers["X-Lakehouse-Error"] == "missing_field" and "question" in missing.text


def test_upload_ingests_and_shows_errors_in_place(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    tok = token(http, "/ui/upload")
    ok = http.post("/ui/upload", data={"dataset": "uploaded", "csrf_token": tok}, headers={"HX-Request": "true"},
                   files={"file": ("people.csv", b"id,name\n1,Ann\n2,Bob\n", "text/csv")})
    assert ok.status_code == 200 and "Ingested 2 rows into" in ok.text
    assert staffing.dataset("uploaded")["rows"] == 2
    assert _ui_records(staffing, "dataset.ingest")
    ragged = http.post("/ui/upload", data={"dataset": "ragged", "csrf_token": tok}, headers={"HX-Request": "true"},
                       files={"file": ("bad.csv", b"id,name\n1,a\n2,b,c\n3,d\n", "text/csv")})
    assert ragged.headers["X-Lakehouse-Error"] and "line 3" in ragged.text and 'role="alert"' in ragged.text
    assert "ragged" not in {d["name"] for d in staffing.datasets()}
    nofile = http.post("/ui/upload", data={"dataset": "x", "csrf_token": tok}, headers={"HX-Request": "true"})
    assert "choose a file" in nofile.text


def test_rebuild_and_rollback_without_javascript_redirect_back(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    tok = token(http, "/ui/explore/corpora/job_orders")
    r = http.post("/ui/explore/corpora/job_orders/rebuild", data={"csrf_token": tok})
    assert r.status_code == 303 and r.headers["location"] == "/ui/explore/corpora/job_orders"
    assert staffing.corpus("job_orders")["active_generation"] == 2
    back = http.post("/ui/explore/corpora/job_orders/rollback", data={"csrf_token": tok, "generation": "1"},
                     headers={"HX-Request": "true"})
    assert back.status_code == 200 and 'id="active-generation">generation 1<' in back.text
    bad = http.post("/ui/explore/corpora/job_orders/rollback", data={"csrf_token": tok, "generation": "99"},
                    headers={"HX-Request": "true"})
    assert bad.headers["X-Lakehouse-Error"] and 'role="alert"' in bad.text


def test_a_recorded_outcome_changes_the_next_search(http: httpx.Client, staffing: lakehouse.Lake) -> None:
    job = next(j for j in staffing.ops.call("staffing.job_orders", limit=100)["job_orders"]
               if len(staffing.matrix_search(**j["search"]).results) >= 2)
    hits = staffing.matrix_search(**job["search"]).results
    last = hits[-1]
    tok = token(http, f"/console/jobs/{job['id']}")
    r = http.post(f"/console/jobs/{job['id']}/outcome", headers={"HX-Request": "true"},
                  data={"csrf_token": tok, "corpus": last.corpus, "answer_id": last.id, "outcome": "success"})
    assert r.status_code == 200 and "Recorded:" in r.text
    first_row = re.search(r'<tr class="hit[^"]*" data-corpus="([^"]+)" data-id="([^"]+)"', r.text)
    assert first_row.groups() == (last.corpus, last.id)  # a success for this very job order ranks first
    assert 'class="hit playbook"' in r.text and 'hx-swap-oob="true"' in r.text  # and the fill bar is refreshed
    recorded = [e for e in staffing.playbook_lookup(job["query"], 20)["results"] if e["source"] == "ui:console"]
    assert recorded and recorded[0]["answer_id"] == last.id
    assert _ui_records(staffing, "playbook.record")
    bad = http.post(f"/console/jobs/{job['id']}/outcome", headers={"HX-Request": "true"},
                    data={"csrf_token": tok, "corpus": last.corpus, "answer_id": last.id, "outcome": "maybe"})
    assert "outcome" in bad.text and 'role="alert"' in bad.text
    assert http.get("/console/jobs/999999").status_code == 404


def test_ops_panel_hides_the_ui_unless_asked(http: httpx.Client) -> None:
    http.get("/ui/system/stats")
    hidden = http.get("/ui/system/ops", headers={"HX-Request": "true"}).text
    shown = http.get("/ui/system/ops", params={"show_ui": "1"}, headers={"HX-Request": "true"}).text
    assert "<td>ui</td>" not in hidden and "<td>ui</td>" in shown
    assert http.get("/ui/system/nope").status_code == 404


def test_unknown_dataset_page_is_a_404_page(http: httpx.Client) -> None:
    r = http.get("/ui/explore/datasets/nope")
    assert r.status_code == 404 and "no dataset named" in r.text and "<html" in r.text


def test_static_assets_are_served_locally(http: httpx.Client) -> None:
    js = http.get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]
    assert http.get("/static/ui.css").status_code == 200
    page = http.get("/ui/ask").text
    assert "//" not in re.sub(r'(href|src)="/', "", " ".join(re.findall(r'(?:href|src)="[^"]*"', page)))


def test_upload_larger_than_the_limit_is_an_html_413(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash", max_upload_mb=1) as lk, \
            LiveServer(create_app(lk)) as base, httpx.Client(base_url=base) as client:
        tok = token(client, "/ui/upload")
        r = client.post("/ui/upload", data={"dataset": "big", "csrf_token": tok},
                        files={"file": ("big.csv", b"a\n" + b"1\n" * 700_000, "text/csv")})
        assert r.status_code == 413 and "max_upload_mb" in r.text and "<html" in r.text


def test_an_empty_lake_renders_every_tab(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk, LiveServer(create_app(lk)) as base, \
            httpx.Client(base_url=base) as client:
        for path in ("/ui/ask", "/ui/explore", "/ui/sql", "/ui/system", "/ui/upload"):
            assert client.get(path).status_code == 200, path
        console = client.get("/console")
        assert console.status_code == 404 and "lakehouse demo" in console.text and "<html" in console.text
        asked = client.post("/ui/ask", data={"question": "anyone?", "csrf_token": token(client, "/ui/ask")},
                            headers={"HX-Request": "true"})
        assert asked.headers["X-Lakehouse-Error"] == "no_corpora"


# Each UI route's failure modes (a POST without a token, an unknown name in the URL, an operation that breaks):
# an HTML page or fragment with the error in an alert, never a traceback. test_every_ui_route_has_a_failure_case
# keeps the table complete, as tests/test_error_shape.py does for the JSON routes.
UI_CASES = [
    pytest.param("POST", "/", 405, None, id="home-wrong-method"),
    pytest.param("POST", "/ui/", 405, None, id="ui-home-wrong-method"),
    pytest.param("POST", "/ui/ask", 403, None, id="ask-no-token"),
    pytest.param("GET", "/ui/ask", 500, "corpus.list", id="ask-internal"),
    pytest.param("GET", "/ui/explore", 500, "dataset.list", id="explore-internal"),
    pytest.param("GET", "/ui/explore/datasets/nope", 404, None, id="dataset-unknown"),
    pytest.param("GET", "/ui/explore/datasets/Bad-Name", 400, None, id="dataset-bad-name"),
    pytest.param("GET", "/ui/explore/corpora/nope", 404, None, id="corpus-unknown"),
    pytest.param("GET", "/ui/explore/corpora/nope/search?q=x", 404, None, id="corpus-search-unknown"),
    pytest.param("POST", "/ui/explore/corpora/workers/rebuild", 403, None, id="rebuild-no-token"),
    pytest.param("POST", "/ui/explore/corpora/workers/rollback", 403, None, id="rollback-no-token"),
    pytest.param("POST", "/ui/sql", 403, None, id="sql-no-token"),
    pytest.param("GET", "/ui/system", 500, "observer.stats", id="system-internal"),
    pytest.param("GET", "/ui/system/nope", 404, None, id="system-panel-unknown"),
    pytest.param("GET", "/console", 500, "staffing.fill_probability", id="console-internal"),
    pytest.param("GET", "/console/jobs/999999", 404, None, id="job-unknown"),
    pytest.param("POST", "/console/jobs/1/outcome", 403, None, id="outcome-no-token"),
    pytest.param("POST", "/ui/upload", 403, None, id="upload-no-token"),
]


@pytest.mark.parametrize(("method", "path", "status", "boom"), UI_CASES)
def test_ui_failures_are_pages_with_the_error(method: str, path: str, status: int, boom: str | None, url: str,
                                              staffing: lakehouse.Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    if boom:  # the operation raises RuntimeError("secret detail")
        break_op(monkeypatch, staffing, boom)
    with httpx.Client(base_url=url, timeout=60) as client:
        token(client)  # a browser with a session, whose POST lacks the form's token
        r = client.request(method, path)
    assert r.status_code == status, r.text
    assert "secret detail" not in r.text and "Traceback" not in r.text
    if r.headers["content-type"].startswith("text/html"):
        assert 'role="alert"' in r.text and "<html" in r.text
    else:  # a method no UI route has: routing failed before the UI, so the API's JSON error answers
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_every_ui_route_has_a_failure_case() -> None:
    # the two redirects to the Ask tab can only be asked with the wrong method
    missing = routes_without_cases([tuple(c.values[:2]) for c in UI_CASES], lambda e: e.startswith("ui."),
                                   refused_covers=True)
    assert not missing, f"UI routes without a failure case: {missing}"
