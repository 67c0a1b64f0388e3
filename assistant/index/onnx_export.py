"""`python -m assistant.index.onnx_export`: export the packaged MiniLM to ONNX once, at install time (`make install`).

Uses torch's torch.export-based exporter (the TorchScript one is deprecated), then checks the graph under
onnxruntime against sentence-transformers on probe sentences, single and batched, and only then puts the file where
LocalEmbedder looks for it. Any failure leaves no file behind, and queries keep using sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.index.embed import is_mean_pooled
from assistant.index.onnx_model import (
    INPUTS,
    MAX_COSINE_GAP,
    OUTPUT,
    PIECES,
    ExportInfo,
    OnnxEncoder,
    export_paths,
    fingerprint,
)

# Short, long (past the 256 word-piece window), non-Latin, empty: where tokenisation or padding could diverge.
PROBES = (
    "which work finds an optimizer by searching over programs?",
    "CoGEX versus Think-and-Execute",
    "Ünïcödé — 数学 reasoning, émojis 🤖 and\ttabs",
    " ".join(["parameter-efficient fine-tuning of large language models"] * 80),
    "a",
    "",
    "We propose a retrieval-augmented model that cites the sentences it uses, and evaluate it on SciFact claims.",
)


# Word-piece vectors are stored as float16 (about 1e-3 relative error per coordinate), so they are checked to that.
MAX_PIECE_GAP = 1e-3


def pooled_module(model: Any) -> Any:
    """The sentence-transformers pipeline (transformer, mean pooling, normalisation) as one torch module; it also
    returns the hidden states before pooling (the word pieces' vectors)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1), hidden

    return Pooled(model[0].auto_model).eval()


def export_info(model: Any) -> ExportInfo:
    """The tokenizer settings sentence-transformers uses, for the tokenizers library to repeat."""
    tokenizer = model.tokenizer
    return ExportInfo(int(model.max_seq_length), int(tokenizer.pad_token_id), pieces=True)


def write_graph(model: Any, target: Path) -> None:
    """Export with batch and sequence length dynamic."""
    import warnings

    import torch

    features = model.tokenizer(["a query to export", "and a longer sentence to export with"], return_tensors="pt", padding=True)
    tokens = {0: "batch", 1: "tokens"}
    axes = {"input_ids": tokens, "attention_mask": tokens, OUTPUT: {0: "batch"}, PIECES: tokens}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pooled_module(model),
            (features["input_ids"], features["attention_mask"]),
            str(target),
            input_names=list(INPUTS),
            output_names=[OUTPUT, PIECES],
            dynamic_axes=axes,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def worst_gap(encoder: OnnxEncoder, model: Any, texts: Sequence[str]) -> float:
    """Largest 1 - cosine between the export's vectors and sentence-transformers', one at a time and in one batch."""
    reference = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    single = np.stack([encoder.encode([t])[0] for t in texts])
    batched = encoder.encode(list(texts))
    gaps = [1.0 - float(np.dot(a, b)) for got in (single, batched) for a, b in zip(got, reference, strict=True)]
    return max(abs(g) for g in gaps)


def worst_piece_gap(encoder: OnnxEncoder, model: Any, texts: Sequence[str]) -> float:
    """Largest 1 - cosine between the export's word-piece vectors (batched) and the torch transformer's, text by text."""
    import torch

    _, pieces = encoder.encode_with_pieces(list(texts))
    gaps = [0.0]
    for text, got in zip(texts, pieces, strict=True):
        features = model.tokenizer([text], return_tensors="pt", truncation=True, max_length=model.max_seq_length)
        with torch.inference_mode():
            hidden = model[0].auto_model(**features).last_hidden_state[0, 1:-1].numpy()  # [CLS] and [SEP] dropped
        ref = hidden / np.linalg.norm(hidden, axis=1, keepdims=True)
        gaps.extend(1.0 - np.sum(ref * got.vectors.astype(np.float64), axis=1))
    return float(np.max(np.abs(gaps)))


def export(model_path: Path, folder: Path | None = None, probes: Sequence[str] = PROBES) -> Path:
    """Export, check and install the graph for the model folder; returns the .onnx path."""
    from sentence_transformers import SentenceTransformer

    onnx_file, meta_file = export_paths(model_path, folder)
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    if not is_mean_pooled(model):
        raise ValueError(f"{model_path}: not a plain transformer + mean pooling model")
    if not (model_path / "tokenizer.json").is_file():
        raise ValueError(f"{model_path}: no tokenizer.json for the tokenizers library")
    info = export_info(model)
    with tempfile.TemporaryDirectory(dir=onnx_file.parent) as tmp:
        staged = Path(tmp) / onnx_file.name
        write_graph(model, staged)
        encoder = OnnxEncoder(staged, model_path / "tokenizer.json", info)
        gap = worst_gap(encoder, model, probes)
        if gap > MAX_COSINE_GAP:
            raise ValueError(f"exported graph differs from sentence-transformers by {gap:.2e} cosine (limit {MAX_COSINE_GAP})")
        piece_gap = worst_piece_gap(encoder, model, probes)
        if piece_gap > MAX_PIECE_GAP:
            raise ValueError(f"exported word-piece vectors differ from torch's by {piece_gap:.2e} cosine (limit {MAX_PIECE_GAP})")
        meta = {"fingerprint": fingerprint(model_path), "max_length": info.max_length, "pad_id": info.pad_id}
        meta.update(checked_cosine_gap=gap, checked_piece_gap=piece_gap, outputs=[OUTPUT, PIECES])
        meta_file.unlink(missing_ok=True)  # a graph without its description is never loaded
        os.replace(staged, onnx_file)
    meta_file.write_text(json.dumps(meta, indent=1))
    return onnx_file


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.config import DEFAULT_EMBEDDING_MODEL, Settings
    from assistant.index.embed import packaged_model_path
    from assistant.runtime import prepare_runtime

    p = argparse.ArgumentParser(prog="python -m assistant.index.onnx_export", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=DEFAULT_EMBEDDING_MODEL, help="the packaged MiniLM (default) or a local folder")
    args = p.parse_args(argv)
    prepare_runtime(Settings(_env_file=None))
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes, irrelevant here
    path = packaged_model_path() if args.model == DEFAULT_EMBEDDING_MODEL else Path(args.model)
    try:
        target = export(path)
    except Exception as exc:  # install goes on without it: queries then use sentence-transformers
        print(f"warning: ONNX export of {path} failed ({type(exc).__name__}: {exc}); queries will load torch", file=sys.stderr)
        return 1
    print(f"exported {path.name} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
