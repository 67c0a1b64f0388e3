"""What a comparison asks about, read from its wording."""

from __future__ import annotations

from assistant.answering.subjects import aspects, without_names
from assistant.text.names import names


def test_aspects_leave_out_the_names_and_the_framing() -> None:
    question = "How do CoGEX and Think-and-Execute use pseudo-code differently?"
    assert aspects(question, ["CoGEX", "Think-and-Execute"]) == ["pseudo-code"]
    assert "CoGEX" not in without_names(question, ["CoGEX"])


def test_a_part_of_a_longer_name_is_no_name_of_its_own() -> None:
    assert names("How do PHATGOOSE and Duo-LLM route tokens?") == ["PHATGOOSE", "Duo-LLM"]
    assert names("Which base models do OpenBezoar and DART-Math fine-tune?") == ["OpenBezoar", "DART-Math"]
    assert names("Is GPT-4 better than Llama on SWE-bench?") == ["GPT-4", "Llama", "SWE-bench"]
