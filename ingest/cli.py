"""`python -m ingest`: load, chunk, embed and store a corpus."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.runtime import prepare_runtime, store_label
from ingest.loaders import FORMATS, load_paths, sample_corpus_path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ingest", description="Ingest paper abstracts into Chroma.")
    p.add_argument("paths", nargs="*", help="corpus files or BEIR folders (default: the bundled sample page)")
    p.add_argument("--collection", help="Chroma collection (default: ASSISTANT_COLLECTION)")
    p.add_argument("--format", choices=FORMATS, help="input format (default: detected)")
    p.add_argument("--prune", action="store_true", help="remove stored papers that are not in the input")
    p.add_argument("--dry-run", action="store_true", help="report what would change without writing")
    p.add_argument("--strict", action="store_true", help="fail on any skippable record error")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return p


def _settings_error(exc: ValidationError) -> str:
    problems = [f"ASSISTANT_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
    return "invalid setting " + "; ".join(problems)


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings or Settings()
        if args.collection:
            settings = settings.model_copy(update={"collection": args.collection})
        prepare_runtime(settings)
        from ingest.pipeline import ingest_report

        paths = args.paths or [str(sample_corpus_path())]
        report = load_paths(paths, args.format, strict=args.strict, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        summary = ingest_report(
            settings, report, prune=args.prune, dry_run=args.dry_run, progress_bar=sys.stderr.isatty() and not args.json
        )
    except ValidationError as exc:
        print(f"error: {_settings_error(exc)}", file=sys.stderr)
        return 1
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; papers written so far are complete, run again to finish", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(f"{store_label(settings)}: {summary.line()}")
    return 0
