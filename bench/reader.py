"""How well the answer step reads: simulated answers over cached candidates, cross-validated.

    python bench/reader.py --library L --cache C.pkl [--check L3:C3.pkl:dev3.jsonl]
                           [--features a,b,...] [--own-first 0.5 0.3 ...] [--select]

Reuses `bench/train_ranker.py`'s candidate cache (retrieval, candidates and their cosines per
question; built on first use). For each variant the ranker is fitted per fold on dev + dev2
(5 folds by a hash of the question id) and answers its held-out fold through `answer.choose`,
exactly as `ask` would choose sentences; `--check` answers another library's questions with the
ranker fitted on all of dev + dev2 (held out: nothing is fitted on it). Printed per set and
direction: *right* (a chosen sentence holds a gold quote) and *first* (the first one does),
over answerable questions, a question the retriever declines counting as wrong. This is the
rule of `askdocs eval --answers` without the near-miss notice, which never changes sentences.

`--select` runs backward elimination over the features (each step drops the feature whose
removal costs least on the cross-validated top-1 share; it stops below `--tolerance` of the
best): the features are chosen on the same folds, so its figure is optimistic and the
`--check` set is the honest one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the root: bench/index.py must not shadow `index`
EVAL = ROOT.parent / "shared" / "eval"
DIRECTIONS = ("en-en", "zh-zh", "zh-en", "en-zh")


def ablate(variant: str) -> None:
    """Replace what the ranker and the near-miss check read from `assistant.crossing` (the
    retrieval in the cache is unchanged): `words=terms` reads word translations from the term
    table (both directions) instead of translations.tsv; `no-words` reads none; `hand` expands
    the question with the hand glossary only."""
    from dataclasses import replace

    import assistant.detail
    import assistant.ranker
    from assistant.crossing import crossing

    base = crossing()
    if variant == "words=terms":
        from ingest.text import terms

        words: dict[str, list[str]] = {}
        for zh, ens in base.terms.zh_to_en.items():
            zh_terms = terms(zh)
            if len(zh_terms) != 1:  # a word-for-word table: single-word Chinese terms only
                continue
            (z,) = zh_terms
            for en in ens:
                for e in terms(en):
                    words.setdefault(z, []).append(e)
                    words.setdefault(e, []).append(z)
        changed = replace(base, words={k: tuple(v) for k, v in words.items()})
    elif variant == "no-words":
        changed = replace(base, words={})
    elif variant == "hand":
        changed = replace(base, terms=base.hand)
    else:
        raise SystemExit(f"unknown --crossing variant {variant!r}")
    assistant.ranker.crossing = lambda: changed  # type: ignore[attr-defined]
    assistant.detail.crossing = lambda: changed  # type: ignore[attr-defined]


def load(library: str, cache: str, questions: list[str]):
    import train_ranker

    from assistant.config import AssistantConfig
    from assistant.evaluate import load_questions
    from assistant.service import Assistant
    from index.config import LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=library)
    config = LibraryConfig(name=library, model=Library.built_model(config) or config.model)
    assistant = Assistant(AssistantConfig(library=config))
    return train_ranker.collect(assistant, [q for p in questions for q in load_questions(p)], cache)


def restricted(rows, keep: tuple[str, ...]):
    """Rows with only the cheap features in `keep` (the dense pair always stays)."""
    from assistant.ranker import CHEAP

    idx = [CHEAP.index(n) for n in keep]
    return [r._replace(x=r.x[:, idx]) for r in rows]


def probs(ranker, row, own: bool) -> np.ndarray:
    """`ranker.score` on the cached features and cosines."""
    from assistant.ranker import EMBED_CHARS, score

    cos = {c.shown[:EMBED_CHARS]: v for c, v in zip(row.cands, row.cos, strict=True)}
    q = row.question.question
    return score(ranker, q, q, row.cands, lambda texts: np.array([cos[t] for t in texts]),
                 cheap=row.x, own=own)  # fmt: skip


def answer(ranker, row, own_first: float | None, own: bool) -> tuple[bool, bool, bool]:
    """(right, first, top-1) of the sentences `choose` takes for the row's question."""
    from assistant.answer import LIST_SENTENCES, MAX_SENTENCES, choose
    from assistant.ranker import cues
    from ingest.text import text_lang

    if not row.answerable:
        return (False, False, False)
    q = row.question.question
    p = probs(ranker, row, own)
    limit = LIST_SENTENCES if cues(q).many else MAX_SENTENCES
    kwargs = {} if own_first is None else {"lang": text_lang(q), "own_first": own_first}
    chosen = choose(row.cands, p, limit, **kwargs)
    gold = {id(c) for c, y in zip(row.cands, row.y, strict=True) if y}
    hits = [id(c) in gold for c in chosen]
    return (any(hits), bool(hits and hits[0]), bool(row.y[int(np.argmax(p))]))


def evaluate(
    rows, checks, keep, own_first, folds: int, embedded: int, own: bool = True
) -> dict[str, dict]:
    from train_ranker import fold_of
    from train_ranker import train as fit_all

    def train(part, embedded, keep, own):
        # questions without a gold candidate teach nothing; left out of the standardisation too
        return fit_all([r for r in part if r.y.any()], embedded, keep, own)

    out: dict[str, dict] = {}
    cv = {}
    for f in range(folds):
        model = train([r for r in rows if fold_of(r.id, folds) != f], embedded, keep, own)
        cv.update({r.id: answer(model, r, own_first, own) for r in rows
                   if fold_of(r.id, folds) == f and r.kind != "none"})  # fmt: skip
    sets = {"dev": [r for r in rows if not r.id.startswith("d2-")],
            "dev2": [r for r in rows if r.id.startswith("d2-")]}  # fmt: skip
    for name, part in sets.items():
        out[name] = {r.kind: [] for r in part}
        for r in part:
            if r.kind != "none":
                out[name][r.kind].append(cv[r.id])
    everything = train(rows, embedded, keep, own)
    for name, part in checks.items():
        out[name] = {}
        for r in part:
            if r.kind != "none":
                out[name].setdefault(r.kind, []).append(answer(everything, r, own_first, own))
    return out


def row_text(label: str, result: dict[str, dict]) -> str:
    cells = []
    for per in result.values():
        every = [v for d in DIRECTIONS for v in per.get(d, [])]
        right = " / ".join(
            f"{np.mean([v[0] for v in per[d]]):.2f}" for d in DIRECTIONS if per.get(d)
        )
        cells.append(f"{right}, **{np.mean([v[0] for v in every]):.3f}** "
                     f"(first {np.mean([v[1] for v in every]):.3f})")  # fmt: skip
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--check", action="append", default=[], help="LIBRARY:CACHE:QUESTIONS")
    ap.add_argument("--features", default=None, help="comma-separated cheap features to keep")
    ap.add_argument("--own-first", type=float, nargs="*", default=[])
    ap.add_argument("--select", action="store_true")
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--crossing", default=None, help="words=terms | no-words | hand (ablation)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.crossing:
        ablate(args.crossing)
    from assistant.ranker import CHEAP, EMBEDDED

    rows = load(args.library, args.cache, [str(EVAL / "dev.jsonl"), str(EVAL / "dev2.jsonl")])
    checks = {}
    for spec in args.check:
        lib, cache, questions = spec.split(":")
        checks[Path(questions).stem] = load(lib, cache, [questions])
    keep = tuple(args.features.split(",")) if args.features else CHEAP
    rows, checks = restricted(rows, keep), {k: restricted(v, keep) for k, v in checks.items()}
    print("| variant | " + " | ".join(["dev (CV)", "dev2 (CV)", *checks]) + " |")
    print("|---|" + "---|" * (2 + len(checks)))
    res = evaluate(rows, checks, keep, None, args.folds, EMBEDDED, own=False)
    print(row_text(f"{len(keep)} features, best first, top {EMBEDDED} embedded", res), flush=True)
    for own in [None, *args.own_first]:
        res = evaluate(rows, checks, keep, own, args.folds, EMBEDDED)
        label = f"{len(keep)} features, + own-language candidate" + (
            "" if own is None else f", own language first {own}"
        )
        print(row_text(label, res), flush=True)
    if args.select:
        select(rows, checks, keep, args)


def select(rows, checks, keep, args) -> None:
    """Backward elimination on the cross-validated top-1 share of dev + dev2."""
    from assistant.ranker import CHEAP, EMBEDDED

    def top1(names):
        idx = [keep.index(n) for n in names]
        sub = [r._replace(x=r.x[:, idx]) for r in rows]
        res = evaluate(sub, {}, names, None, args.folds, EMBEDDED)
        return float(np.mean([v[2] for per in res.values() for d in per.values() for v in d]))

    names = tuple(n for n in CHEAP if n in keep)
    best = top1(names)
    print(f"\nbackward elimination from {len(names)} features: top-1 CV {best:.3f}")
    while len(names) > 1:
        trials = {n: top1(tuple(m for m in names if m != n)) for n in names}
        drop, score = max(trials.items(), key=lambda kv: kv[1])
        if score < best - args.tolerance:
            break
        names = tuple(m for m in names if m != drop)
        best = max(best, score)
        print(f"  drop {drop:16s} -> {len(names)} features, top-1 CV {score:.3f}", flush=True)
    print("kept:", ",".join(names))


if __name__ == "__main__":
    main()
