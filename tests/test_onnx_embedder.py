"""The ONNX export of MiniLM gives sentence-transformers' vectors, and anything wrong with it falls back to torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.index.embed import LocalEmbedder, packaged_model_path
from assistant.index.onnx_model import MAX_COSINE_GAP, export_paths, fingerprint, load_encoder
from assistant.text.sentences import sentence_spans
from ingest.loaders import load_path, sample_corpus_path

SENTENCES = [
    "Which work finds an optimizer by searching over programs?",
    "How do CoGEX and Think-and-Execute use pseudo-code differently?",
    "Ünïcödé — 数学 reasoning, émojis 🤖 and\ttabs",
    " ".join(["parameter-efficient fine-tuning of large language models"] * 80),  # past the 256 word-piece window
    "a",
    "",
    "   leading and trailing spaces   ",
    "BERT, RoBERTa & T5: 3 models (2019-2020) with 110M/355M/11B parameters.",
]


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export `make install` made, or a fresh one where it is missing (as on a checkout installed by hand)."""
    model = packaged_model_path()
    onnx_file, meta_file = export_paths(model)
    if onnx_file.is_file() and meta_file.is_file():
        return onnx_file.parent
    from assistant.index.onnx_export import export

    folder = tmp_path_factory.mktemp("onnx")
    export(model, folder)
    return folder


@pytest.mark.slow
def test_onnx_vectors_equal_sentence_transformers(onnx_folder: Path) -> None:
    """Queries one at a time and abstract sentences in batches: within 1e-5 cosine of sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    papers = load_path(sample_corpus_path()).papers[:12]
    sentences = SENTENCES + [p.abstract[s:e] for p in papers for s, e in sentence_spans(p.abstract)]
    reference = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True).encode(
        sentences, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    onnx = LocalEmbedder(onnx_folder=onnx_folder)
    assert onnx.backend == "onnx"
    assert onnx.max_tokens == 256
    batched = np.asarray(onnx.embed(sentences))
    queries = np.asarray([onnx.embed_query(s) for s in SENTENCES])
    torch_queries = np.asarray([LocalEmbedder(use_onnx=False).embed_query(s) for s in SENTENCES[:3]])
    for got, want in ((batched, reference), (queries, reference[: len(SENTENCES)]), (torch_queries, reference[:3])):
        gaps = 1.0 - np.sum(got * want, axis=1)
        assert float(np.max(np.abs(gaps))) < MAX_COSINE_GAP, sentences[int(np.argmax(np.abs(gaps)))]
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def _copy_export(onnx_folder: Path, to: Path) -> tuple[Path, Path]:
    onnx_file, meta_file = export_paths(packaged_model_path(), onnx_folder)
    copies = export_paths(packaged_model_path(), to)
    shutil.copyfile(onnx_file, copies[0])
    shutil.copyfile(meta_file, copies[1])
    return copies


def test_missing_export_means_torch(tmp_path: Path) -> None:
    embedder = LocalEmbedder(onnx_folder=tmp_path)
    assert embedder.backend == "torch"
    assert load_encoder(packaged_model_path(), tmp_path) is None


def test_stale_or_damaged_export_is_not_used(tmp_path: Path, onnx_folder: Path) -> None:
    """An export of other weights, or a truncated file, is passed over (logged), never a wrong vector or a crash."""
    model = packaged_model_path()
    onnx_file, meta_file = _copy_export(onnx_folder, tmp_path)
    assert load_encoder(model, tmp_path) is not None
    meta = json.loads(meta_file.read_text())
    meta["fingerprint"] = {**fingerprint(model), "weights_size": 1}
    meta_file.write_text(json.dumps(meta))
    assert load_encoder(model, tmp_path) is None
    meta["fingerprint"] = fingerprint(model)
    meta_file.write_text(json.dumps(meta))
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    assert load_encoder(model, tmp_path) is None
    assert LocalEmbedder(onnx_folder=tmp_path).backend == "torch"


@pytest.mark.slow
def test_word_pieces_equal_torch(onnx_folder: Path) -> None:
    """The export's word pieces (batched) are the torch transformer's, token for token, within float16 precision."""
    onnx, torch_path = LocalEmbedder(onnx_folder=onnx_folder), LocalEmbedder(use_onnx=False)
    got_vectors, got = onnx.embed_with_pieces(SENTENCES)
    want_vectors, want = torch_path.embed_with_pieces(SENTENCES)
    assert np.abs(np.asarray(got_vectors) - np.asarray(onnx.embed(SENTENCES))).max() < 1e-6
    assert np.abs(np.asarray(got_vectors) - np.asarray(want_vectors)).max() < 1e-5
    assert got[0].tokens[:3] == ("which", "work", "finds") and got[5].tokens == ()
    for a, b in zip(got, want, strict=True):
        assert a.tokens == b.tokens and a.vectors.shape == (len(a.tokens), 384)
        assert np.abs(a.vectors.astype(np.float32) - b.vectors.astype(np.float32)).max(initial=0.0) < 2e-3


def test_export_without_word_pieces_falls_back_to_torch(tmp_path: Path, onnx_folder: Path) -> None:
    """An export made before the word-piece output still serves sentence vectors; word pieces then come from torch."""
    _, meta_file = _copy_export(onnx_folder, tmp_path)
    meta = json.loads(meta_file.read_text())
    meta.pop("outputs", None)
    meta_file.write_text(json.dumps(meta))
    embedder = LocalEmbedder(onnx_folder=tmp_path)
    assert embedder.backend == "onnx"
    vectors, pieces = embedder.embed_with_pieces(["What is B4?"])
    assert pieces[0].tokens == ("what", "is", "b", "##4", "?")
    assert np.abs(np.asarray(vectors[0]) - np.asarray(embedder.embed_query("What is B4?"))).max() < 1e-5


def test_a_runtime_that_fails_to_import_is_named_in_one_line(
    tmp_path: Path, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing package is named; a library that fails to load (an ImportError with no module name) says why."""
    import assistant.index.onnx_model as onnx_model

    _copy_export(onnx_folder, tmp_path)
    missing = ImportError("No module named 'onnxruntime'", name="onnxruntime")
    unloadable = ImportError("libonnxruntime.so: cannot open shared object file")
    for error, said in ((missing, "onnxruntime is not installed"), (unloadable, "cannot open shared object file")):

        def fail(*_: object, error: ImportError = error) -> None:
            raise error

        monkeypatch.setattr(onnx_model, "OnnxEncoder", fail)
        caplog.clear()
        with caplog.at_level("WARNING", logger="assistant.index.onnx_model"):
            assert load_encoder(packaged_model_path(), tmp_path) is None
        assert said in caplog.text and "None" not in caplog.text, caplog.text
