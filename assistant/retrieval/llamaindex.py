"""Our hybrid retrieval as a llama-index retriever, for users who plug it into their own query engines.

Imported on its own (`assistant.retrieval` does not import it), so the library pays for llama-index only here.
"""

from __future__ import annotations

from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant.models import Filters, PaperHit
from assistant.retrieval.retriever import Retriever

# Stored metadata a node carries; the abstract, chunk text and spans are left out: the node's text already holds them.
PAPER_KEYS = ("paper_id", "title", "year", "authors", "url", "categories", "source")
# Retrieval detail kept on the node for callers, but out of the text an LLM or embedder sees.
SCORE_KEYS = ("dense", "lexical", "chunk_ids")


def paper_node(hit: PaperHit) -> NodeWithScore:
    """One paper as a llama-index node: its best chunks' text, its metadata, its fused score."""
    meta: dict[str, object] = {key: hit.metadata[key] for key in PAPER_KEYS if key in hit.metadata}
    meta.update(paper_id=hit.paper_id, title=hit.title, dense=hit.dense, lexical=hit.lexical)
    meta["chunk_ids"] = ", ".join(p.chunk_id for p in hit.passages)
    node = TextNode(
        id_=hit.passages[0].chunk_id,
        text="\n\n".join(p.text for p in hit.passages),
        metadata=meta,
        excluded_llm_metadata_keys=list(SCORE_KEYS),
        excluded_embed_metadata_keys=list(SCORE_KEYS),
    )
    return NodeWithScore(node=node, score=hit.score)


class PaperRetriever(BaseRetriever):
    """`Retriever.search` behind llama-index's `BaseRetriever`: one node per paper, best first, same scores."""

    def __init__(
        self,
        retriever: Retriever,
        top_k: int = 5,
        filters: Filters | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        self.retriever = retriever
        self.top_k = top_k
        self.filters = filters
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.retriever.search(query_bundle.query_str, self.top_k, self.filters)
        return [paper_node(hit) for hit in hits]
