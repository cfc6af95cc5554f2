"""Warm `ask` latency (extractive) and how often the answer holds the gold quote.

    python bench/ask.py [--library default] [--questions ../shared/eval/dev.jsonl] [--repeat 1]

Opens the library once (model loaded), answers one warm-up question, then times what
`Assistant.ask` does for each dev question, one at a time: retrieval, then the extractive
answer (also shown alone). "Gold in answer" counts answerable questions whose answer cites
a sentence holding a gold quote (after the relevance rule's folding; see `holds_gold`); it is
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
    """A cited text holds a gold quote: the whole quote, or, for a quote running over two
    sentences, at least 60% of it (a prefix ending the text or a suffix starting it), the
    rule assistant/evaluate.py applies to chunk boundaries."""
    for g in gold:
        quote = fold(g["quote"])
        need = max(1, int(0.6 * len(quote) + 0.999))
        for t in map(fold, texts):
            if quote in t or (len(t) >= 20 and t in quote):
                return True
            if any(
                t.endswith(quote[:n]) or t.startswith(quote[-n:]) for n in range(need, len(quote))
            ):
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
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
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
    rows = rows[: args.limit] if args.limit else rows
    k = max(assistant.config.k, 5)
    for rep in range(args.repeat):
        for i, r in enumerate(rows):
            # What Assistant.ask does for a fresh question: search, then the extractive answer.
            t = time.perf_counter()
            retrieval = assistant.search(r["question"], k=k)
            t1 = time.perf_counter()
            answer = assistant.extractive.answer(r["question"], retrieval)
            t2 = time.perf_counter()
            total.append(t2 - t)
            answer_only.append(t2 - t1)
            print(f"\r{rep + 1}/{args.repeat} {i + 1}/{len(rows)}", end="", file=sys.stderr)
            if not r["gold"] or rep:
                continue
            kind = by_kind.setdefault(r["kind"], [0, 0, 0])
            kind[0] += holds_gold([c.text for c in answer.citations], r["gold"]) and answer.answered
            kind[1] += holds_gold([h.chunk.text for h in retrieval.hits[:5]], r["gold"])
            kind[2] += 1
    print(file=sys.stderr)

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
        print(f"| {kind} | {a / n:.2f} | {t5 / n:.2f} | {n} |")
        sums = [sums[0] + a, sums[1] + t5, sums[2] + n]
    print(f"| all | {sums[0] / sums[2]:.2f} | {sums[1] / sums[2]:.2f} | {sums[2]} |")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
