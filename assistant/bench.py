"""Benchmarks (placeholder until the benchuation work lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `bench` subcommand."""
    p: argparse.ArgumentParser = sub.add_parser("bench", help="measure retribench and answer quality")
    p.set_defaults(func=lambda args, settings, out: 1)
