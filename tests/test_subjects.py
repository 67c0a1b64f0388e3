"""What a comparison asks about, read from its wording."""

from __future__ import annotations

from assistant.answering.subjects import aspects, without_names


def test_aspects_leave_out_the_names_and_the_framing() -> None:
    question = "How do CoGEX and Think-and-Execute use pseudo-code differently?"
    assert aspects(question, ["CoGEX", "Think-and-Execute"]) == ["pseudo-code"]
    assert "CoGEX" not in without_names(question, ["CoGEX"])
