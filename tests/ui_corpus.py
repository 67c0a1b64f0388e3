"""Papers planted next to the sample for the UI tests: one abstract full of literal Markdown, LaTeX and HTML
characters, and three papers whose years, authors and categories tell every filter apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import make_settings

# Ingest turns the LaTeX (\"u, \%, $\alpha$, \emph) into text; everything else must reach the page as written.
LITERAL_ABSTRACT = (
    'On T\\"ulu, Zygomorph improves accuracy from 67\\% to 85\\% with $\\alpha$ scaling and \\emph{careful} prompts. '
    "We present Zygomorph, a tokenizer whose budget is under $5 per run and which keeps 100% of the input. "
    "Identifiers such as snake_case_name and *starred* words, a | b pipes and the comparison x < y survive it unchanged."
)
LITERAL_TITLE = "Zygomorph: 100% of *Stars* and snake_case | Pipes for <Tags>"
# What a reader must see, character for character.
LITERAL_SHOWN = (
    "On Tülu, Zygomorph improves accuracy from 67% to 85% with α scaling and careful prompts.",
    "under $5 per run and which keeps 100% of the input.",
    "Identifiers such as snake_case_name and *starred* words, a | b pipes and the comparison x < y survive it unchanged.",
)
QUASAR_QUESTION = "What do the Quasar retrieval systems index?"
QUASAR = {
    "Ledger": {"year": 2019, "authors": ["Ada Okafor", "Ben Lund"], "categories": ["cs.IR"]},
    "Sieve": {"year": 2021, "authors": ["Chen Wu"], "categories": ["cs.CL"]},
    "Prism": {"year": 2023, "authors": ["Ada Okafor"], "categories": ["cs.LG"]},
}
PLANTED_ROWS: list[dict[str, Any]] = [
    {
        "id": "zygo-literal",
        "title": LITERAL_TITLE,
        "abstract": LITERAL_ABSTRACT,
        "year": 2024,
        "authors": ["Dana Ruiz"],
        "categories": ["cs.CL"],
    },
    *(
        {
            "id": f"quasar-{name.lower()}",
            "title": f"Quasar {name}: a Quasar retrieval system for {topic}",
            "abstract": (
                f"Quasar {name} is a Quasar retrieval system that indexes {topic} for search. "
                f"The Quasar {name} index stores every {topic.split()[-1]} as sparse and dense vectors. "
                f"Quasar {name} retrieves the right {topic.split()[-1]} for most queries in our evaluation."
            ),
            **meta,
        }
        for (name, meta), topic in zip(QUASAR.items(), ("audit trail ledgers", "clinical notes", "legal briefs"), strict=True)
    ),
]
PAPERS = 72 + len(PLANTED_ROWS)  # the sample and the planted papers


def planted_store(folder: Path, sample_dir: Path, embedder: Any) -> Path:
    """A copy of the session's sample store with the planted papers ingested through the real JSONL ingest."""
    from ingest.loaders import load_path
    from ingest.pipeline import ingest_report

    shutil.copytree(sample_dir, folder)
    source = folder / "planted.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in PLANTED_ROWS), encoding="utf-8")
    ingest_report(make_settings(folder), load_path(source), embedder=embedder)
    return folder
