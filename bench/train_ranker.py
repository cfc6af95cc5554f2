"""Train the answer-sentence ranker (assistant/ranker.json) and report cross-validated figures.

    python bench/train_ranker.py [--library default] [--questions A.jsonl B.jsonl]
                                 [--folds 5] [--folds-out FILE] [--write]

For every answerable question the shipped retriever runs, the candidates of its top passages are
built exactly as `ask` builds them, and a candidate is a positive when it holds a gold quote
(design.md's relevance rule). Every candidate is embedded once (calibrated cosine with the
question), so both stages can be fitted: the cheap stage on all candidates, the full stage on the
`EMBEDDED` best of the cheap stage. Questions are split into folds by a hash of their id; each
fold's ranker is fitted on the other folds. Printed: how often the top candidate holds a gold
quote, cross-validated and in-sample, per kind. `--folds-out` writes the fold rankers with their
question ids, for `askdocs eval --answers --folds FILE` (answers of each question by the ranker
that never saw it); `--write` fits on all questions and writes assistant/ranker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
L2 = 1.0


def collect(assistant, questions, cache: str | None = None):
    """Per question: (id, kind, cheap features, cosines, labels).

    Retrieval, candidates and their cosines are the slow part (minutes); with `cache` they are
    kept in a pickle, so that features can be changed and the ranker refitted in seconds.
    """
    import pickle

    from assistant.answer import TOP_HITS, ExtractiveAnswerer, candidates
    from assistant.evaluate import matched_quote
    from assistant.ranker import EMBED_CHARS, cheap_features

    stored = {}
    if cache and Path(cache).is_file():
        stored = pickle.loads(Path(cache).read_bytes())
    answerer = ExtractiveAnswerer(assistant.library, ranker=None)  # ranker.json may not exist
    k = max(assistant.config.k, 5)
    rows = []
    for i, q in enumerate(questions):
        if q.id not in stored:
            retrieval = assistant.search(q.question, k=k)
            cands = candidates(retrieval.hits[:TOP_HITS], answerer.text_of)
            texts = [c.shown[:EMBED_CHARS] for c in cands]
            cos = answerer.similarity(q.question)(texts) if cands else np.zeros(0)
            stored[q.id] = (cands, np.asarray(cos, dtype=np.float32))
            print(f"\rcandidates {i + 1}/{len(questions)}", end="", file=sys.stderr)
        cands, cos = stored[q.id]
        if not cands:
            continue
        x = cheap_features(q.question, q.question, cands)
        y = np.array([matched_quote(c.raw, q.quotes) is not None for c in cands], dtype=np.float64)
        rows.append((q.id, q.kind, x, cos, y))
    print(file=sys.stderr)
    if cache:
        Path(cache).write_bytes(pickle.dumps(stored))
    return rows


def train(rows, embedded: int):
    from assistant.ranker import CHEAP, FEATURES, Ranker, dense_features, fit

    cheap = fit([(r[2], r[4]) for r in rows], CHEAP, L2)
    groups = []
    for _, _, x, cos, y in rows:
        top = np.argsort(-cheap.logits(x), kind="stable")[:embedded]
        groups.append((np.hstack([x[top], dense_features(cos[top])]), y[top]))
    full = fit(groups, FEATURES, L2)
    return Ranker(cheap, full, embedded)


def top_is_gold(ranker, row) -> tuple[bool, bool]:
    """(the ranked first candidate holds gold, a gold candidate is among the embedded)."""
    from assistant.ranker import dense_features

    _, _, x, cos, y = row
    top = np.argsort(-ranker.cheap.logits(x), kind="stable")[: ranker.embedded]
    full = ranker.full.logits(np.hstack([x[top], dense_features(cos[top])]))
    return bool(y[top[int(np.argmax(full))]]), bool(y[top].any())


def fold_of(qid: str, folds: int) -> int:
    return zlib.crc32(qid.encode()) % folds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", default="default")
    ap.add_argument(
        "--questions", nargs="+", default=[str(EVAL / "dev.jsonl"), str(EVAL / "dev2.jsonl")]
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--embedded", type=int, default=None)
    ap.add_argument("--folds-out", default=None)
    ap.add_argument("--write", action="store_true", help="write assistant/ranker.json")
    ap.add_argument("--cache", default=None, help="pickle of candidates and cosines to reuse")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.config import AssistantConfig
    from assistant.evaluate import load_questions
    from assistant.ranker import EMBEDDED, WEIGHTS_FILE
    from assistant.service import Assistant
    from index.config import LibraryConfig
    from index.library import Library

    embedded = args.embedded or EMBEDDED
    config = LibraryConfig(name=args.library)
    config = LibraryConfig(name=args.library, model=Library.built_model(config) or config.model)
    assistant = Assistant(AssistantConfig(library=config))
    questions = [q for p in args.questions for q in load_questions(p) if q.answerable]
    t0 = time.perf_counter()
    rows = collect(assistant, questions, args.cache)
    print(f"{len(rows)} questions, {sum(len(r[4]) for r in rows)} candidates, "
          f"{sum(int(r[4].sum()) for r in rows)} positive; features in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip

    everything = train(rows, embedded)
    cv: dict[str, tuple[bool, bool]] = {}
    fold_models = []
    for f in range(args.folds):
        held = [r for r in rows if fold_of(r[0], args.folds) == f]
        model = train([r for r in rows if fold_of(r[0], args.folds) != f], embedded)
        fold_models.append({"ids": [r[0] for r in held], "ranker": model.to_json()})
        cv.update({r[0]: top_is_gold(model, r) for r in held})
    insample = {r[0]: top_is_gold(everything, r) for r in rows}

    kinds = sorted({r[1] for r in rows}) + ["all"]
    print("\n| kind | top sentence holds gold, CV | in-sample | gold among embedded, CV | n |")
    print("|---|---|---|---|---|")
    for kind in kinds:
        ids = [r[0] for r in rows if kind in ("all", r[1])]
        a = np.mean([cv[i][0] for i in ids])
        b = np.mean([insample[i][0] for i in ids])
        c = np.mean([cv[i][1] for i in ids])
        print(f"| {kind} | {a:.3f} | {b:.3f} | {c:.3f} | {len(ids)} |")
    print(f"\nquestions with a gold candidate at all: {np.mean([r[4].any() for r in rows]):.3f}")
    print("\nweights (standardised features), full stage:")
    for name, w in zip(everything.full.names, everything.full.coef, strict=True):
        print(f"  {name:15s} {w:+.3f}")
    if args.folds_out:
        Path(args.folds_out).write_text(json.dumps({"folds": fold_models}), encoding="utf-8")
        print(f"wrote {args.folds_out}")
    if args.write:
        everything.save(WEIGHTS_FILE)
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
