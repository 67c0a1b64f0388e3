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
