"""`python -m assistant`: ask, chat, eval and bench from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from assistant.config import Settings, load_settings
from assistant.errors import AssistantError, ConfigError, InputError
from assistant.runtime import prepare_runtime

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.models import Answer


def print_sources(answer: Answer, out: TextIO) -> None:
    """Numbered sources with the quoted sentences, then unsupported claims and timings."""
    quotes = {c.n: c.quotes for c in answer.citations}
    print("\nSources:", file=out)
    for n, ev in enumerate(answer.evidence, 1):
        mark = "*" if n in quotes else " "
        print(f"{mark}[{n}] {ev.title}", file=out)
        for q in quotes.get(n, ()):
            print(f'      "{q.text}" (chars {q.start}-{q.end})', file=out)
    if answer.dropped_citations:
        print(f"Dropped citations to sources never given: {', '.join(map(str, answer.dropped_citations))}", file=out)
    for s in answer.unsupported:
        print(f"UNSUPPORTED: {s}", file=out)
    if answer.error:
        print(f"error: {answer.error}{' (answer incomplete)' if answer.incomplete else ''}", file=out)
    t = answer.timings
    first = f", first token {t.first_token:.2f}s" if t.first_token is not None else ""
    print(
        f"[{answer.mode}{', extractive' if answer.extractive else ''}] {answer.coverage} "
        f"retrieval {t.retrieval:.2f}s{first}, total {t.total:.2f}s",
        file=out,
    )


def _ask(assistant: Assistant, args: argparse.Namespace, out: TextIO) -> int:
    from assistant.models import Filters
    from assistant.output.render import to_bibtex, to_markdown

    filters = Filters(
        year_min=args.year_min, year_max=args.year_max, author=args.author, category=args.category, title=args.title
    )
    stream = assistant.stream(args.question, mode=args.mode, history=args.history or [], filters=filters, top_k=args.top_k)
    live = not args.json and args.format == "text"
    for delta in stream:
        if live:
            out.write(delta)
            out.flush()
    answer = stream.result
    if args.json:
        from assistant.output.serialise import answer_json

        print(json.dumps(answer_json(answer), ensure_ascii=False), file=out)
    elif args.format == "markdown":
        print(to_markdown(answer), file=out)
    elif args.format == "bibtex":
        print(to_bibtex(answer), file=out)
    else:
        print_sources(answer, out)
    return 2 if answer.error and not answer.text else 0


def _chat(assistant: Assistant, args: argparse.Namespace, out: TextIO) -> int:
    history: list[str] = []
    mode: str | None = args.mode
    print(
        f"Chat with {assistant.stats()['papers']} papers ({assistant.describe_llm()}). "
        "/new resets, /mode X sets the mode, /quit ends.",
        file=out,
    )
    while True:
        try:
            question = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question == "/new":
            history = []
            print("(history cleared)", file=out)
            continue
        if question.startswith("/mode"):
            mode = question.split(maxsplit=1)[1] if " " in question else None
            print(f"(mode: {mode or 'auto'})", file=out)
            continue
        try:
            stream = assistant.stream(question, mode=mode, history=history)
            for delta in stream:
                out.write(delta)
                out.flush()
            print_sources(stream.result, out)
        except AssistantError as exc:
            print(f"error: {exc}", file=out)
        history.append(question)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


# Registered with their real options only when chosen, so `ask` and `chat` never import the evals package.
OUTER_COMMANDS = {
    "eval": "measure retrieval and answer quality",
    "bench": "measure ingest throughput, latency, load, memory and cold starts",
}


def parser(outer: bool = False) -> argparse.ArgumentParser:
    """The command line; `outer` registers eval and bench with their own options (importing evals)."""
    p = argparse.ArgumentParser(
        prog="python -m assistant", description="Answer questions over paper abstracts with checked citations."
    )
    sub = p.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--mode", choices=["auto", "ask", "compare", "summarise"], default="auto")
    ask.add_argument("--history", action="append", help="an earlier user turn (repeat, oldest first)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--format", choices=["text", "markdown", "bibtex"], default="text")
    ask.add_argument("--top-k", type=positive_int, help="papers to use")
    ask.add_argument("--year-min", type=int)
    ask.add_argument("--year-max", type=int)
    ask.add_argument("--author")
    ask.add_argument("--category")
    ask.add_argument("--title", help="only papers whose title contains this")
    ask.add_argument("--collection")
    chat = sub.add_parser("chat", help="a terminal chat with history")
    chat.add_argument("--mode", choices=["auto", "ask", "compare", "summarise"], default="auto")
    chat.add_argument("--collection")
    if outer:
        from evals import bench, evaluate

        evaluate.register(sub)
        bench.register(sub)
    else:
        for name, text in OUTER_COMMANDS.items():
            sub.add_parser(name, help=text, add_help=False)
    return p


def main(argv: Sequence[str] | None = None, settings: Settings | None = None, out: TextIO | None = None) -> int:
    chosen, _ = parser().parse_known_args(argv)
    args = parser(outer=chosen.command in OUTER_COMMANDS).parse_args(argv)
    out = out or sys.stdout
    try:
        settings = settings or load_settings()
        if getattr(args, "collection", None):
            settings = settings.model_copy(update={"collection": args.collection})
        prepare_runtime(settings)
        if args.command in ("ask", "chat"):
            from assistant import build_assistant

            assistant = build_assistant(settings)
            return _ask(assistant, args, out) if args.command == "ask" else _chat(assistant, args, out)
        return int(args.func(args, settings, out))
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
