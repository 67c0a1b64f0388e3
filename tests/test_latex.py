"""The LaTeX that arXiv abstracts carry becomes plain text at ingest; literal text stays as written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.latex import plain_text
from ingest.loaders import load_path, sample_corpus_path


def test_sample_abstracts_are_plain_text() -> None:
    papers = load_path(sample_corpus_path()).papers
    text = " ".join(p.abstract for p in papers)
    assert "67% to 85%" in text and "\\%" not in text
    assert "Tülu" in text and 'T\\"ulu' not in text
    assert "Lion (EvoLved Sign Momentum)" in text
    assert "in https://github.com/DEEP-PolyU/Awesome-GraphRAG." in text and "blue{" not in text


@pytest.mark.parametrize(
    ("latex", "plain"),
    [
        ("a \\& b \\_ c \\# d \\$5", "a & b _ c # d $5"),
        (
            'M\\"uller, caf\\\'e, \\`a, \\^o, \\~n, {\\"o}, \\"{u}, \\c{c}, Erd\\H{o}s, \\ss',
            "Müller, café, à, ô, ñ, ö, ü, ç, Erdős, ß",
        ),
        ("\\emph{x}, \\textbf{bold}, \\textit{it}, \\texttt{a_b}, {\\em em}", "x, bold, it, a_b, em"),
        ("see blue{https://x.org/a} and \\textcolor{red}{this}", "see https://x.org/a and this"),
        ("$\\alpha$-divergence with $\\beta_1 \\leq 0.9$", "α-divergence with β_1 ≤ 0.9"),
        ("runs in $O(n \\log n)$ time on $\\mathbb{R}^d$ for $k$ items", "runs in O(n log n) time on R^d for k items"),
        ("``quoted'' text", "“quoted” text"),
    ],
)
def test_latex_becomes_plain_text(latex: str, plain: str) -> None:
    assert plain_text(latex) == plain


@pytest.mark.parametrize(
    "literal",
    ["10% of $5 and $10", "a*b | c < d > e_f", "US$5 or US$10", "costs $10M$ today", "f''(x) {a} b", "100%", "x_1 and y^2"],
)
def test_literal_text_stays_as_written(literal: str) -> None:
    assert plain_text(literal) == literal


@given(st.text(alphabet=st.characters(blacklist_characters="\\$`{")))
def test_text_without_latex_is_unchanged(text: str) -> None:
    assert plain_text(text) == text


@given(st.text())
def test_any_text_converts_without_error(text: str) -> None:
    assert isinstance(plain_text(text), str)


def test_a_literal_dollar_before_math_does_not_swallow_the_latex_between() -> None:
    """ "$5" opens no math: the escapes and accents after it are still converted, and the math after them too."""
    text = 'costs $5, 67\\% and T\\"ulu with $\\alpha$ here'
    assert plain_text(text) == "costs $5, 67% and Tülu with α here"
