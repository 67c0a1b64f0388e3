"""`python -m assistant`: ask, chat, eval and bench from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TextIO

from assistant.config import Settings, load_settings
from assistant.errors import AssistantError, ConfigError, InputError, LLMError
from assistant.output.sanitise import VisibleStream, visible_json
from assistant.runtime import prepare_runtime

if TYPE_CHECKING:
    from assistant.answering.pipeline import Assistant
    from assistant.models import Answer


EXIT_CODES = """exit codes:
  0  the answer is complete (an extractive answer or a refusal included)
  1  the store, the embedder or another part of the assistant failed
  2  a bad setting, option or input file, or the LLM gave no answer at all
  3  the answer was cut off (the LLM stopped, broke, or ran past ASSISTANT_LLM_DEADLINE or the answer's token cap);
     the partial text and its checked citations are still printed
  130  interrupted"""
EXIT_CUT = 3


class Out(Protocol):
    """Where the CLI writes: a text stream."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class SafeText:
    """A text stream that passes everything through `visible`: no escape sequence from an answer or a title reaches
    the terminal."""

    def __init__(self, stream: Out) -> None:
        self.stream = stream
        self._visible = VisibleStream()  # live deltas may split a sequence

    def write(self, text: str) -> int:
        return self.stream.write(self._visible.feed(text))

    def flush(self) -> None:
        self.stream.flush()


def print_sources(answer: Answer, out: Out, err: Out | None = None) -> None:
    """Numbered sources with the quoted sentences, then unsupported claims and timings; the error line goes to `err`."""
    out, err = SafeText(out), SafeText(err or sys.stderr)  # titles and quotes come from ingested files as they were
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
    if answer.fallback:  # most of the generated answer is unsupported: what the sources do say
        print(f"\n{answer.fallback.note}\n\n{answer.fallback.text.rstrip()}", file=out)
    if answer.error:
        print(f"error: {answer.error}{' (answer incomplete)' if answer.incomplete else ''}", file=err)
    t = answer.timings
    first = f", first token {t.first_token:.2f}s" if t.first_token is not None else ""
    print(
        f"[{answer.mode}{', extractive' if answer.extractive else ''}] {answer.coverage} "
        f"retrieval {t.retrieval:.2f}s{first}, total {t.total:.2f}s",
        file=out,
    )


def exit_code(answer: Answer) -> int:
    """0 for a whole answer, 2 when the LLM gave nothing, 3 when it was cut off (see EXIT_CODES)."""
    if answer.error and not answer.text:
        return 2
    return EXIT_CUT if answer.incomplete else 0


def _ask(assistant: Assistant, args: argparse.Namespace, out: Out, err: Out) -> int:
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

        print(json.dumps(visible_json(answer_json(answer)), ensure_ascii=False), file=out)
    elif args.format == "markdown":
        print(to_markdown(answer), file=out)
    elif args.format == "bibtex":
        print(to_bibtex(answer), file=out)
    else:
        print_sources(answer, out, err)
    return exit_code(answer)


def _chat(assistant: Assistant, args: argparse.Namespace, out: Out, err: Out) -> int:
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
            print_sources(stream.result, out, err)
        except AssistantError as exc:
            print(f"error: {exc}", file=err)
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
        prog="python -m assistant",
        description="Answer questions over paper abstracts with checked citations.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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


def _check_llm(settings: Settings, errors: Out) -> None:
    """Ask the endpoint once which models it serves, so a wrong name or a dead endpoint shows before the question.

    A failed check is a warning, not an exit: the question still gets its papers and sources, and the answer's own
    error line says the same again if the endpoint is really down.
    """
    if not settings.llm_configured:
        return
    from assistant import check_endpoint

    try:
        check_endpoint(settings)
    except LLMError as exc:
        print(f"warning: the LLM endpoint check failed: {exc}", file=errors)


def main(
    argv: Sequence[str] | None = None, settings: Settings | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one command; the exit code is one of EXIT_CODES."""
    chosen, _ = parser().parse_known_args(argv)
    args = parser(outer=chosen.command in OUTER_COMMANDS).parse_args(argv)
    shown, errors = SafeText(out or sys.stdout), SafeText(err or sys.stderr)
    try:
        settings = settings or load_settings()
        if getattr(args, "collection", None):
            settings = settings.model_copy(update={"collection": args.collection})
        prepare_runtime(settings)
        if args.command in ("ask", "chat"):
            from assistant import build_assistant

            assistant = build_assistant(settings)
            _check_llm(settings, errors)
            return _ask(assistant, args, shown, errors) if args.command == "ask" else _chat(assistant, args, shown, errors)
        return int(args.func(args, settings, out or sys.stdout))
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=errors)
        return 2
    except AssistantError as exc:
        print(f"error: {exc}", file=errors)
        return 1
    except KeyboardInterrupt:
        return 130
