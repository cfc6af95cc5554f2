"""How sensitive the shipped retriever is to each of its parameters, and what each part adds.

    python bench/retrieval.py [--library default] [--questions ../shared/eval/dev.jsonl]

Runs `askdocs eval`'s metrics for the shipped settings, then one row per change: each
parameter moved to either side of its default, and each part switched off (language
calibration, the expansion, lexical evidence). Same library, same process. The questions are
the dev set the defaults were chosen on, so the rows show sensitivity, not held-out quality.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def main() -> int:
    from assistant import evaluate, retrieve
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.library import Library

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default="default")
    p.add_argument("--questions", default=str(DEV))
    args = p.parse_args()

    library = Library.open(LibraryConfig(name=args.library))
    questions = evaluate.load_questions(args.questions)
    d, w, c = retrieve.DEPTH, retrieve.LEXICAL_WEIGHT, retrieve.MIN_COSINE
    variants: dict[str, dict] = {
        f"shipped (depth {d}, lexical weight {w}, min cosine {c})": {},
        "no language calibration": {"calibrate": False},
        "no lexical evidence (weight 0)": {"lexical_weight": 0.0},
        "depth 20": {"depth": 20},
        "depth 30": {"depth": 30},
        "depth 100": {"depth": 100},
        "lexical weight 0.2": {"lexical_weight": 0.2},
        "lexical weight 0.5": {"lexical_weight": 0.5},
        "lexical weight 1.0": {"lexical_weight": 1.0},
        "min cosine 0.82": {"min_cosine": 0.82},
        "min cosine 0.86": {"min_cosine": 0.86},
    }
    reports = {}
    for name, kwargs in variants.items():
        search = evaluate.search_with(Retriever(library, **kwargs))
        reports[name] = evaluate.summarize(evaluate.run(search, questions, 10), 10)
        print(f"done: {name}", file=sys.stderr)
    print(evaluate.format_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
