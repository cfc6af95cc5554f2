"""`askdocs search`, `ask`, `chat` and `eval`: questions over an existing library.

Over 300 lines because the four commands share opening the assistant and the output formats
(text and the design's JSON); `eval` alone is a third of it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ingest.errors import AskdocsError
from ui.library_commands import open_assistant

if TYPE_CHECKING:
    from assistant.records import Answer


def _question(text: str) -> str:
    """A question from the command line. Bytes that are not UTF-8 reach Python as lone
    surrogates, which no model tokenizer takes: they become U+FFFD, with a warning."""
    from ingest.text import printable

    clean = printable(text)
    if clean != text:
        print(
            "askdocs: warning: the question holds bytes that are not UTF-8 (shown as \ufffd); "
            "set the terminal to UTF-8 for the exact words",
            file=sys.stderr,
        )
    return clean


def cmd_search(args: argparse.Namespace) -> int:
    import json

    retrieval = open_assistant(args).search(_question(args.question), k=args.k)
    if args.json:
        print(json.dumps(retrieval.to_json(), ensure_ascii=False))
        return 0
    if not retrieval.answerable:
        print("(the library probably does not cover this question; nearest passages:)")
    for h in retrieval.hits:
        where = f"{h.chunk.source}:{h.chunk.start}-{h.chunk.end}"
        print(f"{h.rank:>2}. {h.score:6.2f}  {where}  [{h.chunk.lang}] {h.chunk.heading}")
        print("    " + " ".join(h.chunk.text.split())[:200])
    if not retrieval.hits:
        print("no passages found")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    import json

    from assistant.conversation import Conversation

    # the file is checked before the library and model load: a bad one fails at once
    conversation = Conversation.load(args.conversation) if args.conversation else None
    assistant = open_assistant(args)
    mode = args.mode or assistant.config.mode
    with _Writing(mode == "llm" and not args.json) as writing:
        answer = assistant.ask(
            _question(args.question),
            conversation=conversation,
            mode=args.mode,
            on_progress=writing.update,
        )
    if conversation is not None:  # loaded from args.conversation: saved back there
        conversation.save(args.conversation)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    if not answer.answered:
        print_refusal(answer, assistant)
        return 0
    # LLM mode prints the answer only now, after the support check: the model's text is never
    # streamed to stdout, so a sentence the check refuses is never shown (nor written to a file).
    print(answer.text)
    for warning in _llm_warnings(answer):
        print(f"! {warning}")
    if answer.glossary:
        print("\n" + answer.glossary_text)
    print()
    for c in answer.citations:
        where = f"{c.source} › {c.heading}" if c.heading else c.source
        print(f"[{c.n}] {where}  (characters {c.start}–{c.end})")
    return 0


def _llm_warnings(answer) -> list[str]:  # noqa: ANN001
    """LLM mode's warnings (sentences left out, citations removed) that its notice does not
    already say; they count refused sentences and never quote them (assistant.llm)."""
    if answer.mode != "llm" and not answer.fallback:
        return []
    return [w for w in answer.warnings if w not in answer.notice]


class _Writing:
    """ "writing… N characters" on stderr while an LLM writes (a terminal only; the words
    themselves wait for the support check), erased when the answer is ready."""

    def __init__(self, active: bool) -> None:
        self.active = active and sys.stderr.isatty()
        self.shown = False

    def __enter__(self) -> _Writing:
        return self

    def update(self, chars: int) -> None:
        if self.active:
            print(f"\r(the model is writing… {chars} characters; checked before shown)",
                  end="", file=sys.stderr, flush=True)  # fmt: skip
            self.shown = True

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def print_refusal(answer, assistant) -> None:  # noqa: ANN001
    """ "Not covered", then the nearest sections as a list: heading path, file and line."""
    print(answer.sentences[0].text)
    for sentence, c in zip(answer.sentences[1:], answer.citations, strict=False):
        doc = assistant.document(c.doc_id)
        line = f", line {doc.text.count(chr(10), 0, c.start) + 1}" if doc is not None else ""
        print(f"  [{c.n}] {sentence.text} — {c.source}{line}")


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal conversation: questions, plus /sources /open N /save FILE /clear /quit."""
    import time

    from assistant.answer import locate
    from assistant.conversation import Conversation

    started = time.perf_counter()
    print("Loading the library and the model…", end="", flush=True)
    assistant = open_assistant(args)
    # Loaded now, not during the first question: model, indexes, both languages' tokenizers.
    assistant.search("warm-up 预热", k=1)
    print(f" ready ({time.perf_counter() - started:.1f} s).")
    mode = args.mode or assistant.config.mode
    conversation = Conversation()
    last: Answer | None = None
    mark = ("\033[7m", "\033[0m") if sys.stdout.isatty() else ("«", "»")
    print("Ask in Chinese or English. Commands: /sources  /open N  /save FILE  /clear  /quit")

    def sources() -> None:
        if last is None or not last.citations:
            print("(no sources yet)")
        for c in last.citations if last else ():
            where = f"{c.source} › {c.heading}" if c.heading else c.source
            print(f"[{c.n}] {where}  (characters {c.start}–{c.end})")

    def open_source(arg: str) -> None:
        cites = {c.n: c for c in last.citations} if last else {}
        if not arg.isdigit() or int(arg) not in cites:
            print(f"usage: /open N, with N one of {sorted(cites) or 'the numbers of an answer'}")
            return
        c = cites[int(arg)]
        doc = assistant.document(c.doc_id)
        if doc is None or doc.text[c.start : c.end] != c.text:
            print(f"[{c.n}] {c.source} has changed since this answer; ask again.")
            return
        loc = locate(doc.text, c.start, c.end)
        print(f"[{c.n}] {c.source}" + (f" › {c.heading}" if c.heading else ""))
        print(f"line {loc.line}, column {loc.column}; characters {c.start}–{c.end}")
        print(f"…{loc.before}{mark[0]}{loc.span}{mark[1]}{loc.after}…")

    while True:
        try:
            line = _question(input("\n? ")).strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        except UnicodeDecodeError:  # a terminal that is not UTF-8
            print("askdocs: that line was not UTF-8 text; please type it again", file=sys.stderr)
            continue
        command, _, arg = line.partition(" ")
        try:
            if not line:
                continue
            if command in ("/quit", "/exit"):
                return 0
            if command == "/sources":
                sources()
            elif command == "/open":
                open_source(arg.strip())
            elif command == "/save" and arg.strip():
                conversation.save(arg.strip())
                print(f"saved {len(conversation.turns)} turns to {arg.strip()}")
            elif command == "/clear":
                conversation.clear()
                last = None
                print("(conversation cleared)")
            elif command.startswith("/"):
                print("commands: /sources  /open N  /save FILE  /clear  /quit")
            else:
                with _Writing(mode == "llm") as writing:
                    last = assistant.ask(
                        line, conversation=conversation, mode=mode, on_progress=writing.update
                    )
                if last.query != line:
                    print(f"(searched: {last.query})")
                if not last.answered:
                    print_refusal(last, assistant)
                else:  # LLM mode too: shown only after the support check (see cmd_ask)
                    print(last.text)
                if last.glossary:
                    print(last.glossary_text)
                for warning in _llm_warnings(last):
                    print(f"! {warning}")
        except AskdocsError as exc:  # one bad turn does not end the conversation
            print(f"askdocs: {exc}", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from assistant import evaluate
    from assistant.retrieve import VARIANTS, Retriever

    if args.conversations:
        return _eval_conversations(args)
    if not args.questions:
        raise AskdocsError(
            "eval needs a questions file or --conversations FILE.",
            "e.g. askdocs eval examples/questions.jsonl, or --conversations examples/conversations.jsonl",
        )
    questions = evaluate.load_questions(args.questions)
    assistant = open_assistant(args)
    if args.answers:
        return _eval_answers(args, questions, assistant)
    names = list(VARIANTS) if args.compare else ["hybrid"]
    reports = {}
    for name in names:
        search = evaluate.search_with(Retriever(assistant.library, **VARIANTS[name]))
        outcomes = evaluate.run(search, questions, args.k)
        reports[name] = evaluate.summarize(outcomes, args.k)
        if args.explain and name == "hybrid":
            print(evaluate.format_explain(outcomes), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        out = dict(reports["hybrid"])
        if args.compare:
            out["compare"] = {
                m: {k: v for k, v in r.items() if k != "questions"} for m, r in reports.items()
            }
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(evaluate.format_table(reports))
    return 0


def _eval_conversations(args: argparse.Namespace) -> int:
    """`eval --conversations FILE`: each conversation asked turn by turn (assistant.dialogues)."""
    import json

    from assistant import dialogues
    from assistant.conversation import Conversation

    convs = dialogues.load_dialogues(args.conversations)
    assistant = open_assistant(args)
    mode = args.mode or "extractive"

    def ask(question: str, conversation) -> dict:  # noqa: ANN001
        return assistant.ask(question, conversation=conversation, mode=mode, k=args.k).to_json()

    report = dialogues.summarize_dialogues(dialogues.run_dialogues(ask, Conversation, convs))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(dialogues.format_dialogues(report))
    return 0


def _eval_answers(args: argparse.Namespace, questions, assistant) -> int:
    """`eval --answers`: every question through the whole ask path, graded (assistant.grading);
    `--compare` adds the answer without its own-language-first rule, `--folds` answers each
    question with a ranker fitted without it (bench/train_ranker.py --folds-out)."""
    import json

    from assistant import evaluate, grading
    from assistant.ranker import load_folds

    folds = load_folds(args.folds) if args.folds else {}
    shipped = assistant.extractive.ranker
    mode = args.mode or "extractive"

    def asker(own_first: float | None):
        def ask(q):
            assistant.extractive.ranker = folds.get(q.id, shipped)
            assistant.extractive.own_first = own_first
            return assistant.ask(q.question, mode=mode, k=args.k).to_json()

        return ask

    name = "ranker (CV)" if folds else "ranker"
    answerers: dict[str, float | None] = {name: None}
    if args.compare:  # the answer as chosen, without letting the question's language lead
        answerers = {f"{name}, best sentence first": float("inf"), **answerers}
    runs = {}
    try:
        for label, own_first in answerers.items():
            # An LLM answer takes seconds; its latency is generation, not lazy loading.
            warmup = 0 if mode == "llm" else 2
            runs[label] = grading.run_answers(asker(own_first), questions, warmup=warmup)
    finally:
        assistant.extractive.ranker = shipped
        assistant.extractive.own_first = None
    reports = {name: grading.summarize_answers(outs) for name, outs in runs.items()}
    if not args.json:
        print(grading.format_answers_table(reports))
        return 0
    last = runs[next(reversed(runs))]
    outcomes = [
        evaluate.Outcome(
            o.question,
            tuple(h["text"] for h in o.answer["hits"]),
            not o.answer["answered"],
            o.seconds,
            tuple(o.answer["hits"]),
        )
        for o in last
    ]
    out = evaluate.summarize(outcomes, args.k)
    for row, o in zip(out["questions"], last, strict=True):
        row["answer"] = o.answer
    out["answers"] = reports[next(reversed(reports))]
    if args.compare:
        out["compare_answers"] = reports
    print(json.dumps(out, ensure_ascii=False))
    return 0
