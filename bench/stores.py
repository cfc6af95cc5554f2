"""The PostgreSQL store against the embedded one on the same library: same top 10?

    python bench/stores.py --store postgresql://... [--library default] [--ingest corpus]
        [--questions ../shared/eval/dev.jsonl ...]

With --ingest PATH, first ingests PATH into a fresh embedded library and a fresh PostgreSQL
library (the real model embeds both; the time of each is printed). Then, for each question
set, runs the shipped retriever over both stores in one process with one model: the share
of questions whose top 10 (chunk ids, in order) is the same in both, the share with the same
set, `askdocs eval`'s R@5 and MRR@10 of each, and the warm search latency (p50 / p95 of the
whole search, question embedding included) of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = [str(ROOT.parent / "shared" / "eval" / "dev.jsonl")]


def _ingest(config, path: str) -> float:  # noqa: ANN001
    from index.library import Library

    t0 = time.perf_counter()
    Library.open(config, create=True, fresh=True).ingest([path])
    return time.perf_counter() - t0


def main() -> int:
    from assistant import evaluate
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.library import Library

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="postgresql:// URL")
    p.add_argument("--library", default="default")
    p.add_argument("--ingest", default="", help="ingest this path into both stores first")
    p.add_argument("--questions", nargs="+", default=SETS)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()

    embedded = LibraryConfig(name=args.library, store="")
    postgres = replace(embedded, store=args.store)
    if args.ingest:
        print("| store | ingest s (real model) |\n|---|---|")
        for name, config in (("embedded", embedded), ("postgresql", postgres)):
            print(f"| {name} | {_ingest(config, args.ingest):.1f} |", flush=True)
    a = Library.open(embedded)
    b = Library.open(postgres, a.embedder)
    if a.langs() != b.langs():
        print(f"the stores differ: {a.langs()} vs {b.langs()}")
    print(f"\nchunks {sum(a.langs().values())}: {a.langs()}")
    for path in args.questions:
        questions = evaluate.load_questions(path)
        runs = {}
        for name, lib in (("embedded", a), ("postgresql", b)):
            runs[name] = evaluate.run(evaluate.search_with(Retriever(lib)), questions, k=args.k)
        ids = {n: [[h["chunk_id"] for h in o.hits] for o in out] for n, out in runs.items()}
        pairs = list(zip(ids["embedded"], ids["postgresql"], strict=True))
        same = sum(x == y for x, y in pairs) / len(pairs)
        same_set = sum(set(x) == set(y) for x, y in pairs) / len(pairs)
        print(f"\n{Path(path).name}: {len(pairs)} questions; same top {args.k} in order "
              f"{same:.3f}, same set {same_set:.3f}")  # fmt: skip
        print("| store | R@5 | MRR@10 | search p50 ms | p95 ms |\n|---|---|---|---|---|")
        for name, out in runs.items():
            s = evaluate.summarize(out, k=args.k)
            m, lat = s["metrics"]["all"], s["latency_ms"]
            print(f"| {name} | {m['R@5']:.3f} | {m['MRR@10']:.3f} | {lat['p50']:.1f} "
                  f"| {lat['p95']:.1f} |")  # fmt: skip
        for (x, y), q in zip(pairs, questions, strict=True):
            if x != y:
                print(f"  differs: {q.id} {q.question[:60]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
