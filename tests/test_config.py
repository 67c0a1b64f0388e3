"""Settings: every one documented in .env.example, secrets hidden, env and .env honoured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.config import Settings, env_example
from tests.conftest import ROOT


def test_env_example_lists_every_setting_with_a_description() -> None:
    text = (ROOT / ".env.example").read_text()
    regenerate = "python -c 'from assistant.config import env_example; print(env_example(), end=\"\")' > .env.example"
    assert text == env_example(), f"regenerate with: {regenerate}"
    listed = set(re.findall(r"^#? ?ASSISTANT_([A-Z_]+)=", text, re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields == listed
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"


def test_env_file_and_prefix_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("ASSISTANT_COLLECTION=from-dotenv\nASSISTANT_TOP_K=7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSISTANT_COLLECTION", raising=False)
    monkeypatch.setenv("ASSISTANT_TOP_K", "9")
    settings = Settings()
    assert settings.collection == "from-dotenv"
    assert settings.top_k == 9  # the environment wins over .env


def test_llm_key_falls_back_to_openai_api_key_and_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSISTANT_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-config-1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-canary-config-1"
    assert "sk-canary-config-1" not in repr(settings) and "sk-canary-config-1" not in str(settings)


def test_defaults_are_offline() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert not settings.llm_configured and not settings.server_mode
    assert settings.embedding_base_url is None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASSISTANT_TOP_K", "abc", "ASSISTANT_TOP_K must be an integer >= 1 (got 'abc')"),
        ("ASSISTANT_TOP_K", "0", "ASSISTANT_TOP_K must be an integer >= 1 (got '0')"),
        ("ASSISTANT_SUMMARY_MAX_PAPERS", "0", "ASSISTANT_SUMMARY_MAX_PAPERS must be an integer >= 1 (got '0')"),
        ("ASSISTANT_CANDIDATE_CHUNKS", "0", "ASSISTANT_CANDIDATE_CHUNKS must be an integer >= 1 (got '0')"),
        ("ASSISTANT_LOG_LEVEL", "bogus", "ASSISTANT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ASSISTANT_SUPPORT_THRESHOLD", "1.5", "ASSISTANT_SUPPORT_THRESHOLD must be a number between 0 and 1 (got '1.5')"),
        ("ASSISTANT_FUSION", "max", "ASSISTANT_FUSION must be one of weighted, rrf (got 'max')"),
        ("ASSISTANT_CHROMA_PORT", "70000", "ASSISTANT_CHROMA_PORT must be an integer between 1 and 65535"),
        ("ASSISTANT_LLM_TIMEOUT", "0", "ASSISTANT_LLM_TIMEOUT must be a number > 0"),
        ("ASSISTANT_CHUNK_OVERLAP", "500", "ASSISTANT_CHUNK_OVERLAP must be smaller than ASSISTANT_CHUNK_TOKENS"),
        ("ASSISTANT_COLLECTION", "a", "ASSISTANT_COLLECTION must be 3-512 letters"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_range(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    from assistant.config import load_settings
    from assistant.errors import ConfigError

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_log_level_is_case_insensitive_and_keys_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.config import load_settings, with_options
    from assistant.errors import ConfigError

    monkeypatch.setenv("ASSISTANT_LOG_LEVEL", "debug")
    assert load_settings(_env_file=None).log_level == "DEBUG"
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", "ftp://user:sk-canary-config-2@host")
    with pytest.raises(ConfigError, match="ASSISTANT_LLM_BASE_URL must be an http") as info:
        load_settings(_env_file=None)
    assert "sk-canary-config-2" not in str(info.value)
    monkeypatch.delenv("ASSISTANT_LLM_BASE_URL")
    with pytest.raises(ConfigError, match=r"^--top-k must be an integer >= 1 \(got -1\)$"):
        with_options(load_settings(_env_file=None), top_k=-1)


@pytest.mark.parametrize("env", [{"ASSISTANT_LOG_LEVEL": "bogus"}, {"ASSISTANT_TOP_K": "abc"}])
def test_ingest_reports_a_bad_setting_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "--dry-run"],
        cwd=tmp_path,
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {next(iter(env))} must be"), done.stderr


def test_unwritable_index_dir_stops_ingest_before_the_store_is_touched(tmp_path: Path) -> None:
    from ingest.cli import main
    from tests.conftest import make_settings

    (tmp_path / "a-file").write_text("not a folder")
    s = make_settings(tmp_path, index_dir=tmp_path / "a-file" / "index")
    assert main([], s) == 1
    assert not (tmp_path / "chroma").exists()  # nothing was written to the store
