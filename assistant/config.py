"""The one settings object, read from the environment and `.env`."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
_URL = r"^https?://\S+$"
# Chroma's rule for collection names.
_COLLECTION = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,510})[A-Za-z0-9]$"


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
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")
    collection: str = Field("papers", pattern=_COLLECTION, description="Chroma collection holding the chunks.")
    index_dir: Path = Field(Path(".assistant-index"), description="Folder for the persisted BM25 index.")
    hnsw_ef_search: int = Field(
        800, ge=1, description="HNSW search breadth of collections created from now on: near-exact, so ingests rank alike."
    )

    # Embedding
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        min_length=1,
        description="Embedding model: the packaged MiniLM, a local path, or a remote model name.",
    )
    embedding_base_url: str | None = Field(
        None, pattern=_URL, description="OpenAI-compatible /v1 base URL for embeddings instead of the local model."
    )
    embedding_api_key: SecretStr | None = Field(None, description="API key for the embeddings endpoint.")
    embedding_batch_size: int = Field(64, ge=1, description="Texts embedded per batch.")
    ingest_window: int = Field(
        512, ge=1, description="Chunks embedded together, sorted by length so batches pad less, then written; a kill loses these."
    )

    # Chunking
    chunk_tokens: int = Field(160, ge=8, description="Largest chunk size in tiktoken tokens (title excluded).")
    chunk_overlap: int = Field(32, ge=0, description="Tokens of trailing sentences repeated at the start of the next chunk.")

    # LLM
    llm_base_url: str | None = Field(
        None, pattern=_URL, description="OpenAI-compatible /v1 base URL; unset means extractive answers."
    )
    llm_model: str = Field("gpt-4o-mini", min_length=1, description="Model name sent to the LLM endpoint.")
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY"),
        description="API key for the LLM endpoint (falls back to OPENAI_API_KEY).",
    )
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the LLM before giving up on a request.")
    llm_deadline: float = Field(
        120.0, gt=0, description="Seconds a whole answer may take, however steadily the LLM streams; the rest is cut."
    )
    llm_max_retries: int = Field(3, ge=0, le=20, description="Retries with backoff on 429 and 5xx answers.")
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature for answers.")
    context_window: int = Field(8192, ge=256, description="Context window of the LLM in tokens.")
    max_answer_tokens: int = Field(700, ge=1, description="Tokens reserved for the answer.")

    # Retrieval and answering
    top_k: int = Field(5, ge=1, description="Papers used to answer ask and compare questions.")
    candidate_chunks: int = Field(100, ge=1, description="Chunks taken from each of dense and BM25 search before fusion.")
    fusion: Literal["weighted", "rrf"] = Field("weighted", description="Fusion of dense and BM25 rankings: weighted or rrf.")
    dense_weight: Share = Field(0.5, description="Weight of the dense score in fusion (BM25 gets the rest).")
    paper_lexical_share: Share = Field(
        0.0, description="Share of the BM25 weight given to BM25 over whole papers; the rest goes to BM25 over chunks."
    )
    chunks_per_paper: int = Field(
        1, ge=1, description="Best chunks fetched with each retrieved paper (the best one sets its score)."
    )
    summary_max_papers: int = Field(25, ge=1, description="Most papers a summarise answer may cover.")
    support_threshold: Share = Field(0.45, description="Similarity an answer sentence needs to its cited sentences.")
    evidence_sentences: int = Field(3, ge=1, description="Sentences of evidence taken from each paper.")

    # App
    feedback_path: Path = Field(Path("feedback.jsonl"), description="JSONL file where answer ratings are appended.")
    upload_max_mb: int = Field(20, ge=1, le=4096, description="Largest corpus upload accepted by the app, in MB.")
    log_level: LogLevel = Field("WARNING", description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"ASSISTANT_CHUNK_OVERLAP must be smaller than ASSISTANT_CHUNK_TOKENS (got {self.chunk_overlap} and "
                f"{self.chunk_tokens})"
            )
        if self.max_answer_tokens >= self.context_window:
            raise ValueError(
                f"ASSISTANT_MAX_ANSWER_TOKENS must be smaller than ASSISTANT_CONTEXT_WINDOW (got {self.max_answer_tokens} "
                f"and {self.context_window})"
            )
        return self

    @property
    def llm_configured(self) -> bool:
        """Whether answers come from an LLM rather than extractively."""
        return bool(self.llm_base_url)

    @property
    def server_mode(self) -> bool:
        """Whether the store is a Chroma server over HTTP."""
        return bool(self.chroma_host)


_KINDS: dict[type, str] = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a path"}
_SHOWN_AS: dict[str, str] = {
    "collection": "3-512 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
    "embedding_base_url": "an http:// or https:// URL",
    "llm_base_url": "an http:// or https:// URL",
    "log_level": "one of " + ", ".join(LOG_LEVELS) + " (any case)",
}
# Values never echoed in an error: keys, and URLs that may carry credentials.
_HIDDEN = {"llm_api_key", "embedding_api_key", "llm_base_url", "embedding_base_url"}


def _bounds(metadata: list[Any]) -> str:
    limits = {
        type(m).__name__: getattr(m, "min_length", None) or getattr(m, type(m).__name__.lower())
        for m in metadata
        if isinstance(m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.MinLen)
    }
    if "MinLen" in limits:
        return "non-empty"
    ge, gt, le = (f"{limits[k]:g}" if k in limits else "" for k in ("Ge", "Gt", "Le"))
    if le:
        return f"between {ge} and {le}" if ge else f"<= {le}"
    return f">= {ge}" if ge else f"> {gt}" if gt else ""


def accepted(name: str) -> str:
    """What a setting accepts, in words: 'an integer >= 1', 'one of weighted, rrf'."""
    if name in _SHOWN_AS:
        return _SHOWN_AS[name]
    info = Settings.model_fields[name]
    union = typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
    kinds = [t for t in typing.get_args(info.annotation) if t is not type(None)] if union else [info.annotation]
    if typing.get_origin(kinds[0]) is Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(kinds[0]))
    if typing.get_origin(kinds[0]) is Annotated:
        kinds = [typing.get_args(kinds[0])[0]]
    kind = _KINDS.get(kinds[0], "text") if isinstance(kinds[0], type) else "text"
    bounds = _bounds(list(info.metadata))
    return "non-empty text" if bounds == "non-empty" else f"{kind} {bounds}" if bounds else kind


def _env_name(loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else ""
    return f"ASSISTANT_{name.upper()}" if name in Settings.model_fields else name


def setting_error(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """One line for every problem pydantic found: the variable, what it accepts, and what it got."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if not loc:  # a check across settings: its message names them
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        field = str(loc[0])
        shown = (names or {}).get(field, _env_name(loc))
        if field not in Settings.model_fields:
            problems.append(f"{shown}: {error['msg']}")
            continue
        got = "" if field in _HIDDEN else f" (got {error['input']!r})"
        problems.append(f"{shown} must be {accepted(field)}{got}")
    return "; ".join(problems)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, `.env` and `overrides`; a bad value raises ConfigError with one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(setting_error(exc)) from None


def with_options(settings: Settings, **options: Any) -> Settings:
    """`settings` with command-line options applied and checked; errors name the option (`--top-k`)."""
    try:
        return Settings.model_validate({**settings.model_dump(), **options})
    except ValidationError as exc:
        raise ConfigError(setting_error(exc, {name: f"--{name.replace('_', '-')}" for name in options})) from None


def env_example() -> str:
    """The text of `.env.example`: every setting with its description and default."""
    lines = [
        "# Every setting of the assistant, with its default. Copy to .env and edit.",
        "# Variables use the ASSISTANT_ prefix; the LLM key also falls back to OPENAI_API_KEY.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        lines.append(f"# {field.description} Accepts {accepted(name)}.")
        lines.append(f"# ASSISTANT_{name.upper()}=" if default is None else f"ASSISTANT_{name.upper()}={default}")
        lines.append("")
    return "\n".join(lines)
