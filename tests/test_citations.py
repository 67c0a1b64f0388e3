"""Citation markers: parsing, repair, claim splitting, and support checks with the real MiniLM."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from assistant.answering.citations import (
    Claim,
    Marker,
    check_citations,
    cited_numbers,
    drop_invalid,
    lexical_support,
    parse_markers,
    split_claims,
    strip_markers,
)
from assistant.models import Evidence, Paper, Sentence
from assistant.text.sentences import sentence_spans
from ingest.loaders import load_path, sample_corpus_path

THRESHOLD = 0.45


def numbers(text: str) -> list[tuple[int, ...]]:
    return [m.numbers for m in parse_markers(text)]


# --- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A [1].", [(1,)]),
        ("A [1, 3].", [(1, 3)]),
        ("A [1,3].", [(1, 3)]),
        ("A [1 ; 3].", [(1, 3)]),
        ("A [1][3].", [(1,), (3,)]),
        ("A [2-4].", [(2, 3, 4)]),
        ("A [2–4].", [(2, 3, 4)]),
        ("A [2 – 4, 7].", [(2, 3, 4, 7)]),
        ("A [3, 3].", [(3,)]),
        ("A [5-2].", [(2, 3, 4, 5)]),
        ("A [1-500].", [(1, 500)]),  # a wide range by its ends: never materialised
        ("A [a] [1.5] [ ] [].", []),
        ("A [-1] [0] [12345] [999999999999].", [(-1,), (0,), (12345,), (999999999999,)]),
        ("A [１] [٣].", [(1,), (3,)]),  # fullwidth and Arabic-Indic digits
        ("See [the docs](https://x.org) and [1](https://x.org/1).", []),
        ("Reference [text][2] is a link label.", []),
        ("Nested [[1]] and [see [2]].", [(1,), (2,)]),
        ("Unbalanced [1 and [2] and 3] ]][[", [(2,)]),
        ("Code `x[1]` and ``y [2] ` z`` but [3].", [(3,)]),
        ("```python\nx = a[1]\n```\nReal [4].", [(4,)]),
        ("~~~\n[1]\n~~~~\n[2]", [(2,)]),
        ("```\nunclosed [1]", []),
    ],
)
def test_parse_markers(text: str, expected: list[tuple[int, ...]]) -> None:
    assert numbers(text) == expected


def test_marker_spans_index_the_text() -> None:
    text = "X [1] y [2-3] z [4][5]."
    assert parse_markers(text)[1] == Marker(8, 13, (2, 3), ((2, 3),))
    assert [text[m.start : m.end] for m in parse_markers(text)] == ["[1]", "[2-3]", "[4]", "[5]"]


def test_cited_numbers_unique_in_first_appearance_order() -> None:
    assert cited_numbers("B [3]. A [1, 3]. C [2][1].") == [3, 1, 2]
    assert cited_numbers("no citations here") == []


def test_drop_invalid_removes_out_of_range_numbers() -> None:
    text, dropped = drop_invalid("A [2, 12]. B [12]. C [0][1]. D [4-7]. E [8][9].", 5)
    assert text == "A [2]. B. C [1]. D [4-5]. E."
    assert dropped == (0, 6, 7, 8, 9, 12)


@pytest.mark.parametrize(
    ("text", "fixed", "dropped"),
    [
        ("A [12345].", "A.", (12345,)),
        ("A [999999999999].", "A.", (999999999999,)),
        ("A [1-100000].", "A [1-3].", (100000,)),  # expanded only within 1..3, never to 100,000 numbers
        ("A [2-1000000000000000000000000].", "A [2-3].", (10**18,)),
        ("A [-1].", "A.", (-1,)),
        ("A [0].", "A.", (0,)),
        ("A [1, 2-3].", "A [1, 2-3].", ()),
        ("A [1, 2-5].", "A [1, 2-3].", (4, 5)),
        ("A [٩] [３].", "A [３].", (9,)),  # Arabic-Indic nine; a fullwidth three is kept as written
        ("A [3-1].", "A [3-1].", ()),  # reversed, but every number is a source
        ("A [" + "9" * 5000 + "].", "A.", (10**18,)),  # past int()'s digit limit
    ],
)
def test_invented_numbers_of_any_size_are_removed_and_listed(text: str, fixed: str, dropped: tuple[int, ...]) -> None:
    assert drop_invalid(text, 3) == (fixed, dropped)
    assert all(1 <= n <= 3 for n in cited_numbers(fixed))


def test_check_lists_invented_numbers_of_any_size_as_dropped() -> None:
    ev = [Evidence("p1", "Lion", "Lion is an optimizer found by program search.", 1.0,
                   (Sentence("Lion is an optimizer found by program search.", 0, 46),))]  # fmt: skip
    result = check_citations("Lion is an optimizer found by program search [1-100000][999999999999][-1].", ev, None, THRESHOLD)
    assert result.text == "Lion is an optimizer found by program search [1]."
    assert result.dropped == (-1, 100000, 999999999999)
    assert [c.n for c in result.citations] == [1] and not result.unsupported


def test_drop_invalid_keeps_valid_text_untouched() -> None:
    text = "A [1,2]. B [2–3]. `[9]`"
    assert drop_invalid(text, 3) == (text, ())


def test_strip_markers() -> None:
    assert strip_markers("X is true [1]. Y [2, 3]. `[4]`") == "X is true. Y. `[4]`"


# --- claims --------------------------------------------------------------------------------------------------


def test_split_claims_attaches_markers_to_their_sentence() -> None:
    text = "X is true. [1] Y is false [2]. Z holds.[3] W has no source."
    claims = split_claims(text)
    assert [(c.text, c.numbers) for c in claims] == [
        ("X is true. [1]", (1,)),
        ("Y is false [2].", (2,)),
        ("Z holds.[3]", (3,)),
        ("W has no source.", ()),
    ]
    assert all(text[c.start : c.end] == c.text for c in claims)


def test_split_claims_handles_markdown() -> None:
    text = (
        "## Findings [1]\n"
        "**SRL: Scaling RL** [1]\n"
        "- SRL scales to 15k cores [1].\n"
        "2. Lion saves memory [2, 3]\n"
        "The papers report:\n"
        "```\ncode line [3].\n```\n"
        "---\n"
        "> Quoted claim here [3]."
    )
    claims = split_claims(text)
    assert [(c.text, c.numbers) for c in claims] == [
        ("SRL scales to 15k cores [1].", (1,)),
        ("Lion saves memory [2, 3]", (2, 3)),
        ("Quoted claim here [3].", (3,)),
    ]
    assert all(isinstance(c, Claim) and text[c.start : c.end] == c.text for c in claims)


# --- checking against real abstracts -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def papers() -> dict[str, Paper]:
    return {p.title.split(":")[0]: p for p in load_path(sample_corpus_path()).papers}


def evidence_of(*items: Paper) -> list[Evidence]:
    """Evidence records as retrieval builds them: the first two sentences with exact spans."""
    out = []
    for p in items:
        sentences = tuple(Sentence(p.abstract[s:e], s, e, 0.5) for s, e in sentence_spans(p.abstract)[:2])
        out.append(Evidence(p.id, p.title, p.abstract, 0.5, sentences))
    return out


class CountingEmbedder:
    """Wraps the real embedder and counts embed calls."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = "counting"
        self.calls = 0

    @property
    def dim(self) -> int:
        return int(self.inner.dim)  # type: ignore[attr-defined]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return self.inner.embed(texts)  # type: ignore[attr-defined, no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def assert_exact_quotes(result, evidence: Sequence[Evidence]) -> None:  # type: ignore[no-untyped-def]
    for c in result.citations:
        abstract = evidence[c.n - 1].abstract
        assert c.paper_id == evidence[c.n - 1].paper_id
        assert 1 <= len(c.quotes) <= 3
        for q in c.quotes:
            assert abstract[q.start : q.end] == q.text


def test_paraphrase_of_cited_abstract_is_supported(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    counting = CountingEmbedder(embedder)
    text = (
        "SRL is a distributed RL system designed to be scalable, efficient and extensible [1]. "
        "In LAMBDA, a programmer agent writes code while an inspector agent debugs it [2]."
    )
    result = check_citations(text, ev, counting, THRESHOLD)
    assert result.unsupported == ()
    assert result.dropped == ()
    assert result.text == text
    assert [c.n for c in result.citations] == [1, 2]
    assert "ReaLly Scalable RL" in result.citations[0].quotes[0].text
    assert "inspector" in result.citations[1].quotes[0].text
    assert result.citations[0].quotes[0].score >= THRESHOLD
    assert counting.calls == 1  # claims and sentences go in one batch
    assert_exact_quotes(result, ev)


def test_claim_citing_the_wrong_paper_is_unsupported(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    text = "SRL is a distributed RL system designed to be scalable, efficient and extensible [2]."
    result = check_citations(text, ev, embedder, THRESHOLD)
    assert result.unsupported == ("SRL is a distributed RL system designed to be scalable, efficient and extensible.",)
    assert result.text == text  # flagged, not hidden
    assert [c.n for c in result.citations] == [2]
    assert result.citations[0].quotes[0].score < THRESHOLD
    assert_exact_quotes(result, ev)


def test_one_good_number_among_several_supports_the_claim(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    text = "Lambda's inspector agent debugs the code written by its programmer agent [1, 2]."
    result = check_citations(text, ev, embedder, THRESHOLD)
    assert result.unsupported == ()


def test_invented_citation_number_is_dropped(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    text = "LAMBDA has a programmer agent and an inspector agent [2, 12]. SRL trains on thousands of CPU cores [7]."
    result = check_citations(text, ev, embedder, THRESHOLD)
    assert result.dropped == (7, 12)
    assert result.text == "LAMBDA has a programmer agent and an inspector agent [2]. SRL trains on thousands of CPU cores."
    assert [c.n for c in result.citations] == [2]
    # The sentence that lost its only citation is now an uncited, substantive claim.
    assert result.unsupported == ("SRL trains on thousands of CPU cores.",)


def test_verbatim_quote_needs_no_embedding(papers: dict[str, Paper]) -> None:
    srl = papers["SRL"]
    quote = srl.abstract[slice(*sentence_spans(srl.abstract)[4])]

    class Refusing(CountingEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            raise AssertionError("a verbatim quote must not be embedded")

    ev = evidence_of(srl)
    result = check_citations(f"- {quote} [1]", ev, Refusing(None), THRESHOLD)
    assert result.unsupported == ()
    assert result.citations[0].quotes[0].text == quote
    assert result.citations[0].quotes[0].score == 1.0
    assert_exact_quotes(result, ev)


def test_answer_without_citations(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"])
    text = "## Answer\nSRL scales reinforcement learning to many cores.\nThe collection does not cover diffusion models."
    result = check_citations(text, ev, embedder, THRESHOLD)
    assert result.citations == ()
    assert result.dropped == ()
    assert result.unsupported == ("SRL scales reinforcement learning to many cores.",)
    assert check_citations("", ev, embedder, THRESHOLD) == check_citations("", [], None, THRESHOLD)


def test_extractive_heading_is_not_a_claim(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    srl, lam = papers["SRL"], papers["LAMBDA"]
    ev = evidence_of(srl, lam)
    text = f"**{srl.title}** [1]\n- {ev[0].sentences[1].text} [1]\n\n**{lam.title}** [2]\n"
    result = check_citations(text, ev, embedder, THRESHOLD)
    assert result.unsupported == ()
    assert [c.n for c in result.citations] == [1, 2]
    assert result.citations[0].quotes[0].text == ev[0].sentences[1].text
    assert result.citations[1].quotes == (ev[1].sentences[0],)  # only a heading cites it: the retrieval's best sentence
    assert_exact_quotes(result, ev)


def test_lexical_fallback_without_embedder(papers: dict[str, Paper]) -> None:
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    good = "SRL is a distributed RL system designed to be scalable, efficient and extensible [1]."
    assert check_citations(good, ev, None, THRESHOLD).unsupported == ()
    wrong = "SRL is a distributed RL system designed to be scalable, efficient and extensible [2]."
    assert len(check_citations(wrong, ev, None, THRESHOLD).unsupported) == 1
    assert lexical_support("", "anything") == 0.0
    assert 0.0 <= lexical_support("cores cores cores", "cores") <= 1.0


def test_negated_or_padded_quote_is_not_taken_as_verbatim(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    srl = papers["SRL"]
    quote = srl.abstract[slice(*sentence_spans(srl.abstract)[5])]  # "The system architecture of SRL separates ..."
    ev = evidence_of(srl)
    counting = CountingEmbedder(embedder)
    check_citations(f"{quote} [1]", ev, counting, THRESHOLD)
    assert counting.calls == 0
    negated = quote.replace("separates", "does not separate")
    padded = quote.rstrip(".") + ", and it also won three Turing awards and cured a rare disease in its spare time."
    for text in (f"{negated} [1]", f"{padded} [1]"):
        result = check_citations(text, ev, counting, THRESHOLD)
        assert result.citations[0].quotes[0].score < 1.0
    assert counting.calls == 2


def test_pointer_sentence_is_not_checked(papers: dict[str, Paper], embedder) -> None:  # type: ignore[no-untyped-def]
    ev = evidence_of(papers["SRL"], papers["LAMBDA"])
    result = check_citations("See [2].\n\nSRL is a distributed RL system designed to be scalable [1].", ev, embedder, THRESHOLD)
    assert result.unsupported == ()
    assert [c.n for c in result.citations] == [1, 2]
    assert result.citations[1].quotes == (ev[1].sentences[0],)
