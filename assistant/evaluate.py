"""Evaluation commands (placeholder until the evaluation work lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `eval` subcommand."""
    p: argparse.ArgumentParser = sub.add_parser("eval", help="measure retrieval and answer quality")
    p.set_defaults(func=lambda args, settings, out: 1)
