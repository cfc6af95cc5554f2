"""Mine a Chinese→English term table from the parallel paragraphs: `assistant/terms.tsv`.

    python bench/terms.py [--pairs ../shared/parallel/python-docs-3.11.train.jsonl] [--write]

Why: the hand-written glossary (`assistant/glossary.tsv`, 417 terms) misses compound technical
nouns and everyday phrases ("进程号" → pid/process id). Aligned paragraphs of the Python docs'
translation show which English word a Chinese word stands for: the pair that co-occurs far more
than chance across paragraphs.

Method: Chinese words are the lexical tokenizer's jieba words of two or more Han characters;
English words are its stemmed words (a surface form is kept for display). A word copied
verbatim into the Chinese side (code, names) is not a translation and is skipped. For each
Chinese word z and English stem e, over training pages only:
    dice(z, e) = 2·c(z, e) / (c(z) + c(e))
and z keeps its best e (and a second one within 80% of the best) when c(z, e) ≥ MIN_COUNT and
dice ≥ MIN_DICE, and the English word is not a stop word. Validation on held-out pages (one page
in five, the split of bench/align.py): of the held-out pairs whose Chinese side contains a
mined z, the share whose English side contains z's translation (precision), next to the same
for the hand glossary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "parallel" / "python-docs-3.11.train.jsonl"
MIN_COUNT = 4
MIN_DICE = 0.3


def words(pair: dict) -> tuple[set[str], dict[str, str]]:
    """(Chinese words, {English stem: surface word}) of one pair, code shared by both removed."""
    from ingest.text import HAN, tokenize

    zh_tokens = tokenize(pair["zh"])
    zh = {t for t in zh_tokens if len(t) >= 2 and all(HAN.match(ch) for ch in t)}
    copied = {t for t in zh_tokens if not HAN.search(t)}
    en: dict[str, str] = {}
    for raw in pair["en"].split():
        stems = tokenize(raw)
        if len(stems) == 1 and stems[0].isalpha() and stems[0] not in copied:
            en.setdefault(stems[0], raw.strip(".,;:!?()[]\"'`").lower())
    return zh, en


def mine(pairs: list[dict]) -> dict[str, list[tuple[str, float, int]]]:
    cz: Counter[str] = Counter()
    ce: Counter[str] = Counter()
    joint: Counter[tuple[str, str]] = Counter()
    surface: dict[str, Counter[str]] = {}
    for pair in pairs:
        zh, en = words(pair)
        cz.update(zh)
        ce.update(en.keys())
        for stem, word in en.items():
            surface.setdefault(stem, Counter())[word] += 1
        joint.update((z, e) for z in zh for e in en)
    best: dict[str, list[tuple[str, float, int]]] = {}
    for (z, e), c in joint.items():
        if c < MIN_COUNT:
            continue
        dice = 2 * c / (cz[z] + ce[e])
        if dice >= MIN_DICE:
            best.setdefault(z, []).append((surface[e].most_common(1)[0][0], dice, c))
    table = {}
    for z, cands in best.items():
        cands.sort(key=lambda t: -t[1])
        table[z] = [t for t in cands[:2] if t[1] >= 0.8 * cands[0][1]]
    return table


def precision(table: dict[str, list[str]], pairs: list[dict]) -> tuple[float, int]:
    """Share of (held-out pair, Chinese word with a translation) where the English side has it."""
    from ingest.text import tokenize

    hits = total = 0
    for pair in pairs:
        zh, _ = words(pair)
        en = set(tokenize(pair["en"]))
        for z in zh & table.keys():
            total += 1
            hits += any(set(tokenize(e)) <= en for e in table[z])
    return (hits / total if total else 0.0), total


def main() -> int:
    from assistant.crossing import crossing

    sys.path.insert(0, str(ROOT / "bench"))
    from align import held_out

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default=str(PAIRS))
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    rows = [json.loads(line) for line in Path(args.pairs).read_text(encoding="utf-8").splitlines()]
    train = [r for r in rows if not held_out(r["page"])]
    val = [r for r in rows if held_out(r["page"])]
    table = mine(train)
    mined = {z: [e for e, _, _ in v] for z, v in table.items()}
    glossary = {z: list(v) for z, v in crossing().hand.zh_to_en.items()}
    new = {z: v for z, v in mined.items() if z not in glossary}
    print(f"{len(train)} training pairs, {len(val)} held-out pairs")
    for name, t in (("hand glossary", glossary), ("mined", mined), ("mined, not in glossary", new)):
        prec, n = precision(t, val)
        print(f"| {name} | {len(t)} terms | held-out precision {prec:.3f} over {n} uses |")
    if args.write:
        out = ROOT / "assistant" / "terms.tsv"
        lines = [
            "# Chinese→English terms mined from the Python docs' parallel translation by",
            "# bench/terms.py (Dice co-occurrence over aligned paragraphs; training pages only).",
            "# zh<TAB>en terms, comma separated<TAB>best Dice<TAB>co-occurrences",
        ]
        for z in sorted(table):
            e, dice, c = table[z][0]
            lines.append(f"{z}\t{','.join(t[0] for t in table[z])}\t{dice:.2f}\t{c}")
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {out} ({len(table)} terms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
