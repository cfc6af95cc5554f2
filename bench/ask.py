"""Warm `ask` latency (extractive) and how often the answer holds the gold quote.

    python bench/ask.py [--library default] [--questions ../shared/eval/dev.jsonl] [--repeat 1]

Opens the library once (model loaded), answers one warm-up question, then times
`Assistant.ask` (retrieval + extractive answer) for every dev question, one at a time, and
also the answer step alone. "Gold in answer" counts answerable questions whose answer cites
a sentence containing a gold quote (after design.md's folding), or lying inside one; it is
shown next to "gold in top 5" (a relevant passage among the five passages the answer reads),
the most the answer step could reach. Run on an otherwise idle machine for timings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def fold(text: str) -> str:
    text = text.replace("&nbsp;", " ").replace("<br>", " ")
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def holds_gold(texts: list[str], gold: list[dict]) -> bool:
    for g in gold:
        quote = fold(g["quote"])
        for t in map(fold, texts):
            if quote in t or (len(t) >= 20 and t in quote):
                return True
    return False


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", default="default")
    ap.add_argument("--questions", default=str(DEV))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.config import AssistantConfig
    from assistant.service import Assistant
    from index.config import LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=args.library)
    config = LibraryConfig(name=args.library, model=Library.built_model(config) or config.model)
    assistant = Assistant(AssistantConfig(library=config))
    rows = [
        json.loads(x) for x in Path(args.questions).read_text(encoding="utf-8").splitlines() if x
    ]
    t0 = time.perf_counter()
    assistant.ask("warm up: what is a list?")
    cold = time.perf_counter() - t0

    total, answer_only = [], []
    by_kind: dict[str, list[int]] = {}
    for _ in range(args.repeat):
        for r in rows:
            t = time.perf_counter()
            answer = assistant.ask(r["question"])
            total.append(time.perf_counter() - t)
            retrieval = assistant.search(answer.query, k=max(assistant.config.k, 5))
            t = time.perf_counter()
            assistant.extractive.answer(r["question"], retrieval, query=answer.query)
            answer_only.append(time.perf_counter() - t)
            if not r["gold"]:
                continue
            k = by_kind.setdefault(r["kind"], [0, 0, 0])
            k[0] += holds_gold([c.text for c in answer.citations], r["gold"]) and answer.answered
            k[1] += holds_gold([h.chunk.text for h in retrieval.hits[:5]], r["gold"])
            k[2] += 1

    ms = [x * 1000 for x in total]
    ams = [x * 1000 for x in answer_only]
    print(f"library {args.library}: {len(rows)} questions x {args.repeat}, first ask {cold:.1f} s")
    print(f"threads: torch {_torch_threads()}, cpus {os.cpu_count()}\n")
    print("| step | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for label, xs in (("ask (retrieve + answer)", ms), ("answer step only", ams)):
        print(f"| {label} | {pct(xs, 0.5):.0f} | {pct(xs, 0.95):.0f} | {statistics.mean(xs):.0f} |")
    print("\n| kind | gold in answer | gold in top 5 | n |")
    print("|---|---|---|---|")
    sums = [0, 0, 0]
    for kind, (a, t5, n) in sorted(by_kind.items()):
        print(f"| {kind} | {a / n:.2f} | {t5 / n:.2f} | {n // args.repeat} |")
        sums = [sums[0] + a, sums[1] + t5, sums[2] + n]
    print(f"| all | {sums[0] / sums[2]:.2f} | {sums[1] / sums[2]:.2f} | {sums[2] // args.repeat} |")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
