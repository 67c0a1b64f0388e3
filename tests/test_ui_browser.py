"""The app in a real headless chromium: a cited comparison, hostile abstracts rendered inert, an upload on the corpus page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.models import Paper
from tests.conftest import ROOT, free_port, make_settings, wait_for_port
from tests.ui_corpus import LITERAL_SHOWN, LITERAL_TITLE, PAPERS, planted_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MAP_MARKS = "g.mark-symbol.role-mark path"  # one SVG path per paper (legend symbols are role-legend-symbol)
TIMEOUT_MS = 300_000  # two busy cores: a first answer loads the model and the BM25 index
HOSTILE_ABSTRACT = (
    "We present Zorblax, a hostile benchmark for rendering safety in paper assistants. "
    'Zorblax abstracts embed active content such as <script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2"> '
    "to test escaping. "
    "They also carry a [javascript link](javascript:window.__pwned=3) and a markdown image ![x](http://127.0.0.1:1/x.png) "
    "that must never load. "
    "Zorblax shows that escaping every title and abstract keeps the chat interface inert."
)
PLANTED = Paper(
    id="zorblax-hostile",
    title="Zorblax: *Hostile* <b>Abstracts</b> for [Rendering] Safety",
    abstract=HOSTILE_ABSTRACT,
    authors=("Mallory Example",),
    year=2024,
    url="javascript:window.__pwned=4",
)
UPLOAD = [
    {
        "title": "Quokka Retrieval: Hybrid Search for Marsupial Field Notes",
        "abstract": "Quokka Retrieval indexes field notes. It fuses BM25 and dense search.",
    },
    {
        "title": "Wombat Citations: Checking Claims Against Abstracts",
        "abstract": "Wombat Citations verifies each sentence. It flags unsupported claims.",
    },
]


@pytest.fixture
def app_url(tmp_path: Path, sample_dir: Path, embedder: Any, output_dir: Path) -> Iterator[str]:
    """`streamlit run ui/app.py` over a copy of the sample store with the hostile paper planted in it."""
    from ingest.loaders import LoadReport
    from ingest.pipeline import ingest_report

    # A copy: uploads and the planted papers must not reach the session's sample store.
    store = planted_store(tmp_path / "store", sample_dir, embedder)
    ingest_report(make_settings(store), LoadReport(papers=[PLANTED]), embedder=embedder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    env.update(
        ASSISTANT_CHROMA_PATH=str(store / "chroma"),
        ASSISTANT_INDEX_DIR=str(store / "index"),
        ASSISTANT_FEEDBACK_PATH=str(tmp_path / "feedback.jsonl"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    log_path = output_dir / "ui-browser-streamlit.log"
    with log_path.open("wb") as log:
        # The working folder is empty, so no developer .env leaks into the run.
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, 120, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert "Traceback" not in log_path.read_text(errors="replace"), f"the app logged a traceback; see {log_path}"


def _screenshot(page: Any, path: Path) -> None:
    """The whole page: the viewport is stretched to the tallest scrolling element first."""
    tallest = "Math.max(...[document.scrollingElement, ...document.querySelectorAll('section,div')].map(e => e.scrollHeight))"
    height = page.evaluate(tallest)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 120, 8000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def _ask(page: Any, question: str, answers: int) -> Any:
    """Type a question, press Enter and wait until answer number `answers` has its feedback widget (it is complete)."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(2 * answers - 1)
    # The answer's own feedback widget: while the page reruns, an earlier answer's widget can show twice.
    answer.get_by_test_id("stFeedback").wait_for(state="visible", timeout=TIMEOUT_MS)
    return answer


def _map_marks(scope: Any, papers: int) -> int:
    """Wait for a map in `scope` to draw at least `papers` points and return how many it drew."""
    chart = scope.get_by_test_id("stVegaLiteChart").last
    chart.scroll_into_view_if_needed()
    chart.locator(MAP_MARKS).nth(papers - 1).wait_for(state="attached", timeout=TIMEOUT_MS)
    return int(chart.locator(MAP_MARKS).count())


def test_chat_and_corpus_pages_in_chromium(app_url: str, tmp_path: Path, output_dir: Path) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing; run `make browser` (or `make test`, which installs it)", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            fetched: list[str] = []
            page.on("request", lambda req: fetched.append(req.url))
            page.goto(app_url)
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=TIMEOUT_MS)

            # A comparison, asked at once: the model and the indexes were loaded while the page showed a spinner.
            answer = _ask(page, "How do CoGEX and Think-and-Execute use pseudo-code differently?", 1)
            # How soon it comes is measured by `python -m assistant bench` (first answer in chromium), not here: tests
            # never time things (4.2 s with another measurement running on the same two cores, under 2 s on idle ones).
            text = answer.inner_text()
            assert re.search(r"\[1\]", text) and "[2]" in text, text[:500]
            assert "mode: compare" in text
            sources = answer.locator("[class*='st-key-sources-']")
            expect(sources).to_contain_text("[1]")
            assert sources.locator(".stMarkdownColoredBackground").count() >= 1, "cited sentences are highlighted"
            # Both papers are cited: CoGEX's and Think-and-Execute's ("Language Models as Compilers").
            assert "CoGEX" in text and "Language Models as Compilers" in sources.inner_text()
            # One card per paper, side by side, in place of a five-column table.
            cards = answer.locator("[class*='st-key-comparison-'] [data-testid='stColumn']")
            assert cards.count() == 2 and answer.locator("table").count() == 0
            boxes = [cards.nth(i).bounding_box() for i in range(2)]
            assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 2, "the cards sit side by side"
            answer.locator("[class*='st-key-comparison-']").screenshot(path=str(output_dir / "ui-compare.png"))

            # The answer's map: every paper, the cited ones drawn larger.
            answer.get_by_text("Where these papers sit in the collection").click()
            assert _map_marks(answer, PAPERS + 1) >= PAPERS + 1

            # The planted abstract: its Markdown, LaTeX and HTML characters show as written in every place.
            literal = _ask(page, "Compare Zygomorph and Quasar Prism", 2)
            shown = literal.inner_text()
            cards_text = literal.locator("[class*='st-key-comparison-']").inner_text()
            assert LITERAL_TITLE in cards_text, cards_text
            assert LITERAL_TITLE in literal.locator("[class*='st-key-sources-']").inner_text()
            for part in LITERAL_SHOWN:
                assert part in shown, part
            assert 'T\\"ulu' not in shown and "\\%" not in shown and "$\\alpha$" not in shown
            assert literal.locator(".katex, mjx-container").count() == 0, "no `$` pair became math"

            # The planted paper: every piece of active content shows as text and does nothing.
            hostile = _ask(page, "What does Zorblax show about escaping titles and abstracts in chat interfaces?", 3)
            shown = hostile.inner_text()
            assert "<script>window.__pwned=1</script>" in shown
            assert '<img src=x onerror="window.__pwned=2">' in shown
            assert "![x](" in shown and "(javascript:window.__pwned=3)" in shown
            assert "Zorblax: *Hostile* <b>Abstracts</b> for [Rendering] Safety" in shown
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator("img[onerror]").count() == 0
            assert page.locator("img[src*='127.0.0.1:1']").count() == 0
            assert page.locator("a[href^='javascript:' i]").count() == 0
            assert not page.evaluate("[...document.scripts].some(s => s.textContent.includes('__pwned'))")
            assert not [u for u in fetched if u.startswith("http://127.0.0.1:1/")], "the markdown image was fetched"
            _screenshot(page, output_dir / "ui-chat.png")

            # The corpus page: upload a small JSONL and watch the paper count rise.
            page.get_by_test_id("stSidebarNav").get_by_text("Corpus").click()
            count = page.get_by_test_id("stMetricValue").first
            expect(count).to_have_text(str(PAPERS + 1), timeout=TIMEOUT_MS)
            corpus_map = page.get_by_test_id("stVegaLiteChart").first
            assert _map_marks(page, PAPERS + 1) == PAPERS + 1, "one point per paper on the corpus map"
            corpus_map.screenshot(path=str(output_dir / "ui-corpus-map.png"))
            upload = tmp_path / "new-papers.jsonl"
            upload.write_text("".join(json.dumps(p) + "\n" for p in UPLOAD), encoding="utf-8")
            page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(upload))
            ingest = page.get_by_role("button", name="Ingest", exact=True)
            expect(ingest).to_be_enabled(timeout=TIMEOUT_MS)
            ingest.click()
            expect(count).to_have_text(str(PAPERS + 3), timeout=TIMEOUT_MS)
            expect(page.get_by_test_id("stAlert").first).to_contain_text("2 added", timeout=TIMEOUT_MS)
            page.get_by_label("Title contains").fill("Wombat")
            page.get_by_label("Title contains").press("Enter")
            expect(page.get_by_test_id("stExpander").first).to_contain_text("Wombat Citations", timeout=TIMEOUT_MS)
            _screenshot(page, output_dir / "ui-corpus.png")
            assert not page_errors, page_errors
        finally:
            browser.close()
