"""The evidence fit's cache keys change with the code and the settings that produce what the caches hold."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from assistant.config import Settings
from evals.fit_cache import code_digest, records_key


def _package(folder: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_a_package_counts_with_every_module_in_it(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "fusion.py").write_text("WEIGHT = 0.5\n", encoding="utf-8")
    before = code_digest([_package(pkg, "pkg_under_test")])
    (pkg / "fusion.py").write_text("WEIGHT = 0.6\n", encoding="utf-8")  # a module the package never imported
    assert code_digest([_package(pkg, "pkg_under_test")]) != before


def test_records_are_keyed_on_the_settings(tmp_path: Path) -> None:
    questions = [{"id": "1", "text": "Is it true that X?"}]
    one = records_key("scifact", questions, Settings(chroma_path=tmp_path, collection="papers"), 5)
    assert one == records_key("scifact", questions, Settings(chroma_path=tmp_path, collection="papers"), 5)
    assert one != records_key("scifact", questions, Settings(chroma_path=tmp_path, collection="scifact"), 5)
    assert one != records_key("scifact", questions, Settings(chroma_path=tmp_path, collection="papers"), 10)
