"""Training pairs for the embedding model: (query, passage) texts made from parallel pages.

Why these kinds: the base model already matches a text with its translation moderately well;
what the answer path needs is a *question* finding the passage that answers it, in either
language. The parallel pages give four kinds of query for a passage, each in both languages, so
every kind also crosses languages:

- "question": a FAQ-style heading ("How do I …?") → the first paragraph of its section;
- "heading": a section heading → a paragraph of its section (the heading left out of the
  passage's path, so the pair is not a copy);
- "cloze": one sentence of a paragraph → the paragraph (inverse cloze; in the same language the
  sentence is cut out of the passage, so the model learns the topic, not the words);
- "translate": a paragraph → its translation;
- "answer": a question or heading → the first sentence of its section, alone (what the answer
  path compares a question with is one sentence, not a passage).

Passages are written as askdocs embeds a chunk (`index.embedded.writer.passage_text`): "Title > Heading"
then the text. Pages are split into train and held-out by a hash of their name, so validation
never sees a trained page. `library_pairs` makes the same kinds from a library's own chunks
(`askdocs tune`).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

KINDS = ("question", "heading", "answer", "cloze", "translate")
LANGS = ("en", "zh")
_SENT_EN = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(\"'])")
_SENT_ZH = re.compile(r"(?<=[。！？；])")
_END = (".", "。", ":", "：", ";", "；", ",", "，")


@dataclass(frozen=True)
class Pair:
    """One training example: `query` should find `passage` (texts without e5's prefixes)."""

    query: str
    passage: str
    kind: str  # one of KINDS
    langs: str  # "en-zh": the query's language, then the passage's
    group: str  # the page: pairs of one group make hard in-batch negatives for each other
    unit: str = ""  # the paragraph the passage is made from (validation counts a hit by it)


@dataclass(frozen=True)
class Entry:
    """An aligned unit of a parallel page: a heading or a paragraph in both languages."""

    en: str
    zh: str
    heading: bool


def read_parallel(path: Path) -> dict[str, list[Entry]]:
    """The pages of a parallel JSONL file (`page`, `en`, `zh`, optional `kind`), in order."""
    pages: dict[str, list[Entry]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            en, zh = row["en"].strip(), row["zh"].strip()
            if not en or not zh:
                continue
            kind = row.get("kind")
            heading = kind == "heading" if kind else _looks_like_heading(en, zh)
            pages.setdefault(f"{path.stem}:{row['page']}", []).append(Entry(en, zh, heading))
    return pages


def _looks_like_heading(en: str, zh: str) -> bool:
    """Python's .po files carry no kinds: a short line without sentence punctuation."""
    if en.endswith("?"):
        return len(en) < 120
    return len(en) <= 70 and not en.endswith(_END) and not zh.endswith(_END) and "\n" not in en


def held_out(page: str, every: int = 10) -> bool:
    """Whether a page is kept for validation (stable across runs and machines)."""
    return int(hashlib.sha256(page.encode()).hexdigest(), 16) % every == 0


def sentences(text: str, lang: str) -> list[str]:
    pattern = _SENT_ZH if lang == "zh" else _SENT_EN
    return [s.strip() for s in pattern.split(text) if len(s.strip()) >= 12]


def _passage(path: Sequence[str], text: str) -> str:
    path = [p for p in path if p]
    return f"{' > '.join(path)}\n{text}" if path else text


def page_pairs(page: str, entries: Sequence[Entry], rng: random.Random) -> list[Pair]:
    """Every pair one page gives (see the module docstring)."""
    pairs: list[Pair] = []
    title = {lang: "" for lang in LANGS}
    heading = {lang: "" for lang in LANGS}
    first_of_section = False
    for i, e in enumerate(entries):
        text = {"en": e.en, "zh": e.zh}
        if e.heading:
            if i == 0:
                title = dict(text)
            else:
                heading = dict(text)
            first_of_section = True
            continue
        if len(e.en) < 40:
            continue
        head = entries[i - 1] if first_of_section and i > 0 else None
        first_of_section = False
        for q in LANGS:
            for p in LANGS:
                langs = f"{q}-{p}"
                unit = f"{page}#{i}:{p}"
                full = _passage([title[p], heading[p]], text[p])
                if head is not None and head.heading and i > 1:
                    asks = head.en.endswith("?") or head.zh.endswith(("？", "?"))
                    hq = head.en if q == "en" else head.zh
                    passage = _passage([title[p]], text[p])
                    kind = "question" if asks else "heading"
                    pairs.append(Pair(hq, passage, kind, langs, page, unit))
                    first = sentences(text[p], p)
                    if first:
                        pairs.append(Pair(hq, first[0], "answer", langs, page, unit))
                sents = sentences(text[q], q)
                if len(sents) >= 2 or (q != p and sents):
                    s = rng.choice(sents)
                    if q == p:
                        rest = text[p].replace(s, " ").strip()
                        passage = _passage([title[p], heading[p]], rest)
                    else:
                        passage = full
                    pairs.append(Pair(s, passage, "cloze", langs, page, unit))
                if q != p:
                    pairs.append(Pair(text[q], full, "translate", langs, page, unit))
    return pairs


def parallel_pairs(paths: Iterable[Path], seed: int = 0, split: str = "train") -> list[Pair]:
    """The pairs of the train (or "holdout") pages of parallel files, in a seeded order."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for path in paths:
        for page, entries in read_parallel(Path(path)).items():
            if held_out(page) == (split == "holdout"):
                pairs.extend(page_pairs(page, entries, rng))
    return pairs


def library_pairs(chunks: Iterable[tuple[str, str, str, str]], seed: int = 0) -> list[Pair]:
    """Self-supervised pairs from a library's chunks: (doc_id, lang, heading path, text) each.

    A chunk's own heading → the chunk without it, and a sentence → the rest of the chunk; a
    library has no translations, so every pair stays in its language."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for doc, lang, heading, text in chunks:
        lang = "zh" if lang == "zh" else "en"
        langs = f"{lang}-{lang}"
        parts = [p for p in heading.split(" > ") if p]
        if parts and len(text) >= 80:
            pairs.append(Pair(parts[-1], _passage(parts[:-1], text), "heading", langs, doc))
        sents = sentences(text, lang)
        if len(sents) >= 3:
            s = rng.choice(sents)
            rest = text.replace(s, " ").strip()
            pairs.append(Pair(s, _passage(parts, rest), "cloze", langs, doc))
    return pairs


def batches(
    pairs: Sequence[Pair], size: int, seed: int, per_group: int = 4
) -> Iterable[list[Pair]]:
    """Endless batches of `size` pairs: `per_group` pairs of one page at a time (hard
    negatives: same topic, other answer), no query or passage twice in a batch."""
    rng = random.Random(seed)
    by_group: dict[str, list[Pair]] = {}
    for p in pairs:
        by_group.setdefault(p.group, []).append(p)
    groups = sorted(by_group)
    while True:
        for g in groups:
            rng.shuffle(by_group[g])
        order = [p for g in groups for p in by_group[g]]
        # Runs of per_group from one page, the runs shuffled: a batch mixes several pages.
        runs = [order[i : i + per_group] for i in range(0, len(order), per_group)]
        rng.shuffle(runs)
        batch: list[Pair] = []
        seen: set[str] = set()
        for run in runs:
            for p in run:
                if p.query in seen or p.passage in seen:
                    continue
                seen.update((p.query, p.passage))
                batch.append(p)
                if len(batch) == size:
                    yield batch
                    batch, seen = [], set()
