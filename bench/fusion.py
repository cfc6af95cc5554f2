"""Fusion experiments: collect every candidate's evidence once, then score fusion rules fast.

    python bench/fusion.py collect [--library default] [--out /tmp/fusion13.pkl]
    python bench/fusion.py sweep [--in /tmp/fusion13.pkl]

`collect` runs the questions of dev.jsonl and dev2.jsonl through the library and, for each
question, keeps every candidate any component would consider (dense top per language with the
plain, the calibrated and the mapped query; BM25 top per language), with its features and its
relevance label (design.md's rule). `sweep` then ranks by fusion rules without embedding
anything again. Development tool: the figures it prints are on the tuning sets.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = [ROOT.parent / "shared" / "eval" / f for f in ("dev.jsonl", "dev2.jsonl")]
DEPTH = 50


def collect(args) -> None:
    from assistant import evaluate
    from assistant.align import load_alignment
    from assistant.calibrate import language_axes
    from assistant.crossing import crossing
    from index.config import LibraryConfig
    from index.library import Library
    from ingest.text import detect_lang

    library = Library.open(LibraryConfig(name=args.library))
    emb = library.embedder
    axes = language_axes(emb, crossing().hand, library.config.models_dir)
    align = load_alignment(emb.name)
    glossary = crossing().hand
    present = list(library.langs())
    from ingest.text import tokenize

    store = library._store()
    docs = {code: {j: set(t) for j, t in store.tokens(code)} for code in present}
    df = {code: Counter(t for toks in d.values() for t in toks) for code, d in docs.items()}

    def idf(code: str, tok: str) -> float:
        n = len(docs[code])
        return float(np.log(1 + (n - df[code][tok] + 0.5) / (df[code][tok] + 0.5)))

    rows = []
    for path in SETS:
        for q in evaluate.load_questions(path):
            text = q.question.strip()
            q_lang = detect_lang(text, default="en")
            expansion = glossary.expand(text, q_lang)
            lex_text = f"{text} {expansion}".strip()
            plain, exp = emb.embed([text, f"{text} {expansion}" if expansion else text], "query")
            cands = []
            for code in present:
                other = code != q_lang
                mapped = align.map(plain, q_lang, code) if align is not None else plain
                mapped_exp = align.map(exp, q_lang, code) if align is not None else exp
                ids = [j for j, _ in library.dense(plain, DEPTH, code)]
                ids += [j for j, _ in library.dense(axes.project(exp), DEPTH, code)]
                if other:
                    ids += [j for j, _ in library.dense(mapped, DEPTH, code)]
                    ids += [j for j, _ in library.dense(mapped_exp, DEPTH, code)]
                bm25 = dict(library.lexical(lex_text, DEPTH, code))
                bm25_q = dict(library.lexical(text, DEPTH, code))
                ids = list(dict.fromkeys(ids + list(bm25)))
                if not ids:
                    continue
                vecs = library.vectors(ids, code)
                q_toks = {t: idf(code, t) for t in dict.fromkeys(tokenize(text)) if df[code][t]}
                x_toks = {t: idf(code, t) for t in dict.fromkeys(tokenize(lex_text)) if df[code][t]}
                chunks = {c.chunk_id: c for c in library.get_chunks(ids)}
                feats = {
                    "cos_plain": vecs @ plain,
                    "cos_exp": vecs @ exp,
                    "cos_cal": axes.cosines(exp, vecs),
                    "cos_cal_plain": axes.cosines(plain, vecs),
                    "cos_map": vecs @ mapped,
                    "cos_map_exp": vecs @ mapped_exp,
                }
                for i, j in enumerate(ids):
                    c = chunks.get(j)
                    if c is None:
                        continue
                    rel = (
                        evaluate.matched_quote(c.text, q.quotes) is not None if q.quotes else False
                    )
                    cands.append(
                        {
                            "id": j,
                            "lang": code,
                            "other": other,
                            "bm25": bm25.get(j, 0.0),
                            "bm25_q": bm25_q.get(j, 0.0),
                            "cover_q": sum(w for t, w in q_toks.items() if t in docs[code][j])
                            / (sum(q_toks.values()) or 1.0),
                            "cover_x": sum(w for t, w in x_toks.items() if t in docs[code][j])
                            / (sum(x_toks.values()) or 1.0),
                            "idf_q": sum(q_toks.values()),
                            "rel": rel,
                            "text": c.text,
                            **{k: float(v[i]) for k, v in feats.items()},
                        }
                    )
            rows.append(
                {
                    "set": path.stem,
                    "id": q.id,
                    "kind": q.kind,
                    "question": text,
                    "q_lang": q_lang,
                    "expansion": expansion,
                    "cands": cands,
                }
            )
            print(f"{path.stem} {q.id} {len(cands)} candidates", file=sys.stderr)
    Path(args.out).write_bytes(pickle.dumps(rows))


def zs(values: np.ndarray, top: int = DEPTH) -> np.ndarray:
    """z-scores against the mean and spread of the `top` largest values."""
    ref = np.sort(values)[::-1][:top]
    return (values - ref.mean()) / (ref.std() + 1e-6)


def metrics(rows: list[dict], score) -> dict[str, tuple[float, float]]:
    """{kind: (R@5, MRR@10)} of ranking each question's candidates by `score(question)`."""
    out: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row["kind"] == "none" or not row["cands"]:
            continue
        s = score(row)
        order = np.argsort(-s, kind="stable")[:10]
        rel = [row["cands"][i]["rel"] for i in order]
        first = next((r for r, ok in enumerate(rel, 1) if ok), None)
        for key in (row["kind"], "all", f"{row['set']}:{row['kind']}", f"{row['set']}:all"):
            out.setdefault(key, []).append(
                (float(first is not None and first <= 5), 1 / first if first else 0.0)
            )
    return {k: tuple(np.mean(v, axis=0)) for k, v in out.items()}


def table(results: dict[str, dict]) -> str:
    cols = ["en-en", "zh-zh", "zh-en", "en-zh", "all"]
    lines = [
        "| rule | "
        + " | ".join(f"{s} {c}" for s in ("dev", "dev2") for c in cols)
        + " | both all R@5 | both MRR |"
    ]
    for name, m in results.items():
        cells = [f"{m[f'{s}:{c}'][0]:.2f}" for s in ("dev", "dev2") for c in cols]
        cells += [f"{m['all'][0]:.3f}", f"{m['all'][1]:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _arr(row: dict, key: str) -> np.ndarray:
    return np.array([c[key] for c in row["cands"]], dtype=float)


def _lexical_z(row: dict) -> np.ndarray:
    """BM25 z within each language's matches; the rest of that language gets the lowest z."""
    bm25, langs = _arr(row, "bm25"), np.array([c["lang"] for c in row["cands"]])
    out = np.zeros_like(bm25)
    for code in set(langs):
        lang, pos = langs == code, (langs == code) & (bm25 > 0)
        if pos.sum() == 1:
            out[pos] = 1.0
        elif pos.sum() > 1:
            mu, sd = bm25[pos].mean(), bm25[pos].std() + 1e-6
            out[pos] = (bm25[pos] - mu) / sd
            out[lang & ~pos] = (bm25[pos].min() - mu) / sd
    return out


def rule(w: float, bonus: float, other: str = "cos_map"):
    """The shipped fusion: calibrated cosine for the question's own language, `other`
    (+ bonus) for the other language, z over the merged top, plus w · lexical z."""

    def score(row: dict) -> np.ndarray:
        o = np.array([c["other"] for c in row["cands"]])
        dense = np.where(o, _arr(row, other) + bonus, _arr(row, "cos_cal"))
        return zs(dense) + w * _lexical_z(row)

    return score


GRID = [(w, b) for w in (0.35, 0.5, 0.7, 1.0) for b in (0.0, 0.01, 0.02, 0.03)]


def sweep(args) -> None:
    rows = [r for r in pickle.loads(Path(args.inp).read_bytes()) if r["kind"] != "none"]
    results = {"calibration only, w 0.35 (before)": metrics(rows, rule(0.35, 0.0, "cos_cal"))}
    for w, b in GRID:
        results[f"map, w {w}, bonus {b}"] = metrics(rows, rule(w, b))

    def fit(sample: list[dict]) -> tuple[float, float]:
        return max(GRID, key=lambda p: sum(metrics(sample, rule(*p))["all"]))

    # 5-fold by question: parameters chosen on four folds score the fifth.
    order = np.random.default_rng(0).permutation(len(rows))
    folds = np.array_split(order, 5)
    chosen: dict[int, tuple[float, float]] = {}
    for k, fold in enumerate(folds):
        params = fit([rows[i] for j, f in enumerate(folds) if j != k for i in f])
        print(f"fold {k}: w {params[0]}, bonus {params[1]}", file=sys.stderr)
        chosen.update({id(rows[i]): params for i in fold})
    results["5-fold CV (w, bonus chosen on 4/5)"] = metrics(rows, lambda r: rule(*chosen[id(r)])(r))
    best = fit(rows)
    results[f"in-sample best: w {best[0]}, bonus {best[1]}"] = metrics(rows, rule(*best))
    print(table(results))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["collect", "sweep"])
    p.add_argument("--library", default="default")
    p.add_argument("--out", default="/tmp/fusion13.pkl")
    p.add_argument("--in", dest="inp", default="/tmp/fusion13.pkl")
    args = p.parse_args()
    collect(args) if args.mode == "collect" else sweep(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
