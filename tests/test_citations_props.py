"""Property tests: citation parsing, repair and claim splitting never crash and keep their spans exact."""

from __future__ import annotations

import bisect
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.answering.citations import cited_numbers, drop_invalid, parse_markers, split_claims, strip_markers

# Characters that make markers, code spans, fences, lists and sentence ends, so bracket soup is common.
SOUP = st.text(alphabet=st.sampled_from(list("[]()`~,;-–— 0123456789.!?#*>\n\t\x00aZé")), max_size=300)
ANY = st.text(max_size=300)  # arbitrary unicode, NUL included
PIECES = st.sampled_from(["[1]", "[2, 3]", "[4-6]", "[0]", "[99]", "`", "```\n", "A b. ", "\n- ", "**T** ", "# H\n"])
TEXTS = st.one_of(SOUP, ANY, st.lists(PIECES).map("".join))
SOURCES = st.integers(min_value=-3, max_value=10**12)


def check_markers(text: str) -> None:
    markers = parse_markers(text)
    end = 0
    for m in markers:
        assert end <= m.start < m.end <= len(text)
        assert text[m.start] == "[" and text[m.end - 1] == "]"
        assert m.numbers and len(set(m.numbers)) == len(m.numbers)
        end = m.end
    assert cited_numbers(text) == list(dict.fromkeys(n for m in markers for n in m.numbers))


def check_claims(text: str) -> None:
    markers = parse_markers(text)  # code spans depend on the whole text, so not re-parsed per claim
    starts = [m.start for m in markers]
    end = 0
    for c in split_claims(text):
        assert end <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        inside = markers[bisect.bisect_left(starts, c.start) : bisect.bisect_left(starts, c.end)]
        assert set(c.numbers) <= {n for m in inside if m.end <= c.end for n in m.numbers}
        end = c.end


def check_drop(text: str, n_sources: int) -> None:
    fixed, dropped = drop_invalid(text, n_sources)
    assert all(1 <= n <= n_sources for n in cited_numbers(fixed))
    assert list(dropped) == sorted(set(dropped))
    assert all(not 1 <= n <= n_sources for n in dropped)
    assert set(dropped) == {n for n in cited_numbers(text) if not 1 <= n <= n_sources}
    if not dropped:
        assert fixed == text
    assert drop_invalid(fixed, n_sources) == (fixed, ())
    assert cited_numbers(strip_markers(text)) == []


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_parse_markers_spans(text: str) -> None:
    check_markers(text)


@settings(max_examples=200, deadline=None)
@given(TEXTS, SOURCES)
def test_drop_invalid_leaves_only_valid_numbers(text: str, n_sources: int) -> None:
    check_drop(text, n_sources)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_split_claims_spans(text: str) -> None:
    check_claims(text)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(SOUP, ANY).filter(bool))
def test_huge_inputs_do_not_crash(fragment: str) -> None:
    text = fragment * (1_000_000 // len(fragment) + 1)
    check_markers(text)
    check_drop(text, 3)
    check_claims(text)


@pytest.mark.slow
def test_adversarial_inputs_stay_fast() -> None:
    # About 300 KB each: enough for quadratic work to blow the time limit by orders of magnitude.
    widths = "".join("`" * k + "x" for k in range(1, 780))  # unmatched backtick runs of every length
    cases = [
        "[" * 300_000,
        "[1," * 100_000,
        "[1-" * 100_000,
        "[9 " * 100_000 + "[0]" + "]" * 100_000,
        "A b. [1] " * 20_000,  # every boundary an abbreviation, which sentence_spans rescans
        "- X [99].\n" * 30_000,
        widths,
        "```\n" * 75_000,
        "\x00[1]\x00" * 60_000,
    ]
    for text in cases:
        started = time.monotonic()
        check_markers(text)
        check_drop(text, 3)
        check_claims(text)
        assert time.monotonic() - started < 20, text[:40]
