"""Fit the abstention floor (the best cosine a question must reach) for the library's model.

    python bench/floor.py [--library default] [--questions A.jsonl B.jsonl] [--write]
                          [--check LIBRARY:QUESTIONS ...]

Why per model: the floor is a cosine, and a cosine's scale belongs to the model's geometry
(the shipped adapter moves it). Every question runs through the shipped retriever once with no
floor; a floor then declines a question when its best cosine is below it. The floor is the highest
that declines at most 2% of the answerable questions of the training folds (5 folds by a hash of the
question id); printed: the cross-validated decisions (each fold's floor applied to the questions
it never saw) beside the in-sample ones, and for --check sets (another library: dev3) the
floor fitted on all tuning questions. `--write` stores the floor in the shipped adapter's
metadata (index/model/askdocs-adapter.safetensors), where the retriever reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = [str(ROOT.parent / "shared" / "eval" / f) for f in ("dev.jsonl", "dev2.jsonl")]


MAX_LOST = 0.02


def collect(library: str, paths: list[str]) -> list[tuple[str, bool, float, bool]]:
    """(id, answerable, best cosine, names something unknown) per question."""
    from assistant import evaluate
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=library)
    lib = Library.open(
        LibraryConfig(name=library, model=Library.built_model(config) or config.model)
    )
    retriever = Retriever(lib, min_cosine=0.0)
    rows = []
    for path in paths:
        for q in evaluate.load_questions(path):
            r = retriever.search(q.question, 10)
            rows.append((q.id, q.answerable, r.confidence, bool(r.unknown)))
    return rows


def decide(rows, floor: float) -> dict[str, float]:
    ans = [best >= floor and not unk for _, a, best, unk in rows if a]
    none = [not (best >= floor and not unk) for _, a, best, unk in rows if not a]
    kept = sum(ans) / max(1, len(ans))
    declined = sum(none) / max(1, len(none))
    return {
        "answerable declined": 1 - kept,
        "none declined": declined,
    }


def fit(rows) -> float:
    """The highest floor that declines at most MAX_LOST of the answerable questions: a wrong
    refusal costs a user more than an answer to a question the library cannot answer, which
    the answer path's near-miss check still catches."""
    grid = sorted({round(best, 4) for _, _, best, _ in rows} | {0.0})
    ok = [f for f in grid if decide(rows, f)["answerable declined"] <= MAX_LOST]
    return max(ok)


def fold_of(qid: str, folds: int = 5) -> int:
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % folds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--library", default="default")
    ap.add_argument("--questions", nargs="+", default=SETS)
    ap.add_argument("--check", nargs="*", default=[], help="LIBRARY:QUESTIONS, reported only")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows = collect(args.library, args.questions)
    cv_rows = []
    for k in range(5):
        train = [r for r in rows if fold_of(r[0]) != k]
        floor = fit(train)
        cv_rows += [(*r[:3], r[3], floor) for r in rows if fold_of(r[0]) == k]
    cv_ans = [b >= f and not u for _, a, b, u, f in cv_rows if a]
    cv_none = [not (b >= f and not u) for _, a, b, u, f in cv_rows if not a]
    floor = fit(rows)
    ins = decide(rows, floor)
    print(f"floor fitted on all {len(rows)} tuning questions: {floor:.4f}")
    print(f"{'':<28}{'answerable declined':>20}{'none declined':>15}")
    cv = (1 - sum(cv_ans) / len(cv_ans), sum(cv_none) / max(1, len(cv_none)))
    print(f"{'tuning sets, CV':<28}{cv[0]:>20.3f}{cv[1]:>15.3f}")
    print(
        f"{'tuning sets, in-sample':<28}{ins['answerable declined']:>20.3f}{ins['none declined']:>15.3f}"
    )
    for spec in args.check:
        library, path = spec.split(":", 1)
        held = decide(collect(library, [path]), floor)
        print(
            f"{Path(path).stem + ' (held out)':<28}{held['answerable declined']:>20.3f}{held['none declined']:>15.3f}"
        )
    if args.write:
        from index.model import adapter as adapters

        shipped = adapters.load(adapters.SHIPPED)
        meta = {**shipped.meta, "min_cosine": floor}
        adapters.Adapter(shipped.name, shipped.scaling, shipped.tensors, meta).save(
            adapters.SHIPPED
        )
        print(f"wrote min_cosine {floor:.4f} into {adapters.SHIPPED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
