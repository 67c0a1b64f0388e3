"""PaperRetriever: Retriever.search behind llama-index's BaseRetriever, over the ingested sample collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.models import Filters

QUESTIONS = (
    "which work finds an optimizer by searching over programs?",
    "parameter-efficient fine-tuning of large language models",
    "retrieval augmented generation with citations",
)


def test_nodes_scores_and_order_are_retriever_search(sample_settings: Settings, embedder: Any) -> None:
    from llama_index.core.schema import QueryBundle

    from assistant import build_assistant
    from assistant.retrieval.llamaindex import PaperRetriever

    retriever = build_assistant(sample_settings, embedder=embedder).retriever
    adapter = PaperRetriever(retriever, top_k=4)
    for question in QUESTIONS:
        hits = retriever.search(question, 4)
        nodes = adapter.retrieve(question)
        assert len(hits) == 4
        assert [n.node.metadata["paper_id"] for n in nodes] == [h.paper_id for h in hits]
        assert [n.score for n in nodes] == [h.score for h in hits]
        for node, hit in zip(nodes, hits, strict=True):
            assert node.node.node_id == hit.passages[0].chunk_id
            assert node.node.get_content() == "\n\n".join(p.text for p in hit.passages)
            assert node.node.metadata["title"] == hit.title
            assert node.node.metadata.get("year") == hit.metadata.get("year")
        assert [n.node.node_id for n in adapter.retrieve(QueryBundle(question))] == [n.node.node_id for n in nodes]

    # Filters pass through: the adapter returns what the filtered search returns.
    filters = Filters(title="language")
    filtered = PaperRetriever(retriever, top_k=10, filters=filters).retrieve(QUESTIONS[2])
    expected = retriever.search(QUESTIONS[2], 10, filters)
    assert filtered and [n.node.metadata["paper_id"] for n in filtered] == [h.paper_id for h in expected]
    assert all("language" in str(n.node.metadata["title"]).casefold() for n in filtered)
    assert len(retriever.search(QUESTIONS[2], 100, filters)) < len(retriever.search(QUESTIONS[2], 100))  # it filters


def test_plugs_into_a_llamaindex_query_engine(sample_settings: Settings, embedder: Any) -> None:
    """A llama-index RetrieverQueryEngine runs on it. no_text synthesis never calls an LLM, but llama-index wants an
    LLM object anyway: MockLLM is its own stand-in for "no LLM" (what `Settings.llm = None` resolves to)."""
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText
    from llama_index.core.schema import MetadataMode

    from assistant import build_assistant
    from assistant.retrieval.llamaindex import PaperRetriever

    retriever = build_assistant(sample_settings, embedder=embedder).retriever
    synthesizer = NoText(llm=MockLLM())
    engine = RetrieverQueryEngine(PaperRetriever(retriever, top_k=3), response_synthesizer=synthesizer)
    response = engine.query(QUESTIONS[0])
    assert [n.node.metadata["paper_id"] for n in response.source_nodes] == [h.paper_id for h in retriever.search(QUESTIONS[0], 3)]
    # Retrieval detail stays out of what an LLM would be shown.
    shown = response.source_nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert "title" in shown and "chunk_ids" not in shown and "lexical" not in shown


def test_importing_retrieval_does_not_import_llamaindex() -> None:
    root = Path(__file__).resolve().parents[1]
    code = "import sys, assistant.retrieval.retriever; print(any(m.startswith('llama_index') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
