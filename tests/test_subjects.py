"""What a comparison asks about, read from its wording."""

from __future__ import annotations

import pytest

from assistant.answering.subjects import asked_count, aspects, without_names


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("Two papers tie inference-time scaling to diverse samples. How does each obtain them?", 2),
        ("Compare the two studies on adapting language models to unit tests", 2),
        ("AceCoder and ToolCoder both bring outside information into code generation", 2),
        ("How do three recent methods differ in cost?", 3),
        ("How does a two-stage pipeline differ from one pass?", 0),
        ("Compare CoGEX and Think-and-Execute", 0),
    ],
)
def test_the_number_of_subjects_a_comparison_states(question: str, count: int) -> None:
    assert asked_count(question) == count


def test_aspects_leave_out_the_names_and_the_framing() -> None:
    question = "How do CoGEX and Think-and-Execute use pseudo-code differently?"
    assert aspects(question, ["CoGEX", "Think-and-Execute"]) == ["pseudo-code"]
    assert "CoGEX" not in without_names(question, ["CoGEX"])
