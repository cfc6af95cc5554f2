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
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
L2 = 1.0
MAX_FLAGGED = 0.03  # share of answerable questions the near-miss check may flag (training folds)


class Row(NamedTuple):
    id: str
    kind: str
    x: np.ndarray  # cheap features of the candidates
    cos: np.ndarray  # their calibrated cosines with the question
    y: np.ndarray  # 1 where a candidate holds a gold quote
    question: object  # assistant.evaluate.Question
    cands: list  # answer.Candidate
    answerable: bool  # the retriever answers it (else `ask` declines before choosing sentences)


def collect(assistant, questions, cache: str | None = None):
    """Per question: a Row (id, kind, cheap features, cosines, labels, question, candidates).

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
            stored[q.id] = (cands, np.asarray(cos, dtype=np.float32), retrieval.answerable)
            print(f"\rcandidates {i + 1}/{len(questions)}", end="", file=sys.stderr)
        if len(stored[q.id]) == 2:  # a cache from before the near-miss check: add the decision
            stored[q.id] = (*stored[q.id], assistant.search(q.question, k=k).answerable)
        cands, cos, answerable = stored[q.id]
        if not cands:
            continue
        x = cheap_features(q.question, q.question, cands)
        y = np.array([matched_quote(c.raw, q.quotes) is not None for c in cands], dtype=np.float64)
        rows.append(Row(q.id, q.kind, x, cos, y, q, cands, answerable))
    print(file=sys.stderr)
    if cache:
        Path(cache).write_bytes(pickle.dumps(stored))
    return rows


def train(rows, embedded: int, names: tuple[str, ...] | None = None, own: bool = True):
    """Both stages fitted on `rows`, whose features are `names` (default: the ranker's own);
    `own=False`: without the own-language candidate (bench/reader.py's comparison)."""
    from assistant.ranker import CHEAP, DENSE, Ranker, dense_features, fit
    from assistant.ranker import embedded as embedded_set
    from ingest.text import text_lang

    names = names or CHEAP
    rows = [r for r in rows if r.kind != "none"]
    cheap = fit([(r.x, r.y) for r in rows], names, L2)
    groups = []
    for r in rows:
        lang = text_lang(r.question.question) if own else None
        top = embedded_set(cheap.logits(r.x), r.cands, lang, embedded)
        groups.append((np.hstack([r.x[top], dense_features(r.cos[top])]), r.y[top]))
    full = fit(groups, names + DENSE, L2)
    return Ranker(cheap, full, embedded)


def top_is_gold(ranker, row) -> tuple[bool, bool]:
    """(the ranked first candidate holds gold, a gold candidate is among the embedded)."""
    from assistant.ranker import dense_features, embedded
    from ingest.text import text_lang

    _, _, x, cos, y, *_ = row
    lang = text_lang(row.question.question)
    top = embedded(ranker.cheap.logits(x), row.cands, lang, ranker.embedded)
    full = ranker.full.logits(np.hstack([x[top], dense_features(cos[top])]))
    return bool(y[top[int(np.argmax(full))]]), bool(y[top].any())


def near_miss_check(ranker, row):
    """assistant.detail's check of the answer `ranker` chooses for the row's question."""
    from assistant.answer import LIST_SENTENCES, MAX_SENTENCES, choose
    from assistant.detail import check, passages
    from assistant.ranker import EMBED_CHARS, cues, score

    q = row.question.question
    cos = {c.shown[:EMBED_CHARS]: v for c, v in zip(row.cands, row.cos, strict=True)}
    probs = score(ranker, q, q, row.cands, lambda texts: np.array([cos[t] for t in texts]))
    chosen = choose(row.cands, probs, LIST_SENTENCES if cues(q).many else MAX_SENTENCES)
    return check(q, q, chosen, passages(row.cands), float(probs.max()))


def with_detail(ranker, rows, most: float = MAX_FLAGGED):
    """`ranker` with the near-miss check fitted on `rows` (questions the retriever answers):
    a logistic regression for "a `none` question", flagging above the probability that flags at
    most MAX_FLAGGED of the answerable ones."""
    from dataclasses import replace

    from assistant.detail import fit

    rows = [r for r in rows if r.answerable]
    x = np.stack([near_miss_check(ranker, r).features for r in rows])
    y = np.array([r.kind == "none" for r in rows], dtype=np.float64)
    model = fit(x, y, L2)
    p = np.sort(1 / (1 + np.exp(-model.logits(x[y == 0]))))[::-1]
    k = int(most * len(p))
    return replace(ranker, detail=model, flag_above=float(p[k]) + 1e-6 if k < len(p) else 0.0)


def flags(ranker, row) -> tuple[bool, bool]:
    """(the answer is flagged as a near miss, the question is declined)."""
    if not row.answerable:
        return (True, True)  # the retriever declines it before any answer is chosen
    return (ranker.flags(near_miss_check(ranker, row).features), False)


def report_detail(rows, cv: dict, insample: dict) -> None:
    """`none` questions declined or answered as near misses, and what it costs answerable ones."""
    print(
        "\n| set | `none` declined or near miss, CV | in-sample | declined outright, CV |"
        " answerable flagged, CV | in-sample | answerable declined, CV | n none / answerable |"
    )
    print("|---|---|---|---|---|---|---|---|")
    sets = {"dev": lambda i: not i.startswith("d2-"), "dev2": lambda i: i.startswith("d2-")}
    for name, inside in [*sets.items(), ("all", lambda i: True)]:
        part = [r for r in rows if inside(r.id)]
        none = [r.id for r in part if r.kind == "none"]
        ans = [r.id for r in part if r.kind != "none"]
        cells = [
            np.mean([cv[i][0] for i in none]), np.mean([insample[i][0] for i in none]),
            np.mean([cv[i][1] for i in none]), np.mean([cv[i][0] for i in ans]),
            np.mean([insample[i][0] for i in ans]), np.mean([cv[i][1] for i in ans]),
        ]  # fmt: skip
        print(
            f"| {name} | "
            + " | ".join(f"{c:.3f}" for c in cells)
            + f" | {len(none)} / {len(ans)} |"
        )
    print("(a question the retriever declines counts as flagged and declined, answerable or not)")


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
    ap.add_argument(
        "--max-flagged",
        type=float,
        default=MAX_FLAGGED,
        help="share of answerable questions the near-miss check may flag",
    )
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
    questions = [q for p in args.questions for q in load_questions(p)]
    t0 = time.perf_counter()
    every = collect(assistant, questions, args.cache)
    rows = [r for r in every if r.kind != "none"]
    print(f"{len(rows)} questions, {sum(len(r[4]) for r in rows)} candidates, "
          f"{sum(int(r[4].sum()) for r in rows)} positive; features in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip

    everything = with_detail(train(rows, embedded), every, args.max_flagged)
    cv: dict[str, tuple[bool, bool]] = {}
    flagged: dict[str, tuple[bool, bool]] = {}
    fold_models = []
    for f in range(args.folds):
        held = [r for r in every if fold_of(r[0], args.folds) == f]
        model = train([r for r in rows if fold_of(r[0], args.folds) != f], embedded)
        train_rows = [r for r in every if fold_of(r[0], args.folds) != f]
        model = with_detail(model, train_rows, args.max_flagged)
        fold_models.append({"ids": [r[0] for r in held], "ranker": model.to_json()})
        cv.update({r[0]: top_is_gold(model, r) for r in held if r.kind != "none"})
        flagged.update({r.id: flags(model, r) for r in held})
    insample = {r[0]: top_is_gold(everything, r) for r in rows}
    report_detail(every, flagged, {r.id: flags(everything, r) for r in every})

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
    print("\nnear-miss check (standardised features):")
    for name, w in zip(everything.detail.names, everything.detail.coef, strict=True):
        print(f"  {name:16s} {w:+.3f}")
    print(f"  flagged above p = {everything.flag_above:.3f}")
    if os.environ.get("ASKDOCS_SHOW_FLAGS"):
        for r in every:
            if r.kind == "none" or flagged[r.id][0]:
                found = near_miss_check(everything, r) if r.answerable else None
                print(
                    r.id,
                    r.kind,
                    flagged[r.id],
                    r.question.question[:40],
                    found and (found.features.round(2), found.absent, found.unseen),
                )
    if args.folds_out:
        Path(args.folds_out).write_text(json.dumps({"folds": fold_models}), encoding="utf-8")
        print(f"wrote {args.folds_out}")
    if args.write:
        everything.save(WEIGHTS_FILE)
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
