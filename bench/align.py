"""Learn the cross-language query map shipped in `assistant/alignment.npz` from parallel text.

    python bench/align.py [--pairs ../shared/parallel/python-docs-3.11.train.jsonl]
                          [--n 8000] [--cache /tmp/askdocs-align] [--write]

Why: multilingual-e5-small puts a Chinese question closer to Chinese passages than to the
English passage that answers it (`assistant/calibrate.py` removes two language directions, which
helps but leaves most of the gap). A linear map of query vectors from one language's space to
the other's, learned from real translated paragraphs, carries more of it.

Steps (all reproducible from the repo and the shared parallel file):
1. Pairs: English/Chinese paragraphs of the Python docs' translation, 30–400 English characters,
   the Chinese side actually translated; a seeded sample of `--n`.
2. Pages are split by a hash of their name: one page in five is held out for validation, so no
   paragraph of a validation page ever informs the fit.
3. Both sides are embedded with the `query: ` prompt (the map turns a question into the question
   the other language would have asked); the arrays are cached under `--cache`, not in git.
4. Fit on the training pages: the mean of each language, and the orthogonal Procrustes rotation
   between the centred sets (zh → en; its transpose maps en → zh).
5. Validate on held-out pages: for each held-out Chinese paragraph, the rank of its English
   translation among all held-out English paragraphs (and the reverse), for identity, today's
   language-axes calibration, the mean offset alone, and the map at several strengths.
6. `--write` stores the map (float16 npz, ~300 KB) where `assistant.align` loads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "parallel" / "python-docs-3.11.train.jsonl"
HELD_OUT = 5  # one page in HELD_OUT is validation


def held_out(page: str) -> bool:
    return int(hashlib.sha1(page.encode()).hexdigest(), 16) % HELD_OUT == 0


def load_pairs(path: Path, n: int, seed: int = 13) -> list[dict]:
    from ingest.text import HAN

    rows, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        en, zh = row["en"].strip(), row["zh"].strip()
        if not 30 <= len(en) <= 400 or len(HAN.findall(zh)) < 4 or (en, zh) in seen:
            continue
        seen.add((en, zh))
        rows.append({"page": row["page"], "en": en, "zh": zh})
    random.Random(seed).shuffle(rows)
    return rows[:n]


def embed_cached(embedder, texts: list[str], kind: str, cache: Path) -> np.ndarray:
    key = hashlib.sha256((embedder.name + kind + "\n".join(texts)).encode()).hexdigest()[:16]
    path = cache / f"{kind}-{len(texts)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    t0 = time.perf_counter()
    vecs = embedder.embed(texts, kind=kind)
    print(
        f"embedded {len(texts)} {kind} texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr
    )
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def pair_ranks(queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of target i among all targets for query i, by dot product."""
    scores = queries @ targets.T
    own = np.diag(scores)
    return (scores > own[:, None]).sum(axis=1) + 1


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main() -> int:
    from assistant.align import Alignment, fit_alignment
    from assistant.calibrate import language_axes
    from assistant.glossary import default_glossary
    from index.config import LibraryConfig
    from index.model.embedder import load_embedder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default=str(PAIRS))
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--cache", default="/tmp/askdocs-align")
    p.add_argument("--write", action="store_true", help="store the map in assistant/")
    args = p.parse_args()

    rows = load_pairs(Path(args.pairs), args.n)
    train = [r for r in rows if not held_out(r["page"])]
    val = [r for r in rows if held_out(r["page"])]
    print(
        f"{len(train)} training pairs, {len(val)} held-out pairs "
        f"({len({r['page'] for r in val})} pages)",
        file=sys.stderr,
    )
    config = LibraryConfig()
    embedder = load_embedder(config, progress=lambda m: print(m, file=sys.stderr))
    cache = Path(args.cache)
    zh = embed_cached(embedder, [r["zh"] for r in rows], "query", cache)
    en = embed_cached(embedder, [r["en"] for r in rows], "query", cache)
    is_val = np.array([held_out(r["page"]) for r in rows])
    t0 = time.perf_counter()
    alignment = fit_alignment(zh[~is_val], en[~is_val])
    print(f"fit in {time.perf_counter() - t0:.2f} s", file=sys.stderr)

    axes = language_axes(embedder, default_glossary(), config.models_dir)
    vz, ve = zh[is_val], en[is_val]
    variants = {
        "identity": (vz, ve, ve, vz),
        "language axes (today)": (
            _norm(axes.project(vz)),
            _norm(axes.project(ve)),
            _norm(axes.project(ve)),
            _norm(axes.project(vz)),
        ),
        "mean offset": (
            _norm(vz - alignment.mu_zh + alignment.mu_en),
            ve,
            _norm(ve - alignment.mu_en + alignment.mu_zh),
            vz,
        ),
    }
    for s in (0.5, 0.75, 1.0):
        a = Alignment(alignment.rotation, alignment.mu_zh, alignment.mu_en, s)
        variants[f"procrustes, strength {s}"] = (
            a.map(vz, "zh", "en"),
            ve,
            a.map(ve, "en", "zh"),
            vz,
        )
    print(
        f"\nHeld-out pages: {len(val)} pairs; rank of the translation among all held-out "
        "paragraphs of the other language\n"
    )
    print("| map | zh→en R@1 | zh→en R@5 | zh→en MRR | en→zh R@1 | en→zh R@5 | en→zh MRR |")
    print("|---|---|---|---|---|---|---|")
    for name, (q1, t1, q2, t2) in variants.items():
        cells = []
        for q, t in ((q1, t1), (q2, t2)):
            r = pair_ranks(q, t)
            cells += [f"{(r <= 1).mean():.3f}", f"{(r <= 5).mean():.3f}", f"{(1 / r).mean():.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    # The merged list the retriever ranks: the translation must beat the question's own
    # language too. Own-language paragraphs meet the plain (or projected) question.
    print("\nMixed pool: rank of the translation among held-out paragraphs of both languages\n")
    print("| map | zh→en R@1 | zh→en R@5 | zh→en MRR | en→zh R@1 | en→zh R@5 | en→zh MRR |")
    print("|---|---|---|---|---|---|---|")
    own = {"language axes (today)": (_norm(axes.project(vz)), _norm(axes.project(ve)))}
    for name, (q1, t1, q2, t2) in variants.items():
        sz, se = own.get(name, (vz, ve))
        cells = []
        for q, t, same in ((q1, t1, sz), (q2, t2, se)):
            cross = np.diag(q @ t.T)
            plain = sz if same is sz else se
            same_scores = plain @ same.T
            np.fill_diagonal(same_scores, -np.inf)
            r = (
                (q @ t.T > cross[:, None]).sum(axis=1)
                + (same_scores > cross[:, None]).sum(axis=1)
                + 1
            )
            cells += [f"{(r <= 1).mean():.3f}", f"{(r <= 5).mean():.3f}", f"{(1 / r).mean():.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.write:
        full = fit_alignment(zh[~is_val], en[~is_val])
        path = full.save()
        print(f"\nwrote {path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
