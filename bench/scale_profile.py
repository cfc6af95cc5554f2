"""Where a warm hybrid search's time goes, per Library primitive, on a library that
`python bench/scale.py --keep` built (either store; --store URL for PostgreSQL).

    python bench/scale_profile.py --size 1000000 --store postgresql://... [--questions 60]

Opens the library, warms up on 20 questions, then times the next N twice (the second pass
finds every BM25 term block already cached by the PostgreSQL reader) and prints calls and ms
per question of `dense`, `lexical`, `vectors` and `get_chunks`. With --write DIR it times
adding DIR's files to the library and deleting them again instead.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scale import SyntheticEmbedder, _questions, config  # noqa: E402


def main() -> None:
    from assistant.retrieve import Retriever
    from index.library import Library

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/askdocs-scale"))
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--store", default=None, help="a postgresql:// URL: the PostgreSQL store")
    ap.add_argument("--write", type=Path, help="time adding this folder's files, then deleting")
    args = ap.parse_args()
    if args.store:
        os.environ["ASKDOCS_STORE"] = args.store
    lib = Library.open(config(args.scratch, args.size, "auto"), SyntheticEmbedder())
    if args.write:  # a small write into the big library, and its removal
        t0 = time.perf_counter()
        report = lib.ingest([args.write])
        print(f"add {report.added} files, {report.chunks_added} chunks: "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        new = {d.doc_id for d in lib.documents() if d.path.startswith(str(args.write.resolve()))}
        t0 = time.perf_counter()
        for doc_id in new:
            lib.delete(doc_id)
        print(f"delete them: {time.perf_counter() - t0:.1f} s")
        return
    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()

    def timer(name: str):  # noqa: ANN202
        inner = getattr(lib, name)

        def timed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t0
                calls[name] += 1

        return timed

    for name in ("dense", "lexical", "vectors", "get_chunks"):
        setattr(lib, name, timer(name))
    retriever = Retriever(lib)
    questions = _questions(20 + args.questions)
    for q in questions[:20]:
        retriever.search(q, k=10)
    for label in ("first pass", "second pass"):
        spent.clear()
        calls.clear()
        ms = []
        for q in questions[20:]:
            t0 = time.perf_counter()
            retriever.search(q, k=10)
            ms.append((time.perf_counter() - t0) * 1000)
        n = len(ms)
        print(f"{label}: p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms")
        for name in spent:
            print(
                f"  {name}: {calls[name] / n:.1f} calls, {spent[name] / n * 1000:.1f} ms a question"
            )


if __name__ == "__main__":
    main()
