"""Cold start of the CLI, and whether the ONNX question embedder agrees with the torch one.

    python bench/coldstart.py [--runs 5] [--tree before=/path/to/old/checkout] [--library default]
    python bench/coldstart.py --agree [--library default]

Timing: each command (`askdocs ask`, `askdocs search`) runs as a fresh process, once as a
warm-up (page cache) and then `--runs` times; the table gives the median wall time and the
median CPU time (user + system: on a busy machine closer to what an idle one's wall time
would be) and peak RSS (the child's own rusage from wait4). `--tree LABEL=PATH` adds rows for
another checkout (run with PYTHONPATH=PATH), e.g. the code before a change.

--agree: every question of dev.jsonl and dev2.jsonl embedded by the torch model (the
precision ingest uses) and by the ONNX graph: cosine of the two vectors, and whether the
shipped retriever returns the same top 10 with either.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
QUESTION = "Does the standard interpreter optimise tail calls?"


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS in MB, exit code, CPU seconds) of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        print(f"{' '.join(argv)} failed:\n{err}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def timings(args: argparse.Namespace) -> int:
    trees = [("this tree", str(ROOT))] + [tuple(t.split("=", 1)) for t in args.tree]
    commands = {
        "ask": ["ask", QUESTION],
        "search": ["search", QUESTION],
    }
    rows = []
    for label, path in trees:
        env = dict(os.environ, PYTHONPATH=path)
        for name, tail in commands.items():
            argv = [sys.executable, "-m", "ui.cli", *tail, "--library", args.library]
            # `python -m` puts the working directory first on sys.path: run in the tree
            run_once(argv, env, path)  # warm-up: page cache, model exported if needed
            runs = [run_once(argv, env, path) for _ in range(args.runs)]
            walls, rss, cpu = [r[0] for r in runs], [r[1] for r in runs], [r[3] for r in runs]
            rows.append(
                (
                    label,
                    name,
                    f"{statistics.median(walls):.2f}",
                    f"{min(walls):.2f}-{max(walls):.2f}",
                    f"{statistics.median(cpu):.2f}",
                    f"{statistics.median(rss):.0f}",
                    "ok" if all(r[2] == 0 for r in runs) else "FAILED",
                )
            )
    head = ("tree", "command", "wall s (median)", "wall s (min-max)", "CPU s (median)",
            "peak RSS MB", "exit")  # fmt: skip
    print(f"{args.runs} cold runs after a warm-up; load average {os.getloadavg()[0]:.1f}")
    _print_table([head, *rows])
    return 0


def agree(args: argparse.Namespace) -> int:
    import numpy as np

    from assistant import evaluate
    from assistant.retrieve import Retriever
    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.embedder import SentenceTransformerEmbedder
    from index.library import Library
    from index.onnx import OnnxEmbedder

    config = LibraryConfig(name=args.library)
    model_dir = config.models_dir / DEFAULT_MODEL
    embedders = {
        "onnx": OnnxEmbedder(model_dir, DEFAULT_MODEL),
        "fp32": SentenceTransformerEmbedder(model_dir, DEFAULT_MODEL, precision="fp32"),
        # the torch query path before the ONNX one: bf16 where the CPU has it, else fp32
        "torch": SentenceTransformerEmbedder(model_dir, DEFAULT_MODEL),
    }
    rows, quality = [], []
    for name in ("dev", "dev2"):
        questions = evaluate.load_questions(EVAL / f"{name}.jsonl")
        texts = [q.question for q in questions]
        vecs = {label: emb.embed(texts, "query") for label, emb in embedders.items()}
        tops, reports = {}, {}
        for label, emb in embedders.items():
            retriever = Retriever(Library.open(config, embedder=emb))
            tops[label] = [
                [h.chunk.chunk_id for h in retriever.search(t, k=10).hits] for t in texts
            ]
            outcomes = evaluate.run(evaluate.search_with(retriever), questions, 10)
            reports[label] = evaluate.summarize(outcomes, 10)
        for other in ("fp32", "torch"):
            cos = np.sum(vecs["onnx"] * vecs[other], axis=1)
            pairs = list(zip(tops["onnx"], tops[other], strict=True))
            rows.append(
                (
                    name,
                    f"{other} ({embedders[other].precision})",
                    str(len(texts)),
                    f"{cos.min():.6f} / {np.median(cos):.6f}",
                    f"{sum(a == b for a, b in pairs)}/{len(pairs)}",
                    f"{sum(set(a) == set(b) for a, b in pairs)}/{len(pairs)}",
                )
            )
        for label, report in reports.items():
            m, a = report["metrics"]["all"], report["abstention"]
            quality.append(
                (
                    name,
                    f"{label} ({embedders[label].precision})",
                    f"{m['R@5']:.3f}",
                    f"{m['MRR@10']:.3f}",
                    f"{a['none_abstained']:.2f}",
                    f"{a['answerable_abstained']:.2f}",
                )
            )
    head = ("set", "ONNX queries against", "questions", "min / median cosine",
            "same top 10 (order)", "same top 10 (set)")  # fmt: skip
    _print_table([head, *rows])
    print()
    head = ("set", "question embedder", "all R@5", "all MRR@10", "none declined",
            "answerable declined")  # fmt: skip
    _print_table([head, *quality])
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--library", default="default")
    p.add_argument("--tree", action="append", default=[], help="LABEL=PATH of another checkout")
    p.add_argument("--agree", action="store_true", help="compare ONNX and torch question vectors")
    args = p.parse_args()
    return agree(args) if args.agree else timings(args)


if __name__ == "__main__":
    sys.exit(main())
