"""Exports and the answer view: unsupported claims flagged where they are made, hostile sources and text inert."""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from assistant.answering.citations import check_citations
from assistant.answering.extractive import compose_compare
from assistant.models import Answer, Evidence, Sentence
from assistant.output.render import UNSUPPORTED_MARK, inert_markdown, mark_unsupported, to_bibtex, to_markdown

HOSTILE = Evidence(
    paper_id="zorblax",
    title="Zorblax: *Hostile* <b>Abstracts</b> for [Rendering] Safety",
    abstract=(
        "Zorblax embeds <script>window.__pwned=1</script> in abstracts. "
        "It carries a [javascript link](javascript:window.__pwned=3) and an image ![x](http://127.0.0.1:1/x.png)."
    ),
    score=0.9,
    sentences=(Sentence("Zorblax embeds <script>window.__pwned=1</script> in abstracts.", 0, 62),),
    year=2024,
    authors=("Mallory Example",),
    url="javascript:window.__pwned=4",
)
SAFE = Evidence(
    paper_id="quokka",
    title="Quokka Retrieval",
    abstract="Quokka Retrieval fuses BM25 and dense search over field notes.",
    score=0.8,
    sentences=(Sentence("Quokka Retrieval fuses BM25 and dense search over field notes.", 0, 62),),
    year=2023,
    url="https://example.org/quokka (v2)",
)
# What an LLM that copied the hostile abstract could write, plus one claim no source backs.
LLM_TEXT = (
    "Quokka Retrieval fuses BM25 and dense search over field notes [2]. "
    'Zorblax embeds <script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2"> [1]. '
    "See ![x](http://127.0.0.1:1/x.png), [click](javascript:window.__pwned=3) and <javascript:window.__pwned=5>. "
    "The trial enrolled four thousand patients across twelve hospitals in 2025.\n\n"
    "[2]: javascript:window.__pwned=6\n"
)


def _answer(embedder: Any) -> Answer:
    evidence = (HOSTILE, SAFE)
    checked = check_citations(LLM_TEXT, evidence, embedder, 0.45)
    return Answer(
        question="What does <i>Zorblax</i> do?",
        standalone_question="What does Zorblax do?",
        mode="ask",
        text=checked.text,
        citations=checked.citations,
        evidence=evidence,
        unsupported=checked.unsupported,
        unsupported_spans=checked.unsupported_spans,
    )


def _html(markdown: str) -> str:
    """What a permissive CommonMark renderer (raw HTML allowed) makes of the Markdown."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def _assert_inert(html: str) -> None:
    assert "<script" not in html and "<img" not in html and "onerror" not in html.replace("onerror=&quot;", "")
    assert not re.search(r"""href=["']?\s*javascript:""", html, re.IGNORECASE)
    assert not re.search(r"<a [^>]*href=[^>]*__pwned", html)


def test_spans_point_at_the_unsupported_claims(embedder: Any) -> None:
    answer = _answer(embedder)
    assert any("four thousand patients" in s for s in answer.unsupported)
    assert len(answer.unsupported_spans) == len(answer.unsupported)
    for (start, end), plain in zip(answer.unsupported_spans, answer.unsupported, strict=True):
        words = re.findall(r"[A-Za-z]{3,}", plain)[:3]
        assert words and all(w in answer.text[start:end] for w in words), (plain, answer.text[start:end])
    marked = mark_unsupported(answer.text, answer.unsupported_spans)
    claim = marked.index("four thousand patients")
    assert marked.index(UNSUPPORTED_MARK, claim) < marked.index("\n", claim)  # flagged in place, same line
    assert "field notes [2]. Zorblax" in marked  # the supported claim is left alone


def test_mark_unsupported_ignores_spans_outside_the_text() -> None:
    assert mark_unsupported("A claim. B claim.", ((0, 8), (40, 50), (5, 2))) == "A claim." + UNSUPPORTED_MARK + " B claim."


def test_markdown_export_flags_claims_and_stays_inert(embedder: Any) -> None:
    text = to_markdown(_answer(embedder))
    assert "across twelve hospitals in 2025." + UNSUPPORTED_MARK in text
    assert "<https://example.org/quokka%20%28v2%29>" in text  # an http(s) source link is kept, encoded
    html = _html(text)
    _assert_inert(html)
    assert "&lt;script&gt;" in html  # shown as text, not dropped
    assert '<a href="https://example.org/quokka%20%28v2%29">' in html


def test_inert_markdown_keeps_formatting_and_web_links() -> None:
    html = _html(inert_markdown("**Bold** claim [1] with [a link](https://example.org) and `code`."))
    assert "<strong>Bold</strong>" in html and '<a href="https://example.org">a link</a>' in html and "<code>code</code>" in html


def test_bibtex_drops_non_web_urls(embedder: Any) -> None:
    bib = to_bibtex(_answer(embedder))
    assert "javascript" not in bib and "__pwned" not in bib
    assert "url = {https://example.org/quokka\\%20\\%28v2\\%29}" in bib  # % escaped for BibTeX
    assert "<b>" in bib or "Abstracts" in bib  # titles kept as (escaped) text


def _view_script() -> None:
    """Renders one checked answer the way the chat page does (AppTest runs this function's body as the script)."""
    import streamlit as st

    from ui.components import render_answer

    render_answer(st.session_state["answer"], "k")


def test_app_flags_the_unsupported_claim_in_the_answer(embedder: Any) -> None:
    at = AppTest.from_function(_view_script, default_timeout=60)
    at.session_state["answer"] = _answer(embedder)
    at.run()
    assert not at.exception
    body = next(m.value for m in at.markdown if "four thousand patients" in m.value)
    assert re.search(r"twelve hospitals in 2025\. :orange-badge\[⚠ not supported", body)
    assert "field notes [2]. Zorblax" in body


def test_markdown_export_says_when_the_answer_was_cut(embedder: Any) -> None:
    from dataclasses import replace

    cut = replace(_answer(embedder), error="the LLM endpoint dropped the connection mid-answer", incomplete=True)
    text = to_markdown(cut)
    assert "**Answer incomplete:** the LLM endpoint dropped the connection mid-answer" in text
    assert "Answer incomplete" not in to_markdown(_answer(embedder))


def test_a_sentence_answering_several_columns_is_one_quote() -> None:
    sentence = Sentence("We propose B4, a strategy that scores code with tests.", 0, 55, 0.9)
    ev = Evidence("p1", "B4", sentence.text, 1.0, (sentence,), best=0.9)
    _, citations = compose_compare([(ev, {"method": sentence, "data": sentence, "result": None})])
    assert citations[0].quotes == (sentence,)
