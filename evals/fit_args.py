"""The command line the question-fitted models share: files to fit on, files only to check, and --write."""

from __future__ import annotations

import argparse
from pathlib import Path


def fit_parser(prog: str, doc: str | None, params: Path, files_help: str) -> argparse.ArgumentParser:
    """A parser with FILES (fitted on), --check FILES (scored once, never fitted on) and --write (into `params`)."""
    p = argparse.ArgumentParser(prog=prog, description=(doc or "").splitlines()[0] if doc else None)
    p.add_argument("files", nargs="+", type=Path, help=files_help)
    p.add_argument("--check", nargs="*", type=Path, default=[], help="question files scored once, never fitted on")
    p.add_argument("--write", action="store_true", help=f"store the model in {params.name}")
    return p
