"""`python -m ingest`: load, chunk, embed and store a corpus."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from assistant.config import Settings, load_settings, with_options
from assistant.errors import AssistantError
from ingest.loaders import FORMATS, load_paths, sample_corpus_path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Ingest paper abstracts into Chroma (.gz files of any format are read as well).",
    )
    p.add_argument("paths", nargs="*", help="corpus files or BEIR folders (default: the bundled sample page)")
    p.add_argument("--collection", help="Chroma collection (default: ASSISTANT_COLLECTION)")
    p.add_argument("--format", choices=FORMATS, help="input format (default: detected)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="remove stored papers that are not in the input. Refused, with nothing written, when the input looks "
        "damaged: a record was skipped, a JSONL file ends in the middle of a record, a page file is out of step or "
        "cut off, or pruning would remove more than half of the stored papers (see --force-prune)",
    )
    p.add_argument(
        "--force-prune",
        action="store_true",
        help="with --prune: allow removing more than half of the stored papers (damaged input is still refused)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would change (or be refused) without writing")
    p.add_argument("--strict", action="store_true", help="fail on any skippable record error")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return p


def _run(args: argparse.Namespace, settings: Settings | None) -> str:
    """The summary line of one ingest; settings are built here, inside the caller's error handling."""
    settings = settings or load_settings()
    if args.collection:
        settings = with_options(settings, collection=args.collection)
    from assistant.runtime import prepare_runtime, store_label

    prepare_runtime(settings)
    from ingest.pipeline import IngestOptions, ingest_report

    paths = args.paths or [str(sample_corpus_path())]
    report = load_paths(paths, args.format, strict=args.strict, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    options = IngestOptions(
        prune=args.prune,
        dry_run=args.dry_run,
        force_prune=args.force_prune,
        progress_bar=sys.stderr.isatty() and not args.json,
    )
    summary = ingest_report(settings, report, options)
    return json.dumps(summary.as_dict()) if args.json else f"{store_label(settings)}: {summary.line()}"


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    if args.force_prune and not args.prune:
        print("error: --force-prune needs --prune", file=sys.stderr)
        return 2
    try:
        line = _run(args, settings)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; papers written so far are complete, run again to finish", file=sys.stderr)
        return 130
    print(line)
    return 0
