"""Learn a word-translation table from the parallel paragraphs: `assistant/translations.tsv`.

    python bench/translate.py [--pairs ../shared/parallel/python-docs-3.11.train.jsonl]
                              [--iterations 8] [--write]

Why: the answer ranker meets a Chinese question and an English sentence only through shared code
names and the glossary (417 hand terms + 1366 mined nouns), so ordinary words (递归 → recursion,
默认 → default, 慢 → slow) do not connect. IBM Model 1 learns t(target word | source word) from
aligned paragraphs alone, for every word the translation uses, in both directions.

Method: both sides are bags of `ingest.text.terms` (the ranker's words: English stems, jieba
words, code names); a term on both sides of a pair (code, numbers) is left out, it needs no
translation. EM over the (pair, source, target) triples, with an empty source word per pair
that absorbs targets nothing translates; started from uniform. Kept: per source word seen in
MIN_PAIRS training pairs or more, its best translations with t ≥ MIN_PROB (at most TOP).
Validation on held-out pages (one in five, bench/align.py's split): each held-out Chinese
paragraph ranks all held-out English paragraphs by the IDF-weighted share of its words that
occur in them as they are or translated (and the reverse); printed: how often its own translation comes first,
for the table, the glossary, and shared words alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "parallel" / "python-docs-3.11.train.jsonl"
OUT = ROOT / "assistant" / "translations.tsv"
MIN_PAIRS = 3
MIN_PROB = 0.08
TOP = 4


def bags(pairs: list[dict]) -> list[tuple[list[str], list[str]]]:
    """(Chinese-side terms, English-side terms) per pair, terms on both sides left out."""
    from ingest.text import terms

    out = []
    for pair in pairs:
        zh, en = terms(pair["zh"]), terms(pair["en"])
        shared = zh & en
        out.append((sorted(zh - shared), sorted(en - shared)))
    return out


def model1(pairs: list[tuple[list[str], list[str]]], iterations: int):
    """t(target | source) of IBM Model 1 by EM: (source words, target words, cells), where
    cells = (source index, target index, t) arrays over the pairs that ever co-occur."""
    src_vocab: dict[str, int] = {"": 0}  # 0: the empty source word
    tgt_vocab: dict[str, int] = {}
    s_idx, t_idx, group = [], [], []
    g = 0
    for src, tgt in pairs:
        if not tgt:
            continue
        s = [0] + [src_vocab.setdefault(w, len(src_vocab)) for w in src]
        for w in tgt:
            t = tgt_vocab.setdefault(w, len(tgt_vocab))
            s_idx += s
            t_idx += [t] * len(s)
            group += [g] * len(s)
            g += 1  # one group per (pair, target word): its alignment sums to one
    s_arr, t_arr, g_arr = (np.asarray(a, dtype=np.int64) for a in (s_idx, t_idx, group))
    key = s_arr * len(tgt_vocab) + t_arr
    uniq, cell = np.unique(key, return_inverse=True)
    prob = np.full(len(uniq), 1.0 / len(tgt_vocab))
    src_of = uniq // len(tgt_vocab)
    for _ in range(iterations):
        p = prob[cell]
        post = p / np.bincount(g_arr, weights=p)[g_arr]
        counts = np.bincount(cell, weights=post, minlength=len(uniq))
        prob = counts / np.bincount(src_of, weights=counts)[src_of]
    return list(src_vocab), list(tgt_vocab), (src_of, uniq % len(tgt_vocab), prob)


def best(pairs, iterations: int, source_zh: bool) -> dict[str, list[tuple[str, float]]]:
    """Source word → its kept translations (in the other script), best first."""
    from ingest.text import HAN

    seen = Counter(w for src, _ in pairs for w in src)
    src, tgt, (src_of, tgt_of, prob) = model1(pairs, iterations)
    out: dict[str, list[tuple[str, float]]] = {}
    for k in np.lexsort((-prob, src_of)):  # by source word, then most probable first
        word, translation, t = src[src_of[k]], tgt[tgt_of[k]], float(prob[k])
        if not word or seen[word] < MIN_PAIRS or bool(HAN.search(word)) != source_zh:
            continue
        kept = out.setdefault(word, [])
        if len(kept) < TOP and t >= MIN_PROB and bool(HAN.search(translation)) != source_zh:
            kept.append((translation, t))
    return {w: v for w, v in out.items() if v}


def first_hit(table: dict[str, list[str]], pairs: list[tuple[set[str], set[str]]]) -> float:
    """Share of held-out source paragraphs whose own translation ranks first among all held-out
    target paragraphs by the IDF-weighted share of source words found (as is or translated)."""
    vocab: dict[str, int] = {}
    cells = [(vocab.setdefault(w, len(vocab)), j) for j, (_, tgt) in enumerate(pairs) for w in tgt]
    target = np.zeros((len(vocab), len(pairs)), dtype=bool)  # words × paragraphs
    target[tuple(np.array(cells).T)] = True
    hits = 0
    for i, (src, _) in enumerate(pairs):
        score = np.zeros(len(pairs))
        total = 0.0
        for w in src:
            words = [v for v in [w, *table.get(w, ())] if v in vocab]
            if not words:
                continue
            found = target[[vocab[v] for v in words]].any(axis=0)
            idf = math.log(1 + len(pairs) / max(1, found.sum()))
            score += idf * found
            total += idf
        hits += total > 0 and int(np.argmax(score)) == i and score[i] > 0
    return hits / len(pairs)


def main() -> int:
    from assistant.crossing import crossing
    from ingest.text import terms

    sys.path.insert(0, str(ROOT / "bench"))
    from align import held_out

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default=str(PAIRS))
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    rows = [json.loads(line) for line in Path(args.pairs).read_text(encoding="utf-8").splitlines()]
    train = bags([r for r in rows if not held_out(r["page"])])
    # Held out as the ranker sees text: code and numbers shared by both sides kept.
    val = [(terms(r["zh"]), terms(r["en"])) for r in rows if held_out(r["page"])]
    val = [(z, e) for z, e in val if z - e and e - z]
    zh_en = best(train, args.iterations, True)
    en_zh = best([(e, z) for z, e in train], args.iterations, False)
    gloss = crossing().hand
    g_zh = {z: [w for e in v for w in terms(e)] for z, v in gloss.zh_to_en.items()}
    g_en = {}
    for e, zs in gloss.en_to_zh.items():
        for w in terms(e):
            g_en.setdefault(w, []).extend(w2 for z in zs for w2 in terms(z))
    print(f"{len(train)} training pairs, {len(val)} held-out pairs with words on both sides; "
          f"{len(zh_en)} Chinese and {len(en_zh)} English words kept")  # fmt: skip
    print("\n| direction | shared words only | glossary | Model 1 table | glossary + table |")
    print("|---|---|---|---|---|")
    rev = [(e, z) for z, e in val]
    for name, pairs, table, glo in (("zh→en", val, zh_en, g_zh), ("en→zh", rev, en_zh, g_en)):
        tr = {w: [t for t, _ in v] for w, v in table.items()}
        both = {w: tr.get(w, []) + glo.get(w, []) for w in tr.keys() | glo.keys()}
        cells = [first_hit(t, pairs) for t in ({}, glo, tr, both)]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    for w in ("递归", "默认", "线程", "慢", "覆盖率", "回溯", "recurs", "default", "thread"):
        print(w, (zh_en.get(w) or en_zh.get(w) or [])[:TOP])
    if args.write:
        lines = [
            "# Word translations learned from the Python docs' parallel translation by",
            "# bench/translate.py (IBM Model 1 over ingest.text.terms; training pages only).",
            "# source word<TAB>translation:t(translation | source), best first",
        ]
        for table in (zh_en, en_zh):
            for w in sorted(table):
                lines.append(w + "\t" + " ".join(f"{t}:{p:.2f}" for t, p in table[w]))
        OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {OUT} ({len(zh_en)} + {len(en_zh)} words, {OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
