"""Cold start of the CLI, and whether the ONNX question embedder agrees with the torch one.

    python bench/coldstart.py [--runs 5] [--question TEXT]... [--tree before=/path/to/checkout]
    python bench/coldstart.py --phases [--question TEXT]... [--tree before=/path/to/checkout]
    python bench/coldstart.py --check-tokens [--library default]
    python bench/coldstart.py --agree [--library default]

Timing: each command (`askdocs ask`, `askdocs search`) runs as a fresh process, once as a
warm-up (page cache) and then `--runs` times; the table gives the median wall time and the
median CPU time (user + system: on a busy machine closer to what an idle one's wall time
would be) and peak RSS (the child's own rusage from wait4). `--tree LABEL=PATH` adds rows for
another checkout (run with PYTHONPATH=PATH), e.g. the code before a change. `--question`
(repeatable) replaces the default English question, e.g. with a Chinese one.

--phases: one fresh `ask` per tree and question, in-process, with the CPU and wall seconds of
its costly steps (the embedder's tokenizer and ONNX session, jieba's dictionary, the English
word frequencies, opening the library) and of the whole command.

--check-tokens: the lazily read word lists give exactly what the libraries give, on every
question of dev, dev2 and examples/questions.jsonl (with their glossary expansions) and every
chunk of the library, and every 4th sentence pair of ../shared/parallel: the model's token ids (`index.model.pieces` vs tokenizer.json), jieba's words
in both modes (`ingest.text` vs the whole dictionary) and wordfreq's Zipf values; then the
retriever's top 10 for every dev and dev2 question with the lazy lists and with the full ones.

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
QUESTION_ZH = "Python 的解释器会优化尾递归吗？"


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
    questions = args.question or [QUESTION]
    commands = {}
    for q in questions:
        tag = f" ({_lang(q)})" if len(questions) > 1 else ""
        commands[f"ask{tag}"] = ["ask", q]
        commands[f"search{tag}"] = ["search", q]
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


def _lang(text: str) -> str:
    from ingest.text import text_lang

    return text_lang(text)


# Run in a fresh process per tree: wraps the costly steps with timers, then runs `ask`.
_PHASES = r"""
import json, sys, time
clock = {}
def timed(owner, name, label):
    fn = getattr(owner, name, None)
    if fn is None:
        return
    def wrapper(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            t = clock.setdefault(label, [0.0, 0.0])
            t[0] += time.perf_counter() - w
            t[1] += time.process_time() - c
    setattr(owner, name, wrapper)
w0, c0 = time.perf_counter(), time.process_time()
import onnxruntime, jieba
clock["import onnxruntime + jieba"] = [time.perf_counter() - w0, time.process_time() - c0]
import index.model.onnx, index.library, ingest.text, assistant.retrieve
timed(onnxruntime.InferenceSession, "__init__", "ONNX session")
timed(index.model.onnx.OnnxEmbedder, "__init__", "embedder (tokenizer + session)")
timed(index.library.Library, "open", "library open")
timed(jieba.Tokenizer, "initialize", "jieba dictionary")
timed(ingest.text, "_jieba_of", "jieba dictionary")
timed(assistant.retrieve, "_rare", "English word frequencies")
from ui.cli import main
w1, c1 = time.perf_counter(), time.process_time()
main(["ask", sys.argv[1], "--library", sys.argv[2]])
clock["ask (all of main)"] = [time.perf_counter() - w1, time.process_time() - c1]
e = clock.get("embedder (tokenizer + session)"); s = clock.get("ONNX session")
if e and s:
    clock["tokenizer"] = [e[0] - s[0], e[1] - s[1]]
print(json.dumps(clock))
"""


def phases(args: argparse.Namespace) -> int:
    import json

    trees = [("this tree", str(ROOT))] + [tuple(t.split("=", 1)) for t in args.tree]
    order = ("import onnxruntime + jieba", "library open", "tokenizer", "ONNX session",
             "jieba dictionary", "English word frequencies", "ask (all of main)")  # fmt: skip
    rows = []
    for question in args.question or [QUESTION]:
        for label, path in trees:
            env = dict(os.environ, PYTHONPATH=path)
            argv = [sys.executable, "-c", _PHASES, question, args.library]
            subprocess.run(argv, env=env, cwd=path, capture_output=True)  # warm-up
            out = subprocess.run(argv, env=env, cwd=path, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return 1
            clock = json.loads(out.stdout.strip().splitlines()[-1])
            for step in order:
                wall, cpu = clock.get(step, (0.0, 0.0))
                rows.append((label, _lang(question), step, f"{cpu:.3f}", f"{wall:.3f}"))
    print(f"one fresh ask per row group after a warm-up; load average {os.getloadavg()[0]:.1f}")
    _print_table([("tree", "question", "step", "CPU s", "wall s"), *rows])
    return 0


def check_tokens(args: argparse.Namespace) -> int:
    """Exactness of the lazy word lists on every question and chunk; 1 on any difference."""
    import json

    import jieba
    from tokenizers import Tokenizer
    from wordfreq import zipf_frequency

    from assistant import retrieve
    from assistant.glossary import default_glossary
    from assistant.retrieve import Retriever
    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.library import Library
    from index.model.pieces import PieceTokenizer
    from ingest import text

    config = LibraryConfig(name=args.library)
    model_dir = config.models_dir / DEFAULT_MODEL
    questions = [
        json.loads(line)["question"]
        for path in (EVAL / "dev.jsonl", EVAL / "dev2.jsonl", ROOT / "examples/questions.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    glossary = default_glossary()
    expansions = [glossary.expand(q, text.text_lang(q)) for q in questions]
    library = Library.open(config)
    chunks = [c.text for d in library.documents() for c in library.chunks(d.doc_id)]
    pairs = (ROOT.parent / "shared" / "parallel" / "python-docs-3.11.train.jsonl").read_text(
        encoding="utf-8"
    )
    parallel = [json.loads(line) for line in pairs.splitlines()[::4] if line.strip()]
    texts = {
        "questions": questions,
        "expansions": expansions,
        "chunks": chunks,
        "parallel sentences (1/4)": [p[lang] for p in parallel for lang in ("zh", "en")],
    }
    rows, failed = [], 0

    pieces = PieceTokenizer(model_dir, 512)
    pieces.lazy_chars = pieces.lazy_calls = float("inf")  # every text through the table
    full = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    full.enable_truncation(max_length=512)
    for name, items in texts.items():
        for prompt in ("query: ", "passage: "):
            batch = [prompt + t for t in items]
            lazy = [ids for t in batch for ids in pieces.encode([t])]
            ref = [e.ids for e in full.encode_batch(batch)]
            same = sum(a == b for a, b in zip(lazy, ref, strict=True))
            failed += len(batch) - same
            rows.append(("token ids", f"{name} ({prompt.strip()})", f"{same}/{len(batch)}"))

    whole = jieba.Tokenizer()
    whole.initialize()
    for name, items in texts.items():
        runs = [r for t in items for kind, r in text._runs(t) if kind == "han"]
        if name != "chunks":
            runs += [t for t in items if text.HAN.search(t)]  # whole texts too
        same = 0
        for run in runs:
            lazy = text._jieba_of(run)
            a = (lazy.lcut(run), lazy.lcut_for_search(run))
            same += a == (whole.lcut(run), whole.lcut_for_search(run))
        failed += len(runs) - same
        rows.append(("jieba words (both modes)", name, f"{same}/{len(runs)}"))

    words = {
        b
        for items in texts.values()
        for t in items
        for w in text.content_words(t)
        if w.isascii() and w.isalpha()
        for b in (w.lower(), w, w.lower().removesuffix("s"), w.lower().removesuffix("ed") + "e")
    }
    same = sum(text.zipf(w) == zipf_frequency(w, "en") for w in words)
    failed += len(words) - same
    rows.append(("Zipf frequency", "words of all texts", f"{same}/{len(words)}"))

    # Top 10 with the lazy lists, then with the whole ones (which once loaded are used).
    text._LAZY_CHARS = float("inf")
    evals = [q for q in questions if q.strip()]
    lazy_lib = Library.open(config)
    lazy_lib.embedder.tokenizer.lazy_calls = float("inf")
    retriever = Retriever(lazy_lib)
    lazy_top = [[h.chunk.chunk_id for h in retriever.search(q, k=10).hits] for q in evals]
    text._jieba().check_initialized()
    text._zipf_lexicon = lambda: None
    text.terms.cache_clear()
    retrieve._rare.cache_clear()
    full_lib = Library.open(config)
    full_lib.embedder.tokenizer.table = None
    retriever = Retriever(full_lib)
    full_top = [[h.chunk.chunk_id for h in retriever.search(q, k=10).hits] for q in evals]
    same = sum(a == b for a, b in zip(lazy_top, full_top, strict=True))
    failed += len(evals) - same
    rows.append(("top 10 in order", "dev + dev2 + examples", f"{same}/{len(evals)}"))
    _print_table([("what", "texts", "identical"), *rows])
    print("all identical" if not failed else f"{failed} DIFFERENCES")
    return 1 if failed else 0


def agree(args: argparse.Namespace) -> int:
    import numpy as np

    from assistant import evaluate
    from assistant.retrieve import Retriever
    from index.config import DEFAULT_MODEL, LibraryConfig
    from index.library import Library
    from index.model.embedder import SentenceTransformerEmbedder
    from index.model.onnx import OnnxEmbedder

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
    p.add_argument("--question", action="append", default=[], help="question to time (repeat)")
    p.add_argument("--agree", action="store_true", help="compare ONNX and torch question vectors")
    p.add_argument("--phases", action="store_true", help="time the costly steps of one ask")
    p.add_argument("--check-tokens", action="store_true", help="lazy word lists are exact")
    args = p.parse_args()
    if args.check_tokens:
        return check_tokens(args)
    if args.phases:
        return phases(args)
    return agree(args) if args.agree else timings(args)


if __name__ == "__main__":
    sys.exit(main())
