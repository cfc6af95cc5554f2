"""Which sentence features the answer ranker can do without: backward elimination, cross-validated.

    python bench/ablate_ranker.py --library default --cache /tmp/rk.pkl [--tolerance 0.005]

Uses bench/train_ranker.py's candidates (its --cache) and folds. A feature is switched off by
zeroing its column (an L2-regularised logistic regression then gives it no weight), the rankers
are refitted per fold, and the cross-validated share of questions whose top sentence holds the
gold quote is compared. Step by step the feature whose removal costs least is removed while the
figure stays within --tolerance of the full ranker's. Prints one ablation row per feature at
the start (each removed alone) and the elimination path.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("train_ranker", ROOT / "bench" / "train_ranker.py")
tr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tr)


def masked(rows, off: set[str]):
    from assistant.ranker import CHEAP

    cols = [i for i, name in enumerate(CHEAP) if name in off]
    out = []
    for r in rows:
        x = r.x.copy()
        x[:, cols] = 0.0
        cos = np.zeros_like(r.cos) if "cosine" in off else r.cos
        out.append(r._replace(x=x, cos=cos))
    return out


def cv_top1(rows, off: set[str], folds: int = 5, embedded: int = 4) -> float:
    rows = masked([r for r in rows if r.kind != "none"], off)
    hits = []
    for f in range(folds):
        model = tr.train([r for r in rows if tr.fold_of(r.id, folds) != f], embedded)
        hits += [tr.top_is_gold(model, r)[0] for r in rows if tr.fold_of(r.id, folds) == f]
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", default="default")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--tolerance", type=float, default=0.005)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.config import AssistantConfig
    from assistant.evaluate import load_questions
    from assistant.ranker import CHEAP
    from assistant.service import Assistant
    from index.config import LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=args.library)
    config = LibraryConfig(name=args.library, model=Library.built_model(config) or config.model)
    assistant = Assistant(AssistantConfig(library=config))
    questions = [
        q for p in (tr.EVAL / "dev.jsonl", tr.EVAL / "dev2.jsonl") for q in load_questions(p)
    ]
    rows = tr.collect(assistant, questions, args.cache)
    features = [*CHEAP, "cosine"]  # cosine_best goes with cosine
    full = cv_top1(rows, set())
    print(f"all {len(features)} features: top sentence holds gold, CV {full:.3f}\n")
    print("| feature removed alone | CV top-1 | change |\n|---|---|---|")
    for name in features:
        v = cv_top1(rows, {name})
        print(f"| {name} | {v:.3f} | {v - full:+.3f} |")
    off: set[str] = set()
    print("\nbackward elimination (remove the cheapest while within tolerance of all features):")
    while True:
        left = [f for f in features if f not in off]
        scores = {f: cv_top1(rows, off | {f}) for f in left}
        best = max(scores, key=lambda f: (scores[f], f))
        if scores[best] < full - args.tolerance or len(left) <= 1:
            break
        off.add(best)
        print(f"  - {best:<16} CV {scores[best]:.3f} ({len(left) - 1} left)")
    print(f"\nkept ({len(features) - len(off)}): {', '.join(f for f in features if f not in off)}")


if __name__ == "__main__":
    main()
