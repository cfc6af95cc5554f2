"""How sensitive the shipped retriever is to each of its parameters, and what each part adds.

    python bench/retrieval.py [--library default] [--questions ../shared/eval/dev.jsonl ...]

Runs `askdocs eval`'s metrics for the shipped settings, then one row per change: each
parameter moved to either side of its default, and each part switched off (the learned map,
language calibration, lexical evidence, rare-word names). Same library, same process, one
table per question set (dev and dev2 by default). The defaults were chosen on these sets, so
the rows show sensitivity, not held-out quality.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = [str(ROOT.parent / "shared" / "eval" / f) for f in ("dev.jsonl", "dev2.jsonl")]


def main() -> int:
    from assistant import evaluate, retrieve
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.library import Library

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", default="default")
    p.add_argument("--questions", nargs="+", default=SETS)
    p.add_argument("--only", default="", help="comma-separated parts of the rows to run")
    args = p.parse_args()

    library = Library.open(LibraryConfig(name=args.library))
    d, w, c = retrieve.DEPTH, retrieve.LEXICAL_WEIGHT, retrieve.MIN_COSINE
    b = retrieve.OTHER_BONUS
    variants: dict[str, dict] = {
        f"shipped (depth {d}, lexical weight {w}, other bonus {b}, min cosine {c})": {},
        "no learned map (calibration only)": {"align": False},
        "no learned map, no bonus": {"align": False, "other_bonus": 0.0},
        "no language calibration, no map": {"calibrate": False, "align": False},
        "other bonus 0": {"other_bonus": 0.0},
        "other bonus 0.01": {"other_bonus": 0.01},
        "other bonus 0.03": {"other_bonus": 0.03},
        "no lexical evidence (weight 0)": {"lexical_weight": 0.0},
        "lexical weight 0.35": {"lexical_weight": 0.35},
        "lexical weight 0.5": {"lexical_weight": 0.5},
        "lexical weight 1.0": {"lexical_weight": 1.0},
        "depth 30": {"depth": 30},
        "depth 100": {"depth": 100},
        "no rare-word names": {"rare_names": False},
        "hand glossary only (no mined terms)": {"mined_terms": False},
        "min cosine 0.82": {"min_cosine": 0.82},
        "min cosine 0.86": {"min_cosine": 0.86},
    }
    if args.only:
        keep = [part.strip() for part in args.only.split(",")]
        variants = {
            n: v
            for n, v in variants.items()
            if n.startswith("shipped") or any(k in n for k in keep)
        }
    for path in args.questions:
        questions = evaluate.load_questions(path)
        reports = {}
        for name, kwargs in variants.items():
            search = evaluate.search_with(Retriever(library, **kwargs))
            reports[name] = evaluate.summarize(evaluate.run(search, questions, 10), 10)
            print(f"done: {Path(path).name} {name}", file=sys.stderr)
        print(f"\n### {Path(path).name}\n")
        print(evaluate.format_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
