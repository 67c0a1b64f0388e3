"""MiniLM exported once to ONNX (at install, by `python -m assistant.index.onnx_export`), run with onnxruntime.

A query then needs only onnxruntime and the tokenizers library: no torch, transformers or sentence-transformers
import, which is most of a cold start. The exported graph is the whole sentence-transformers pipeline (transformer,
mean pooling, normalisation), so its output is the finished vector.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from assistant.index.embed import Pieces

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"
# The transformer's last hidden state before pooling: one vector per word piece, for token-level matching.
PIECES = "token_embeddings"
# What an export is checked against, at export time and in the tests: 1 - cosine to sentence-transformers' vector.
MAX_COSINE_GAP = 1e-5
# Padded tokens per batch; about 10 ingest chunks or 40 abstract sentences.
TOKEN_BUDGET = 2048


def export_dir() -> Path:
    """Exports live in the environment they were made for, so a new virtualenv never reuses a stale one."""
    return Path(sys.prefix) / "share" / "paper-assistant" / "onnx"


def weights_file(model_path: Path) -> Path | None:
    """The model's weights file, whose size and modification time tie an export to it."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_path / name).is_file():
            return model_path / name
    return None


def fingerprint(model_path: Path) -> dict[str, Any]:
    """What must not have changed since the export: the model folder and its weights."""
    weights = weights_file(model_path)
    stat = weights.stat() if weights else None
    return {
        "model_path": str(model_path.resolve()),
        "weights_size": stat.st_size if stat else None,
        "weights_mtime_ns": stat.st_mtime_ns if stat else None,
    }


def export_paths(model_path: Path, folder: Path | None = None) -> tuple[Path, Path]:
    """The .onnx file and its .json description for a model folder."""
    key = hashlib.sha1(str(model_path.resolve()).encode()).hexdigest()[:16]
    base = (folder or export_dir()) / f"{model_path.name}-{key}"
    return base.with_suffix(".onnx"), base.with_suffix(".json")


@dataclass(frozen=True)
class ExportInfo:
    """How the exported graph expects its input: what the sentence-transformers tokenizer call did."""

    max_length: int
    pad_id: int
    pieces: bool = False  # the graph has the PIECES output (exports before 2026-12 do not)


class OnnxEncoder:
    """Texts to unit vectors through the exported graph; safe to share between threads.

    The tokenizer's truncation is set once here and never changed, so concurrent calls cannot rewrite each
    other's settings (onnxruntime's run() is itself thread-safe).
    """

    def __init__(self, onnx_file: Path, tokenizer_file: Path, info: ExportInfo) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.info = info
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(info.max_length)
        self._tokenizer.no_padding()  # padded per batch in _run
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: the CPUs are shared with Chroma, streamlit and other queries.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """One row per text, in order."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([vector for vector, _ in self._batched(list(texts), batch_size, [OUTPUT])])

    def encode_with_pieces(self, texts: Sequence[str], batch_size: int = 64) -> tuple[npt.NDArray[np.float32], list[Pieces]]:
        """The sentence vectors of `encode` and, from the same pass, each text's word pieces (needs `info.pieces`)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), []
        encodings = self._tokenizer.encode_batch(list(texts))
        rows = self._batched(list(texts), batch_size, [OUTPUT, PIECES], encodings)
        pieces = []
        for e, (_, hidden) in zip(encodings, rows, strict=True):
            keep = [i for i, special in enumerate(e.special_tokens_mask) if not special]
            pieces.append(Pieces.of(tuple(e.tokens[i] for i in keep), hidden[keep]))
        return np.stack([vector for vector, _ in rows]), pieces

    def _batched(
        self, texts: list[str], batch_size: int, outputs: list[str], encodings: list[Any] | None = None
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """Per text, in order: its sentence vector and (when asked for) its unpadded hidden states.

        Batches group texts of similar token length and stop at TOKEN_BUDGET padded tokens, so that one long
        sentence does not make fifty short ones pay for its padding (most of the cost of a mixed batch).
        """
        ids = [e.ids for e in (encodings or self._tokenizer.encode_batch(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        empty = np.empty(0, dtype=np.float32)
        rows: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = [(empty, empty)] * len(ids)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < batch_size and (end - start + 1) * len(ids[order[end]]) <= TOKEN_BUDGET:
                end += 1
            part = order[start:end]
            got = self._run([ids[i] for i in part], outputs)
            for j, i in enumerate(part):
                rows[i] = (got[0][j], got[1][j, : len(ids[i])] if len(got) > 1 else empty)
            start = end
        return rows

    def _run(self, ids: list[list[int]], outputs: list[str]) -> list[npt.NDArray[np.float32]]:
        width = max(len(x) for x in ids)
        tokens = np.full((len(ids), width), self.info.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, x in enumerate(ids):
            tokens[row, : len(x)] = x
            mask[row, : len(x)] = 1
        out: list[npt.NDArray[np.float32]] = self._session.run(outputs, {"input_ids": tokens, "attention_mask": mask})
        return out


def load_encoder(model_path: Path, folder: Path | None = None) -> OnnxEncoder | None:
    """The exported model for this folder, or None (with the reason logged) when there is none or it is stale."""
    onnx_file, meta_file = export_paths(model_path, folder)
    if not onnx_file.is_file() or not meta_file.is_file():
        log.info("no ONNX export of %s at %s; using sentence-transformers", model_path, onnx_file)
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("fingerprint") != fingerprint(model_path):
            log.warning("%s was exported from other weights than %s holds; using sentence-transformers", onnx_file, model_path)
            return None
        info = ExportInfo(int(meta["max_length"]), int(meta["pad_id"]), PIECES in meta.get("outputs", []))
        return OnnxEncoder(onnx_file, model_path / "tokenizer.json", info)
    except ImportError as exc:
        # An ImportError without a module name (a library that failed to load) is logged with its own message.
        missing = f"{exc.name} is not installed" if exc.name else f"the runtime failed to import ({exc})"
        log.warning("ONNX export present but %s; using sentence-transformers", missing)
    except Exception as exc:  # a damaged export must never stop a query: the torch path gives the same vectors
        log.warning("ONNX export %s unusable (%s: %s); using sentence-transformers", onnx_file, type(exc).__name__, exc)
    return None
