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


def test_a_compound_name_that_starts_the_question_is_a_name() -> None:
    # A sentence start is no name ("Which", "Compare"), but a compound with a capital after a hyphen is, wherever it
    # stands; the capitalised part after its hyphen ("Code" in "Effi-Code") is not a name of its own.
    assert names("Effi-Code and CodeDPO both aim to improve efficiency.") == ["Effi-Code", "CodeDPO"]
    assert names("Think-and-Execute and CoGEX: how do they differ?") == ["Think-and-Execute", "CoGEX"]
    assert names("Duo-LLM reduces inference cost by 80% on GSM8K.") == ["Duo-LLM", "GSM8K"]
    assert names("Fine-tuning helps. Which models gain most?") == []
