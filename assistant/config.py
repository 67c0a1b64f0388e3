"""The one settings object, read from the environment and `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob of the assistant; built at the entry points and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        populate_by_name=True,
    )

    # Store
    chroma_path: Path = Field(Path(".chroma"), description="Folder of the embedded Chroma store.")
    chroma_host: str | None = Field(None, description="Chroma server host; when set, use HTTP instead of the embedded store.")
    chroma_port: int = Field(8000, description="Chroma server port.")
    collection: str = Field("papers", description="Chroma collection holding the chunks.")
    index_dir: Path = Field(Path(".assistant-index"), description="Folder for the persisted BM25 index.")

    # Embedding
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="Embedding model: the packaged MiniLM, a local path, or a remote model name."
    )
    embedding_base_url: str | None = Field(
        None, description="OpenAI-compatible /v1 base URL for embeddings instead of the local model."
    )
    embedding_api_key: SecretStr | None = Field(None, description="API key for the embeddings endpoint.")
    embedding_batch_size: int = Field(64, description="Texts embedded per batch.")
    ingest_window: int = Field(
        512, description="Chunks embedded together, sorted by length so batches pad less, then written; a kill loses these."
    )

    # Chunking
    chunk_tokens: int = Field(160, description="Largest chunk size in tiktoken tokens (title excluded).")
    chunk_overlap: int = Field(32, description="Tokens of trailing sentences repeated at the start of the next chunk.")

    # LLM
    llm_base_url: str | None = Field(None, description="OpenAI-compatible /v1 base URL; unset means extractive answers.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM endpoint.")
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY"),
        description="API key for the LLM endpoint (falls back to OPENAI_API_KEY).",
    )
    llm_timeout: float = Field(60.0, description="Seconds to wait for the LLM before giving up on a request.")
    llm_max_retries: int = Field(3, description="Retries with backoff on 429 and 5xx answers.")
    llm_temperature: float = Field(0.1, description="Sampling temperature for answers.")
    context_window: int = Field(8192, description="Context window of the LLM in tokens.")
    max_answer_tokens: int = Field(700, description="Tokens reserved for the answer.")

    # Retrieval and answering
    top_k: int = Field(5, description="Papers used to answer ask and compare questions.")
    candidate_chunks: int = Field(100, description="Chunks taken from each of dense and BM25 search before fusion.")
    fusion: str = Field("weighted", description="Fusion of dense and BM25 rankings: weighted or rrf.")
    dense_weight: float = Field(0.5, description="Weight of the dense score in fusion (BM25 gets the rest).")
    chunks_per_paper: int = Field(1, description="Best chunks fetched with each retrieved paper (the best one sets its score).")
    summary_max_papers: int = Field(25, description="Most papers a summarise answer may cover.")
    summary_threshold: float = Field(0.4, description="Relative relevance a paper needs to be included in a summary.")
    refusal_threshold: float = Field(0.35, description="Best dense similarity below which the question is refused.")
    refusal_confident: float = Field(
        0.5, description="Best dense similarity from which no lexical check can refuse the question."
    )
    support_threshold: float = Field(0.45, description="Similarity an answer sentence needs to its cited sentences.")
    refusal_missing_terms: float = Field(
        0.4, description="Share of question terms absent from the best abstracts above which the question is refused."
    )
    cite_ratio: float = Field(0.6, description="Relative score a paper needs, against the best, to be cited in a short answer.")
    evidence_sentences: int = Field(3, description="Sentences of evidence taken from each paper.")

    # App
    feedback_path: Path = Field(Path("feedback.jsonl"), description="JSONL file where answer ratings are appended.")
    upload_max_mb: int = Field(20, description="Largest corpus upload accepted by the app, in MB.")
    log_level: str = Field("WARNING", description="Logging level.")

    @property
    def llm_configured(self) -> bool:
        """Whether answers come from an LLM rather than extractively."""
        return bool(self.llm_base_url)

    @property
    def server_mode(self) -> bool:
        """Whether the store is a Chroma server over HTTP."""
        return bool(self.chroma_host)


def env_example() -> str:
    """The text of `.env.example`: every setting with its description and default."""
    lines = [
        "# Every setting of the assistant, with its default. Copy to .env and edit.",
        "# Variables use the ASSISTANT_ prefix; the LLM key also falls back to OPENAI_API_KEY.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        lines.append(f"# {field.description}")
        lines.append(f"# ASSISTANT_{name.upper()}=" if default is None else f"ASSISTANT_{name.upper()}={default}")
        lines.append("")
    return "\n".join(lines)
