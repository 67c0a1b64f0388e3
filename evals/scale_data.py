"""What the scale bench measures on: SciFact sentences recombined into synthetic papers, a hashing embedder, and the
stores (embedded Chroma or a `chroma run` server started for the run).

The embedder is NOT a language model. Stemmed words hashed into 384 signed buckets make vectors cheap and
deterministic, so the scale bench measures Chroma and the indexes, not MiniLM (`python -m assistant bench` measures
MiniLM's own rate).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant import vectors
from assistant.config import Settings
from assistant.errors import AssistantError, InputError
from assistant.models import Chunk, Paper
from assistant.text.sentences import sentence_spans
from assistant.text.words import stems, words

SENTENCES_PER_CHUNK = 4  # 5-10 sentences make 2-3 chunks a paper; SciFact's real ingest makes 2.6 (13,640 / 5,183)
QUERY_MIN_WORDS = 6
CONTENT_HASH = "scale-bench"  # what the store records as each paper's content hash; nothing re-syncs these papers

# (paper, its chunks, the document text each chunk is embedded and indexed by)
ChunkedPaper = tuple[Paper, list[Chunk], list[str]]


@dataclass(frozen=True)
class SentencePool:
    """Real titles and sentences to recombine; `queries` are sentences held out of every synthetic paper."""

    titles: tuple[str, ...]
    sentences: tuple[str, ...]
    queries: tuple[str, ...]


def _rows(corpus: Path) -> Iterator[dict[str, Any]]:
    with corpus.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{corpus}:{line_no}: not a JSON line") from None
            if not isinstance(row, dict):
                raise InputError(f"{corpus}:{line_no}: not a JSON object")
            yield row


def load_pool(beir: Path, n_queries: int, seed: int) -> SentencePool:
    """Titles and sentences of a BEIR corpus (corpus.jsonl), split as chunking splits them; queries held out."""
    corpus = beir / "corpus.jsonl"
    if not corpus.is_file():
        raise InputError(f"{beir}: not a BEIR folder (no corpus.jsonl); pass --beir DIR, e.g. SciFact's")
    titles: list[str] = []
    sentences: list[str] = []
    for row in _rows(corpus):
        text = str(row.get("text") or "")
        titles.append(" ".join(str(row.get("title") or "").split()) or "Untitled")
        sentences.extend(" ".join(text[a:b].split()) for a, b in sentence_spans(text))
    random.Random(seed).shuffle(sentences)
    queries = [s for s in sentences if len(s.split()) >= QUERY_MIN_WORDS][:n_queries]
    held = set(queries)
    rest = [s for s in sentences if s not in held]
    if len(rest) < 100 or len(queries) < n_queries:
        raise InputError(f"{corpus}: too few sentences ({len(sentences)}) for {n_queries} queries and synthetic papers")
    return SentencePool(tuple(titles), tuple(rest), tuple(queries))


def recombined(paper_id: str, title: str, sentences: Sequence[str], room: int) -> tuple[Paper, list[Chunk]]:
    """A paper whose abstract is these sentences, cut into at most `room` chunks of whole sentences."""
    abstract = " ".join(sentences)
    spans: list[tuple[int, int]] = []
    at = 0
    for s in sentences:
        spans.append((at, at + len(s)))
        at += len(s) + 1
    groups = max(1, min(room, math.ceil(len(spans) / SENTENCES_PER_CHUNK)))
    size = math.ceil(len(spans) / groups)
    parts = [spans[i : i + size] for i in range(0, len(spans), size)]
    chunks = [Chunk(paper_id, n, abstract[p[0][0] : p[-1][1]], tuple(p)) for n, p in enumerate(parts)]
    return Paper(id=paper_id, title=title, abstract=abstract, source="scale-bench"), chunks


def synthetic_papers(pool: SentencePool, n_chunks: int, seed: int, prefix: str) -> Iterator[ChunkedPaper]:
    """Papers of 5-10 random pool sentences, titled by a real title and a counter, until exactly n_chunks chunks."""
    from ingest.chunking import embedding_text, token_counter

    count = token_counter()  # only long titles are counted: embedding_text bounds them as the ingest does
    rng = random.Random(seed)
    made = 0
    number = 0
    while made < n_chunks:
        number += 1
        picked = rng.sample(pool.sentences, rng.randint(5, 10))
        title = f"{rng.choice(pool.titles)} ({number})"
        paper, chunks = recombined(f"{prefix}{number}", title, picked, n_chunks - made)
        made += len(chunks)
        yield paper, chunks, [embedding_text(title, c.text, count) for c in chunks]


def batches(papers: Iterable[ChunkedPaper], size: int) -> Iterator[list[ChunkedPaper]]:
    """Whole papers grouped into lists of at least `size` chunks (the last may be smaller)."""
    batch: list[ChunkedPaper] = []
    chunks = 0
    for item in papers:
        batch.append(item)
        chunks += len(item[1])
        if chunks >= size:
            yield batch
            batch, chunks = [], 0
    if batch:
        yield batch


class HashEmbedder:
    """A deterministic stand-in embedder, NOT a language model: each stemmed content word (the assistant's own
    tokenizer and stemmer) adds +1 or -1 to one of `dim` buckets chosen by CRC-32; the sum is L2-normalised.

    Texts sharing words get close vectors, so nearest-neighbour search has real structure to find, at a few
    microseconds a text. It implements the Embedder protocol (assistant/index/embed.py).
    """

    def __init__(self, dim: int = 384) -> None:
        self.name = f"scale-bench-hash-{dim} (not a language model)"
        self._dim = dim
        # word -> (bucket, sign), or None for a stopword: stemming each distinct word once keeps a text at ~0.1 ms
        self._buckets: dict[str, tuple[int, float] | None] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def _bucket(self, word: str) -> tuple[int, float] | None:
        if word not in self._buckets:
            stem = next(iter(stems(word)), None)
            h = zlib.crc32(stem.encode()) if stem else 0
            self._buckets[word] = (h % self._dim, 1.0 if (h >> 20) & 1 else -1.0) if stem else None
        return self._buckets[word]

    def embed_query(self, text: str) -> list[float]:
        hits = [b for b in map(self._bucket, set(words(text))) if b is not None]
        vector = np.zeros(self._dim)
        if hits:
            index, sign = zip(*hits, strict=True)
            vector = np.asarray(np.bincount(index, weights=sign, minlength=self._dim), dtype=np.float64)
        if not vector.any():  # no content word: a fixed unit vector, since Chroma's cosine of a zero vector is undefined
            vector[0] = 1.0
        out: list[float] = vectors.unit(vector).tolist()
        return out


def llama_embedding(embedder: HashEmbedder) -> Any:
    """A llama-index BaseEmbedding giving exactly the hashing embedder's vectors."""
    from llama_index.core.embeddings import BaseEmbedding

    class HashEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.embed_query(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return embedder.embed_query(text)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return embedder.embed_query(query)

    return HashEmbedding(model_name=embedder.name)


def llamaindex_retriever(collection: Any, embedder: HashEmbedder, top_k: int) -> Any:
    """llama-index's dense retriever over a chromadb collection of ours, with the same hashing embedder."""
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    vector_store = ChromaVectorStore(chroma_collection=collection)
    index = VectorStoreIndex.from_vector_store(vector_store, embed_model=llama_embedding(embedder))
    return index.as_retriever(similarity_top_k=top_k)


# -- stores -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One store under test: its settings, the folder Chroma keeps its data in, and the server's pid if any."""

    settings: Settings
    data: Path
    server_pid: int | None


def disk_mb(folder: Path) -> float:
    """Space the folder's files take on disk (allocated blocks, like du), in MiB."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_blocks * 512
    return round(total / 2**20, 1)


def process_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssistantError(f"`chroma run` exited with {proc.returncode} before listening on port {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssistantError(f"`chroma run` did not listen on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def site_for(base: Settings, mode: str, folder: Path) -> Iterator[Site]:
    """A fresh store in `folder`: embedded, or a `chroma run` server started for it and stopped afterwards."""
    update: dict[str, Any] = {"chroma_path": folder / "chroma", "index_dir": folder / "index", "collection": "scale"}
    if mode == "embedded":
        yield Site(base.model_copy(update={**update, "chroma_host": None}), folder / "chroma", None)
        return
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    port, data = free_port(), folder / "server-db"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, proc)
            yield Site(base.model_copy(update={**update, "chroma_host": "127.0.0.1", "chroma_port": port}), data, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
