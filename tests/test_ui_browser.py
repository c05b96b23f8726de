"""The web UI in a real browser: headless Chromium (Debian's, installed by .ci/run) driven by Playwright, clicking
and typing as a user would against the app served on loopback over a small staffing lake. Every test fails on
a console error or an uncaught page error, and leaves a screenshot of its tab in tests/artifacts/.

Without Playwright or Chromium these tests skip, saying which is missing; under CI=true they fail instead.
`CHROMIUM=/path/to/chromium` picks another binary.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from http_server import LiveServer
from llm_servers import LLMServer, provider_settings
from ui_lake import IMG, SCRIPT, build_staffing_lake

import lakehouse
from lakehouse.http import create_app

ARTIFACTS = Path(__file__).parent / "artifacts"
# what works here as root, with no network: no sandbox (root), no GPU, nothing fetched or synced in the background
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000  # a busy 2-core machine; expectations return as soon as they hold
COPY_OFFSET = 100_000  # id of the duplicated ("similar") job order = original + this


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; .ci/run installs both)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        _unavailable(f"Chromium is not installed ({executable} not found): apt-get install -y chromium")
    expect.set_options(timeout=TIMEOUT_MS)
    # launch() gives the browser a new, empty profile directory of its own; no browser is ever downloaded
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclasses.dataclass
class World:
    lake: lakehouse.Lake
    url: str
    job: dict[str, Any]  # an open job order with matches, and a copy of it under another id (a similar one)
    hostile_job: int  # a job order whose recorded outcome carries markup


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with LLMServer() as llm:
        lake = build_staffing_lake(tmp_path_factory.mktemp("ui_browser") / "lake", rows=300,
                                   models={"rag": "ollama/m"}, **provider_settings(llm.url))
        try:
            job = next(j for j in lake.ops.call("staffing.job_orders", limit=100)["job_orders"]
                       if j["headcount"] <= 2 and len(lake.matrix_search(**j["search"]).results) >= 3)
            copy = lake.sql("SELECT * REPLACE (id + ? AS id) FROM job_orders WHERE id = ?", [COPY_OFFSET, job["id"]])
            buf = io.BytesIO()
            pq.write_table(copy.to_arrow_table(), buf)
            lake.ingest(buf.getvalue(), "job_orders", mode="append", filename="copy.parquet")
            lake.add_to_corpus("workers", [{"id": "h1", "text": f"Forklift Operator in Joliet, IL. {SCRIPT} {IMG}",
                                            "metadata": {"role": "Forklift Operator", "state": "IL", "city": "Joliet"}}])
            other = next(j for j in lake.ops.call("staffing.job_orders", limit=100)["job_orders"]
                         if j["query"] != job["query"])
            lake.record_playbooks([{"query": other["query"], "corpus": "workers", "answer_id": "h2",
                                    "answer_text": f"{SCRIPT} {IMG}", "outcome": "success", "source": "test"}])
            with LiveServer(create_app(lake)) as url:
                yield World(lake, url, job, other["id"])
        finally:
            lake.close()


@pytest.fixture
def page(browser: Any, world: World) -> Iterator[Any]:
    """A fresh browser context (cookies, localStorage) and page; console errors and page errors fail the test."""
    context = browser.new_context(base_url=world.url, viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    try:
        yield pg
        assert pg.evaluate("typeof window.__pwned") == "undefined", "markup from the data ran as script"
    finally:
        context.close()
    assert problems == []


def shot(page: Any, name: str) -> None:
    """Check the tab's form fields are labelled, then keep a screenshot of it."""
    unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
        "fields => fields.filter(f => !f.labels.length && !f.getAttribute('aria-label')).map(f => f.outerHTML)")
    assert unlabelled == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"))


def mark(page: Any) -> None:
    """A marker a full page load would wipe: `kept(page)` proves a change came in place."""
    page.evaluate("window.__lh_marker = 42")


def kept(page: Any) -> bool:
    return page.evaluate("window.__lh_marker") == 42


def test_ask_answers_in_place_with_citations_that_open(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/ask")
    mark(page)
    page.get_by_label("Question").fill("forklift operator with OSHA-10 in IL")
    for name in ("candidates", "job_orders"):
        page.locator(f"input[name=corpora][value={name}]").uncheck()
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer .badge.model")).to_have_text("ollama/m")
    expect(page.locator("#answer .meta")).to_contain_text("retrieval")
    expect(page.locator("#answer-text")).to_contain_text("Based on the sources")
    assert kept(page)
    mark_link = page.locator("#answer-text a.cite").nth(1)
    n = mark_link.get_attribute("data-cite")
    source = page.locator(f"#cite-{n}")
    expect(source).not_to_have_attribute("open", "")
    mark_link.click()
    expect(source).to_have_attribute("open", "")
    expect(source.locator("td.text")).to_contain_text("years experience")
    shot(page, "ask")


def test_explore_pages_datasets_and_swaps_index_generations(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/explore")
    page.locator("table").first.get_by_role("link", name="workers", exact=True).click()
    expect(page.locator("h1")).to_have_text("workers")
    expect(page.locator("#rows .meta")).to_contain_text("rows 1–50 of 300")
    mark(page)
    page.get_by_role("link", name="next →").click()
    expect(page.locator("#rows .meta")).to_contain_text("rows 51–100 of 300 · page 2 of 6")
    expect(page).to_have_url(re.compile(r"/ui/explore/datasets/workers\?page=2$"))
    assert kept(page)
    shot(page, "explore")

    page.goto("/ui/explore/corpora/candidates")
    expect(page.locator("#active-generation")).to_have_text("generation 1")
    mark(page)
    page.get_by_role("button", name="Rebuild index").click()
    # the page keeps working while the new generation is built and swapped in: search the corpus meanwhile
    page.get_by_label("Search this corpus").fill("forklift operator")
    page.get_by_label("Search this corpus").press("Enter")
    expect(page.locator("#corpus-hits li").first).to_contain_text("candidate")
    expect(page.locator("#active-generation")).to_have_text("generation 2")
    expect(page.locator("#generations .success")).to_contain_text("Rebuilt")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#active-generation")).to_have_text("generation 1")
    page.get_by_role("button", name="Activate generation 2").click()
    expect(page.locator("#active-generation")).to_have_text("generation 2")
    assert kept(page)
    assert world.lake.corpus("candidates")["active_generation"] == 2
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "corpus")


def test_sql_by_keyboard_with_inline_errors_and_history(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/sql")
    for _ in range(20):  # Tab through the skip link and the tabs to the editor
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "sql":
            break
    else:
        pytest.fail("Tab never reached the SQL editor")
    mark(page)
    first = "SELECT role, count(*) AS n FROM workers GROUP BY role ORDER BY n DESC, role"
    page.keyboard.type(first)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#sql-summary")).to_contain_text("rows in")
    expect(page.locator("#sql-summary")).to_contain_text("row cap 200")
    expect(page.locator("#sql-result th").first).to_have_text("role")
    page.keyboard.press("Control+A")
    page.keyboard.type("SELECT * FROM no_such_table")
    page.keyboard.press("Tab")  # on to the row cap, then the Run button: Enter submits
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#sql-result [role=alert]")).to_contain_text("no_such_table does not exist")
    assert kept(page)
    page.reload()
    history = page.locator("#sql-history button")
    expect(history).to_have_count(2)
    expect(history.first).to_have_text("SELECT * FROM no_such_table")
    history.nth(1).click()
    expect(page.locator("#sql")).to_have_value(first)
    expect(page.locator("#sql")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#sql-summary")).to_be_visible()
    shot(page, "sql")


def test_system_tails_update_live(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/system")
    mark(page)
    expect(page.locator("#errors-table")).not_to_contain_text("broken_upload")
    with httpx.Client(base_url=world.url) as http:  # something happens elsewhere: a failed upload over the API
        r = http.post("/ingest", params={"dataset": "broken_upload"},
                      files={"file": ("broken.csv", b"id,name\n1,a\n2,b,c\n3,d\n")})
        assert r.status_code == 400
    world.lake.rebuild_index("job_orders")  # and an index build
    expect(page.locator("#errors-table")).to_contain_text("broken_upload")
    expect(page.locator("#trials-table tbody tr").first).to_contain_text("job_orders")
    ops = page.locator("#ops-table")
    expect(ops.locator("tr", has_text="dataset.ingest").filter(has_text="http").first).to_be_visible()
    expect(ops).not_to_contain_text("observer.ops")  # the page's own polling is left out
    expect(page.locator("#stats-table")).to_contain_text("corpus.rebuild")
    assert kept(page)
    shot(page, "system")


def test_console_outcomes_change_the_next_expansion(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    job = world.job
    page.goto(f"/console?state={job['state']}")
    card, similar = page.locator(f"#job-{job['id']}"), page.locator(f"#job-{job['id'] + COPY_OFFSET}")
    expect(card.locator(".role")).to_have_text(job["role"])
    meter = card.locator("meter")
    before = meter.get_attribute("value")
    mark(page)
    card.locator("summary").click()
    hits = card.locator("tr.hit")
    expect(hits.first).to_be_visible()
    assert set(hits.evaluate_all("rows => rows.map(r => r.dataset.corpus)")) <= {"workers", "candidates"}
    last = hits.last
    corpus, answer = last.get_attribute("data-corpus"), last.get_attribute("data-id")
    last.get_by_role("button", name="this match worked").click()
    expect(card.locator(".success")).to_contain_text("Recorded")
    expect(hits.first).to_have_attribute("data-id", answer)  # a success for this job order ranks first
    expect(hits.first).to_have_class(re.compile(r"\bplaybook\b"))
    expect(hits.first.locator(".badge.pb")).to_have_text("playbook")
    expect(meter).not_to_have_attribute("value", before or "")
    assert float(meter.get_attribute("value")) > float(before)
    # the same job order under another id: its next expansion carries the recorded outcome
    similar.locator("summary").click()
    boosted = similar.locator(f'tr.hit[data-corpus="{corpus}"][data-id="{answer}"]')
    expect(boosted).to_have_class(re.compile(r"\bplaybook\b"))
    expect(boosted.locator("small")).to_contain_text("worked for")
    # and a match that did not work drops
    second = similar.locator("tr.hit").nth(1)
    dropped = second.get_attribute("data-id")
    second.get_by_role("button", name="this match didn't work").click()
    expect(similar.locator(".success")).to_contain_text("did not work")
    expect(similar.locator("tr.hit").nth(1)).not_to_have_attribute("data-id", dropped or "")
    assert kept(page)
    similar.evaluate("card => card.scrollIntoView()")
    shot(page, "console")


def test_upload_with_progress_and_errors_in_place(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/upload")
    mark(page)
    page.get_by_label("File").set_input_files(
        files=[{"name": "crew.csv", "mimeType": "text/csv", "buffer": b"id,name,role\n1,Ann,Welder\n2,Bo,Welder\n3,Cy,Cook\n"}])
    page.get_by_label("Dataset").fill("crew")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-ok")).to_contain_text("Ingested 3 rows into crew")
    expect(page.locator("#upload-progress")).to_have_js_property("value", 1)
    assert world.lake.dataset("crew")["rows"] == 3
    page.get_by_label("File").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"id,name\n1,a\n2,b,c\n3,d\n"}])
    page.get_by_label("Dataset").fill("crew_bad")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-result [role=alert]")).to_contain_text("line 3")
    assert kept(page)
    assert "crew_bad" not in {d["name"] for d in world.lake.datasets()}
    shot(page, "upload")


def test_markup_in_the_data_renders_as_text(page: Any, world: World) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/explore/datasets/hostile")
    expect(page.locator("td", has_text=SCRIPT)).to_be_visible()
    expect(page.locator("td", has_text=IMG)).to_be_visible()
    assert page.locator("#rows img").count() == 0
    page.goto("/ui/ask")
    page.get_by_label("Question").fill("Forklift Operator in Joliet, IL")
    for name in ("candidates", "job_orders"):
        page.locator(f"input[name=corpora][value={name}]").uncheck()
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer-text")).to_contain_text(SCRIPT)  # the model quoted the row back
    expect(page.locator("#answer .citations")).to_contain_text(IMG)
    assert page.locator("#answer img, #answer script").count() == 0
    page.goto(f"/console/jobs/{world.hostile_job}")
    expect(page.locator(".history-list")).to_contain_text(SCRIPT)  # a recorded playbook answer
    assert page.locator(".history-list img").count() == 0
    shot(page, "hostile")


def test_reading_works_without_javascript(browser: Any, world: World) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(base_url=world.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/ui/explore/datasets/workers")
        page.get_by_role("link", name="next →").click()
        expect(page.locator("#rows .meta")).to_contain_text("rows 51–100 of 300")
        page.goto(f"/console?state={world.job['state']}")
        card = page.locator(f"#job-{world.job['id']}")
        expect(card.locator("meter")).to_be_visible()
        card.locator("summary").click()  # <details> opens natively; the link inside leads to the matches
        card.get_by_role("link", name=f"Open the matches for job order {world.job['id']}").click()
        expect(page.locator("tr.hit").first).to_be_visible()
        page.goto("/ui/system")
        expect(page.locator("#trials-table")).to_contain_text("workers")
    finally:
        context.close()
