"""What reaches a terminal or an export is inert: no control characters (item 3), no live link reference definitions
(item 4, rendered with markdown-it-py), and BibTeX that a BibTeX parser reads back (item 8, with pybtex)."""

from __future__ import annotations

import io
import itertools
import json
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from pybtex.database import parse_string

from assistant.cli import print_sources
from assistant.models import Answer, Citation, Evidence, Sentence
from assistant.output.render import inert_markdown, to_bibtex, to_markdown
from assistant.output.sanitise import VisibleStream, visible, visible_json
from assistant.output.serialise import answer_json

# Everything the brief counts as a control: C0 but tab and newline, DEL, C1, bidi embeddings, overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE_TEXT = (
    "Clear\x1b[2J\x1b[H screen, \x1b]0;pwned title\x07 OSC, \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ hyperlink, "
    "8-bit \x9b31m CSI, \u202eevil\u202c override, \u2066isolate\u2069, bell\x07, back\x08space, cr\r, del\x7f end."
)


HOSTILE_TITLE = "Lion\u202e noitazimitpO \x9b2J \x1b[31mred\x1b[0m"


def hostile_evidence(title: str = HOSTILE_TITLE, abstract: str = HOSTILE_TEXT) -> Evidence:
    return Evidence("p1", title, abstract, 0.9, (Sentence(abstract, 0, len(abstract)),), 2024, ("A\x1b]0;x\x07uthor",))


def answer_with(text: str, evidence: Evidence, **extra: object) -> Answer:
    quote = evidence.sentences[0]
    citation = Citation(1, evidence.paper_id, evidence.title, (quote,))
    return Answer(question="Q\x1b[2J?", standalone_question="Q?", mode="ask", text=text, citations=(citation,),
                  evidence=(evidence,), **extra)  # type: ignore[arg-type]  # fmt: skip


# -- item 3: control characters ----------------------------------------------------------------------------------


def test_visible_removes_sequences_and_shows_other_controls() -> None:
    shown = visible(HOSTILE_TEXT)
    assert not CONTROL.search(shown), ascii(shown)
    assert "pwned title" not in shown and "http://evil" not in shown  # OSC payloads go with their sequence
    assert "Clear screen" in shown and "override" in shown and "\u240d" in shown  # a lone CR shows as ␍
    assert visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


@given(st.text(max_size=200))
def test_visible_never_leaves_a_control(text: str) -> None:
    assert not CONTROL.search(visible(text))
    assert not CONTROL.search(json.dumps(visible_json({"k\x9b": [text]}), ensure_ascii=False))


@given(st.lists(st.integers(min_value=1, max_value=len(HOSTILE_TEXT)), max_size=20))
def test_a_sequence_split_between_stream_pieces_is_removed_whole(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(HOSTILE_TEXT)]
    stream = VisibleStream()
    shown = "".join(stream.feed(HOSTILE_TEXT[a:b]) for a, b in itertools.pairwise(points))
    assert shown == visible(HOSTILE_TEXT)


def test_every_renderer_sanitises_and_the_stored_answer_stays_exact() -> None:
    evidence = hostile_evidence()
    answer = answer_with(HOSTILE_TEXT + " [1]", evidence, error="server said \x1b[2J no", unsupported=("x\u202ey",))
    printed, errors = io.StringIO(), io.StringIO()
    print_sources(answer, printed, errors)
    shown = {
        "markdown": to_markdown(answer),
        "bibtex": to_bibtex(answer),
        "sources": printed.getvalue(),
        "error line": errors.getvalue(),
        "json": json.dumps(visible_json(answer_json(answer)), ensure_ascii=False),
    }
    for name, text in shown.items():
        assert not CONTROL.search(text), f"{name}: {text!a}"
    assert "error: server said" in errors.getvalue() and "error:" not in printed.getvalue()
    # Storage is untouched: the quote still indexes the abstract exactly, controls and all.
    q = answer.citations[0].quotes[0]
    assert evidence.abstract[q.start : q.end] == q.text and "\x1b[2J" in q.text


# -- item 4: link reference definitions, wherever CommonMark accepts them ------------------------------------------

DEFINITIONS = [
    '[1]: smb://host/share "t"',
    '> [1]: smb://host/share "shared"',
    "- [1]: smb://host/share",
    "1. [1]: smb://host/share",
    "> - > [1]: smb://host/share",
    "   [1]: smb://host/share",
    "> quote\n[1]: smb://host/share",
    "para\n\n> lazy\ncontinued\n\n[1]:\n  smb://host/share\n  'title'",
    "- item\n\n  [1]: <smb://host/share>",
    "[1\n]: smb://host/share",
    "> ```\n> code\n> ```\n> [1]: smb://host/share",
    "``` a`b\n[1]: smb://host/share\n```",
    "`\n\n[1]: smb://host/share\n\n`",
]


def hrefs(markdown: str) -> list[str]:
    """Every link and image target a CommonMark renderer (raw HTML on) would produce, plus any raw HTML token."""
    found: list[str] = []
    for token in MarkdownIt("commonmark", {"html": True}).parse(markdown):
        for t in [token, *(token.children or [])]:
            if t.type in ("link_open", "image"):
                found.append(str(t.attrGet("href") or t.attrGet("src") or ""))
            if t.type in ("html_inline", "html_block"):
                found.append("html:" + t.content)
    return found


def assert_only_web_links(markdown: str) -> None:
    bad = [h for h in hrefs(markdown) if not h.startswith(("http://", "https://"))]
    assert not bad, (bad, markdown)


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_no_link_reference_definition_survives(definition: str) -> None:
    text = f"Lion is an optimizer [1].\n\n{definition}\n\nSee [1] and [text][1]."
    assert_only_web_links(to_markdown(answer_with(text, hostile_evidence("Lion"))))


PIECES = st.sampled_from([
    "[1]", "[1]:", "]:", " smb://host/x", " javascript:alert(1)", " <smb://x>", "](smb://x)", "](#top)", "![i](http://x/i.png)",
    "[a]", "[a][1]", "\n", "\n\n", "> ", "- ", "1. ", "   ", "    ", "`", "```", "~~~", "\\", "<b>", "<a href='x'>", "&#58;",
    "&lt;", "word ", "(", ")", "\"t\"", "'", "*", "#", "|", "\x1b]8;;smb://x\x1b\\", "\u202e",
])  # fmt: skip
HOSTILE = st.one_of(st.lists(PIECES, max_size=40).map("".join), st.text(max_size=120))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE, title=HOSTILE, question=HOSTILE)
def test_markdown_export_has_no_href_outside_http(text: str, title: str, question: str) -> None:
    evidence = replace(hostile_evidence(title or "t"), url="https://example.org/p")
    answer = replace(answer_with(text, evidence), question=question, unsupported=(text,), error=text or None)
    assert_only_web_links(to_markdown(answer))
    assert_only_web_links(inert_markdown(text))


# -- item 8: BibTeX a parser reads back -----------------------------------------------------------------------------

_UNESCAPE = {
    r"{\textbackslash}": "\\", r"{\textbraceleft}": "{", r"{\textbraceright}": "}", r"{\textasciicircum}": "^",
    r"{\textasciitilde}": "~", r"\%": "%", r"\&": "&", r"\$": "$", r"\#": "#", r"\_": "_",
}  # fmt: skip
_UNESCAPE_RE = re.compile("|".join(re.escape(k) for k in _UNESCAPE))


def read_back(field: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPE[m.group()], field)


BIB_TEXT = st.text(alphabet=st.sampled_from([*list('{}\\%&$#_^~@",= aZ1é\n\t'), "\x1b", "\u202e"]), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(title=BIB_TEXT, author=BIB_TEXT)
def test_bibtex_parses_and_reads_back_the_title(title: str, author: str) -> None:
    evidence = replace(hostile_evidence(title), authors=(author,), url="https://example.org/{x}")
    bib = to_bibtex(answer_with("A [1].", evidence))
    entries = parse_string(bib, "bibtex").entries
    assert len(entries) == 1
    entry = next(iter(entries.values()))
    assert read_back(entry.fields["title"]) == " ".join(visible(title).split())
    assert entry.fields.get("note", "").startswith("Source [1]")  # the fields after the title were read too


def test_bibtex_of_the_issue_case_parses() -> None:
    evidence = replace(hostile_evidence("Set \\{A of {unbalanced braces}} and \\}"), authors=("O'Brien, {Ann",))
    entry = next(iter(parse_string(to_bibtex(answer_with("A [1].", evidence)), "bibtex").entries.values()))
    assert read_back(entry.fields["title"]) == "Set \\{A of {unbalanced braces}} and \\}"
