"""Property tests: citation parsing, repair and claim splitting never crash and keep their spans exact."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.citations import cited_numbers, drop_invalid, parse_markers, split_claims, strip_markers

# Characters that make markers, code spans, fences, lists and sentence ends, so bracket soup is common.
SOUP = st.text(alphabet=st.sampled_from(list("[]()`~,;-–— 0123456789.!?#*>\n\t\x00aZé")), max_size=300)
ANY = st.text(max_size=300)  # arbitrary unicode, NUL included
TEXTS = st.one_of(SOUP, ANY, st.lists(st.sampled_from(["[1]", "[2, 3]", "[4-6]", "[0]", "[99]", "`", "```\n", "A b. ", "\n- "])).map("".join))
SOURCES = st.integers(min_value=-3, max_value=10**12)


def check_markers(text: str) -> None:
    markers = parse_markers(text)
    end = 0
    for m in markers:
        assert end <= m.start < m.end <= len(text)
        assert text[m.start] == "[" and text[m.end - 1] == "]"
        assert m.numbers and len(set(m.numbers)) == len(m.numbers)
        assert all(n >= 0 for n in m.numbers)
        end = m.end
    assert cited_numbers(text) == list(dict.fromkeys(n for m in markers for n in m.numbers))


def check_claims(text: str) -> None:
    end = 0
    for c in split_claims(text):
        assert end <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert set(c.numbers) <= {n for m in parse_markers(c.text) for n in m.numbers}
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


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(SOUP, ANY).filter(bool))
def test_huge_inputs_stay_fast(fragment: str) -> None:
    text = fragment * (1_000_000 // len(fragment) + 1)
    started = time.monotonic()
    check_markers(text)
    check_drop(text, 3)
    check_claims(text)
    assert time.monotonic() - started < 60


def test_adversarial_inputs_stay_fast() -> None:
    widths = "".join("`" * k + "x" for k in range(1, 1400))  # unmatched backtick runs of every length
    cases = [
        "[" * 1_000_000,
        "[1," * 300_000,
        "[1-" * 300_000,
        "[9 " * 300_000 + "[0]" + "]" * 300_000,
        "A b. [1] " * 100_000,
        "- X [99].\n" * 100_000,
        widths,
        "```\n" * 200_000,
        "\x00[1]\x00" * 150_000,
    ]
    for text in cases:
        started = time.monotonic()
        check_markers(text)
        check_drop(text, 3)
        check_claims(text)
        assert time.monotonic() - started < 30, text[:40]
