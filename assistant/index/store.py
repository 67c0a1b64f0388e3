"""Chroma store of chunks: embedded or over HTTP, cosine space, per-paper atomic writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from assistant.config import Settings
from assistant.errors import ModelMismatchError, StoreError
from assistant.index.changelog import KEEP_REVISIONS, Change, Changelog
from assistant.index.records import passage_of
from assistant.models import Chunk, Paper, Passage

# llama-index's ChromaVectorStore hides collection metadata, batch limits and where-filtered gets,
# all of which idempotent per-paper sync needs, so the store talks to chromadb directly.

T = TypeVar("T")


def unreachable_message(host: str, port: int | str) -> str:
    """The one line shown when the Chroma server does not answer."""
    return (
        f"Chroma server at {host}:{port} is unreachable; start it with "
        f"`chroma run --path DIR --port {port}` or unset ASSISTANT_CHROMA_HOST"
    )


def _unreachable(exc: BaseException) -> bool:
    """Whether a chromadb call failed because the server did not answer (refused, reset, timed out)."""
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def _missing(exc: BaseException) -> bool:
    """Whether a chromadb call failed because the collection (or its id) is unknown to the server."""
    return "NotFound" in type(exc).__name__ or "does not exist" in str(exc)


def open_client(settings: Settings) -> Any:
    """A Chroma client for the settings: embedded by default, HTTP when a host is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        try:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
            client.heartbeat()
        except Exception:
            raise StoreError(unreachable_message(settings.chroma_host, settings.chroma_port)) from None
        return client
    try:
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    except Exception as exc:
        raise StoreError(f"cannot open the Chroma store at {settings.chroma_path}: {exc}") from None


@dataclass(frozen=True)
class PaperState:
    """What the store holds for one paper."""

    paper_id: str
    content_hash: str
    n_chunks: int
    complete: bool


def paper_metadata(paper: Paper, content_hash: str, n_chunks: int) -> dict[str, Any]:
    """Metadata stored on each chunk of a paper; Chroma accepts only scalars, so lists become strings."""
    meta: dict[str, Any] = {
        "paper_id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "hash": content_hash,
        "n_chunks": n_chunks,
    }
    if paper.year is not None:
        meta["year"] = paper.year
    if paper.authors:
        meta["authors"] = "; ".join(paper.authors)
    if paper.url:
        meta["url"] = paper.url
    if paper.categories:
        meta["categories"] = " ".join(paper.categories)
    if paper.source:
        meta["source"] = paper.source
    return meta


class ChunkStore:
    """One Chroma collection of chunks, bound to the embedding model that built it."""

    def __init__(self, client: Any, name: str, model: str, dim: int, *, create: bool = True, ef_search: int = 100) -> None:  # noqa: PLR0913
        self.client = client
        self.name = name
        self.model = model
        self.dim = dim
        try:
            if create:
                self.collection = client.get_or_create_collection(
                    name,
                    metadata={"embedding_model": model, "embedding_dim": dim, "revision": 0},
                    configuration={"hnsw": {"space": "cosine", "ef_search": ef_search}},  # ef: used by new collections only
                    embedding_function=None,
                )
            else:
                self.collection = client.get_collection(name, embedding_function=None)
        except StoreError:
            raise
        except Exception as exc:
            if _unreachable(exc):
                raise self._error("opening the collection", exc) from None
            if "does not exist" in str(exc) or "NotFound" in type(exc).__name__:
                raise StoreError(f"collection {name!r} does not exist; run `python -m ingest` first") from None
            raise StoreError(f"cannot open collection {name!r}: {exc}") from None
        meta = self.collection.metadata or {}
        built_with, built_dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if built_with and (built_with != model or (dim and built_dim and built_dim != dim)):
            raise ModelMismatchError(
                f"collection {name!r} was built with embedding model {built_with!r} ({built_dim} dims) "
                f"but {model!r} is configured; set ASSISTANT_EMBEDDING_MODEL={built_with} or re-ingest into a new "
                f"collection with `python -m ingest --collection NEW_NAME`"
            )

    @property
    def collection_id(self) -> str:
        """The collection's id: a collection deleted and created again under the same name gets a new one."""
        return str(self.collection.id)

    def close(self) -> None:
        """Release the client, so another process may open an embedded store after this one."""
        close = getattr(self.client, "close", None)
        if callable(close):
            close()

    # -- failures ----------------------------------------------------------------------------

    def _error(self, action: str, exc: BaseException) -> StoreError:
        """One clear line for a failed chromadb call."""
        settings = self.client.get_settings() if hasattr(self.client, "get_settings") else None
        host, port = getattr(settings, "chroma_server_host", None), getattr(settings, "chroma_server_http_port", None)
        if _unreachable(exc):
            if host:
                return StoreError(f"{unreachable_message(host, port or '')} (while {action})")
            return StoreError(f"the Chroma store did not answer while {action}: {type(exc).__name__}")
        if _missing(exc):
            return StoreError(f"collection {self.name!r} no longer exists; run `python -m ingest` to rebuild it")
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return StoreError(f"{action} in collection {self.name!r} failed: {detail}")

    def _call(self, action: str, fn: Callable[[Any], T]) -> T:
        """fn(collection) with chromadb failures turned into StoreError.

        After a failure that a restarted server explains (a dropped connection, or a collection id the server
        no longer knows because the collection was re-created), the collection is fetched again by name and
        the call retried once; a server that is still down gives the unreachable message.
        """
        try:
            return fn(self.collection)
        except StoreError:
            raise
        except Exception as exc:
            if not (_unreachable(exc) or _missing(exc)):
                raise self._error(action, exc) from None
        try:
            self.collection = self.client.get_collection(self.name, embedding_function=None)
            return fn(self.collection)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(action, exc) from None

    # -- reading -----------------------------------------------------------------------------

    def count(self) -> int:
        """Number of chunks stored."""
        return int(self._call("counting chunks", lambda c: c.count()))

    @property
    def revision(self) -> int:
        """Bumped after every write, so derived indexes know when they are stale."""
        return int(self._metadata().get("revision", 0))

    def _metadata(self) -> dict[str, Any]:
        """The collection's metadata as the server holds it now (a handle's copy goes stale)."""

        def fetch(_collection: Any) -> Any:
            return self.client.get_collection(self.name, embedding_function=None).metadata

        return dict(self._call("reading the metadata", fetch) or {})

    def _pages(self, include: list[str], where: dict[str, Any] | None = None, page: int = 5000) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            got = self._call("reading chunks", lambda c: c.get(include=include, where=where, limit=page, offset=offset))  # noqa: B023
            if not got["ids"]:
                return
            yield got
            if len(got["ids"]) < page:
                return
            offset += page

    def paper_states(self) -> dict[str, PaperState]:
        """Each stored paper's hash, and whether all its chunks are there with that hash."""
        seen: dict[str, list[tuple[int, str, int]]] = {}
        for got in self._pages(["metadatas"]):
            for chunk_id, meta in zip(got["ids"], got["metadatas"], strict=True):
                pid = str(meta.get("paper_id", chunk_id.rsplit(":", 1)[0]))
                seen.setdefault(pid, []).append((int(meta.get("n", -1)), str(meta.get("hash", "")), int(meta.get("n_chunks", 0))))
        states: dict[str, PaperState] = {}
        for pid, rows in seen.items():
            hashes = {h for _, h, _ in rows}
            n_chunks = rows[0][2]
            numbers = sorted(n for n, _, _ in rows)
            complete = len(hashes) == 1 and numbers == list(range(n_chunks)) and all(c == n_chunks for *_, c in rows)
            states[pid] = PaperState(pid, rows[0][1], n_chunks, complete)
        return states

    def iter_chunks(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every stored chunk as (id, document, metadata)."""
        for got in self._pages(["documents", "metadatas"]):
            yield from zip(got["ids"], got["documents"], got["metadatas"], strict=True)

    def papers(self) -> list[dict[str, Any]]:
        """One metadata dict per stored paper (from its first chunk)."""
        out = []
        for got in self._pages(["metadatas"], where={"n": 0}):
            out.extend(got["metadatas"])
        return sorted(out, key=lambda m: str(m.get("title", "")).casefold())

    def get(self, ids: Sequence[str]) -> list[Passage]:
        """Chunks by id; ids no longer stored are left out."""
        if not ids:
            return []
        # The chunk's text is in its metadata (the document adds the title for embedding), so documents are
        # read only for chunks written without it.
        got = self._call("reading chunks", lambda c: c.get(ids=list(ids), include=["metadatas"]))
        metas = dict(zip(got["ids"], got["metadatas"], strict=True))
        bare = [i for i, m in metas.items() if not m or "text" not in m]
        documents: dict[str, str | None] = {}
        if bare:
            more = self._call("reading chunks", lambda c: c.get(ids=bare, include=["documents"]))
            documents = dict(zip(more["ids"], more["documents"], strict=True))
        return [passage_of(i, documents.get(i), metas[i], 0.0) for i in ids if i in metas]

    def query(self, embedding: Sequence[float], n: int, where: dict[str, Any] | None = None) -> list[Passage]:
        """Nearest chunks by cosine similarity (1 - distance), best first."""
        count = self.count()
        if count == 0:
            return []
        got = self._call(
            "searching",
            lambda c: c.query(
                query_embeddings=[list(embedding)],
                n_results=min(n, count),
                where=where,
                include=["documents", "metadatas", "distances"],
            ),
        )
        rows = zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True)
        return [passage_of(i, d, m, 1.0 - float(dist), dense=1.0 - float(dist)) for i, d, m, dist in rows]

    def nearest(self, embedding: Sequence[float], n: int) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity only; skipping metadata keeps the hot path fast."""
        try:
            got = self._call(
                "searching", lambda c: c.query(query_embeddings=[list(embedding)], n_results=n, include=["distances"])
            )
        except StoreError:
            if self.count() == 0:  # Chroma refuses n_results on an empty collection
                return []
            raise
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0], strict=True)]

    # -- writing -----------------------------------------------------------------------------

    def write_papers(self, items: Sequence[tuple[Paper, str, Sequence[Chunk], Sequence[str], Sequence[Sequence[float]]]]) -> int:
        """Upsert papers as (paper, hash, chunks, documents, embeddings); a paper never spans two calls."""
        limit = max(1, int(self._call("reading the batch limit", lambda _c: self.client.get_max_batch_size())))
        batch: dict[str, list[Any]] = {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
        written = 0
        for paper, digest, chunks, documents, vectors in items:
            if batch["ids"] and len(batch["ids"]) + len(chunks) > limit:
                self._upsert(batch)
                batch = {key: [] for key in batch}
            base = paper_metadata(paper, digest, len(chunks))
            for chunk, doc, vec in zip(chunks, documents, vectors, strict=True):
                batch["ids"].append(chunk.id)
                batch["documents"].append(doc)
                batch["metadatas"].append({**base, "n": chunk.n, "spans": json.dumps(chunk.spans), "text": chunk.text})
                batch["embeddings"].append(list(vec))
            written += len(chunks)
        if batch["ids"]:
            self._upsert(batch)
        self._drop_extra_chunks({p.id: len(c) for p, _, c, _, _ in items})
        return written

    def _upsert(self, batch: dict[str, list[Any]]) -> None:
        self._call("writing chunks", lambda c: c.upsert(**batch))

    def _drop_extra_chunks(self, counts: dict[str, int]) -> None:
        """Remove chunks left from an older, longer version of a paper."""
        ids = list(counts)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            got = self._call("reading chunks", lambda c: c.get(where={"paper_id": {"$in": part}}, include=["metadatas"]))  # noqa: B023
            rows = zip(got["ids"], got["metadatas"], strict=True)
            extra = [cid for cid, meta in rows if int(meta.get("n", 0)) >= counts[str(meta["paper_id"])]]
            if extra:
                self._call("deleting chunks", lambda c: c.delete(ids=extra))  # noqa: B023

    def delete_papers(self, paper_ids: Sequence[str]) -> None:
        """Remove every chunk of these papers."""
        ids = list(paper_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            self._call("deleting papers", lambda c: c.delete(where={"paper_id": {"$in": part}}))  # noqa: B023

    def chunk_ids(self, paper_ids: Sequence[str]) -> list[str]:
        """Ids of every stored chunk of these papers."""
        ids, out = list(paper_ids), []
        for i in range(0, len(ids), 500):
            where = {"paper_id": {"$in": ids[i : i + 500]}}
            out += self._call("reading chunks", lambda c: c.get(where=where, include=[]))["ids"]  # noqa: B023
        return out

    def chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """Stored (document, metadata) by chunk id, both in one call; ids no longer stored are left out."""
        ids, out = list(ids), dict[str, tuple[str, dict[str, Any] | None]]()
        for i in range(0, len(ids), 1000):
            got = self._call("reading chunks", lambda c: c.get(ids=ids[i : i + 1000], include=["documents", "metadatas"]))  # noqa: B023
            rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            out.update((cid, (doc or "", meta)) for cid, doc, meta in rows)
        return out

    def changes_since(self, revision: int, current: int) -> Change | None:
        """Chunks written and removed after `revision`; None when the changelog does not reach back that far."""
        log, owner = Changelog(self.client, self.name), self.collection_id
        return self._call("reading the changelog", lambda _c: log.since(owner, revision, current))

    def bump_revision(self, change: Change | None = None, *, done: bool = True) -> None:
        """Mark the collection as changed, recording what changed first (None: unknown, readers rebuild). A writer
        records when it starts (done=False) and when done; both carry an earlier writer's ids if it was killed."""
        meta, owner, log = self._metadata(), self.collection_id, Changelog(self.client, self.name)
        revision = int(meta.get("revision", 0)) + 1
        if change is not None:
            change = change | self._call("reading the changelog", lambda _c: log.pending(owner, revision - 1))
        self._call("recording the change", lambda _c: log.record(change, revision, owner, "done" if done else "intent"))
        meta["revision"] = revision
        self._call("bumping the revision", lambda c: c.modify(metadata=meta))
        if done:
            self._call("pruning the changelog", lambda _c: log.prune(owner, revision - KEEP_REVISIONS))
        _bump_local()


_local_bumps = [0]  # revisions this process has bumped, on any store: readers skip the wait on their own writes


def _bump_local() -> None:
    _local_bumps[0] += 1


def local_bumps() -> int:
    """How many times this process has bumped a collection's revision."""
    return _local_bumps[0]


def open_store(settings: Settings, model: str, dim: int, *, create: bool = True) -> ChunkStore:
    """Open (or create) the configured collection."""
    return ChunkStore(open_client(settings), settings.collection, model, dim, create=create, ef_search=settings.hnsw_ef_search)


def existing_store(settings: Settings, model: str, dim: int) -> ChunkStore | None:
    """The configured collection when it already exists, else None; creates nothing (for dry runs)."""
    if not settings.chroma_host and not (settings.chroma_path / "chroma.sqlite3").is_file():
        return None  # opening an embedded client would create the store folder
    client = open_client(settings)
    try:
        names = {getattr(c, "name", c) for c in client.list_collections()}
    except Exception as exc:
        raise StoreError(f"cannot list the collections of the Chroma store: {exc}") from None
    if settings.collection not in names:
        return None
    return ChunkStore(client, settings.collection, model, dim, create=False)
