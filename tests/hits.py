"""A retrieved paper built from an abstract, for tests that score one abstract's sentences."""

from __future__ import annotations

from assistant.models import PaperHit, Passage


def one_paper_hit(abstract: str, title: str = "P", paper_id: str = "p") -> PaperHit:
    """The hit a search returns for a one-chunk paper holding this abstract."""
    meta: dict[str, object] = {"paper_id": paper_id, "title": title, "abstract": abstract, "hash": "h"}
    passage = Passage(chunk_id=f"{paper_id}:0", paper_id=paper_id, title=title, text=abstract, score=1.0, metadata=meta)
    return PaperHit(paper_id=paper_id, title=title, score=1.0, dense=0.5, lexical=0.0, passages=(passage,), metadata=meta)
