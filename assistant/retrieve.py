"""Retrieval that works across languages: per-language calibration of dense and lexical scores.

Why: cosine scores of multilingual-e5 are systematically higher between texts of one language,
so a plain top-k over a bilingual library buries the other language, and a larger language
part wins by sheer count. Within one language, though, the model ranks well. So for each
language of the library:

1. dense candidates: the top `depth` chunks for the question — or, for the other language,
   for the question plus its glossary/identifier expansion (`assistant.glossary`);
2. lexical candidates: BM25 over that language's own index (its own IDF), with the question
   or its expansion;
3. each score becomes a z-score against that language's top-`depth` list for this query, and
   a chunk's score is z_dense + LEXICAL_WEIGHT · z_lexical.

The z-scores say how far a passage stands out within its language, which is comparable
across languages; the merged list is ranked by it. Parameters (dev-set sensitivity in README):
DEPTH 50 (30–100 within ±0.02 R@5), LEXICAL_WEIGHT 0.5 (0.3–0.8 within ±0.01 R@5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.glossary import default_glossary
from assistant.records import Hit
from ingest.language import detect_lang

DEPTH = 50
LEXICAL_WEIGHT = 0.5
# Abstain below this best cosine between the question and any passage (tuned on dev.jsonl).
MIN_COSINE = 0.84
# Each language keeps at least this many of the first SHARE_WINDOW places (when it has
# candidates): calibration narrows the gap between languages but cannot close it on every
# question, and a reader scanning five sources should see the best of both languages.
MIN_SHARE = 2
SHARE_WINDOW = 5
METHODS = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Retrieval:
    query: str
    hits: tuple[Hit, ...]
    answerable: bool
    confidence: float  # best cosine between the question (or its expansion) and a passage
    expansion: str = ""
    unknown: tuple[str, ...] = ()  # named terms of the question the library never mentions

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "answerable": self.answerable,
            "confidence": round(self.confidence, 4),
            "expansion": self.expansion,
            "unknown_terms": list(self.unknown),
            "hits": [h.to_json() for h in self.hits],
        }


def _z(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    """z-scores of a candidate list, and the z a chunk missing from the list gets."""
    values = np.fromiter(scores.values(), dtype=np.float64)
    mu, sd = values.mean(), values.std() + 1e-6
    return {j: (v - mu) / sd for j, v in scores.items()}, (values.min() - mu) / sd


_WORD = re.compile(r"[A-Za-z_][\w.]*[\w]|\d{3,}")


def named_terms(query: str, query_lang: str) -> list[str]:
    """Words of the question that name something: code, products, numbers.

    A Latin word inside a Chinese question, a capitalised word after the first, an all-caps,
    camelCase or dotted/underscored word, a number of three digits or more.
    """
    names = []
    for i, m in enumerate(_WORD.finditer(query)):
        w = m.group()
        if (
            (query_lang == "zh" and len(w) >= 3)
            or (i > 0 and w[0].isupper())
            or (len(w) >= 2 and w.isupper())
            or re.search(r"[a-z][A-Z]|[._]", w)
            or w.isdigit()
        ):
            names.append(w.lower())
    return list(dict.fromkeys(names))


def _guarantee_share(ranked: list[int], lang_of: dict[int, str]) -> list[int]:
    """Move each language's best candidates up so it holds MIN_SHARE of the first places."""
    window = ranked[:SHARE_WINDOW]
    for code in sorted(set(lang_of.values())):
        missing = MIN_SHARE - sum(lang_of[j] == code for j in window)
        extra = [j for j in ranked[SHARE_WINDOW:] if lang_of[j] == code][: max(missing, 0)]
        for j in extra:
            counts = {c: sum(lang_of[i] == c for i in window) for c in set(lang_of.values())}
            # drop the lowest-ranked place of a language that has more than its share
            for pos in range(len(window) - 1, -1, -1):
                if lang_of[window[pos]] != code and counts[lang_of[window[pos]]] > MIN_SHARE:
                    window.pop(pos)
                    window.append(j)
                    break
    order = {j: i for i, j in enumerate(ranked)}
    window.sort(key=order.__getitem__)
    chosen = set(window)
    return window + [j for j in ranked if j not in chosen]


class Retriever:
    """`search(query, k, lang)` over a Library; `method` picks hybrid (shipped), dense or bm25."""

    def __init__(self, library, method: str = "hybrid", min_cosine: float = MIN_COSINE) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown retrieval method {method!r}; choose from {METHODS}")
        self.library = library
        self.method = method
        self.min_cosine = min_cosine

    def search(self, query: str, k: int = 10, lang: str | None = None) -> Retrieval:
        query = query.strip()
        present = [code for code in self.library.langs() if lang is None or code == lang]
        if not query or not present:
            return Retrieval(query, (), False, 0.0)
        q_lang = detect_lang(query, default="en")
        expansion = default_glossary().expand(query, q_lang)
        foreign = [code for code in present if code != q_lang]
        texts = [query] + ([f"{query} {expansion}"] if expansion and foreign else [])
        vecs = None
        if self.method != "bm25":
            vecs = self.library.embedder.embed(texts, kind="query")

        scores: dict[int, float] = {}
        found: dict[int, set[str]] = {}
        lang_of: dict[int, str] = {}
        best_cos = 0.0
        for code in present:
            same = code == q_lang
            if self.method == "bm25":
                lexical = dict(
                    self.library.lexical(query if same else expansion or query, DEPTH, code)
                )
                for j, v in lexical.items():
                    scores[j] = v
                    found.setdefault(j, set()).add("lexical")
                continue
            qvec = vecs[0] if same or len(vecs) == 1 else vecs[1]
            dense = dict(self.library.dense(qvec, DEPTH, code))
            if not dense:
                continue
            best_cos = max(best_cos, max(dense.values()))
            if self.method == "dense":
                for j, v in dense.items():
                    scores[j] = v
                    found.setdefault(j, set()).add("dense")
                continue
            z_dense, _ = _z(dense)
            lex_query = query if same else expansion
            lexical = dict(self.library.lexical(lex_query, DEPTH, code)) if lex_query else {}
            lexical = {j: v for j, v in lexical.items() if v > 0}
            z_lex, lex_floor = _z(lexical) if lexical else ({}, 0.0)
            dense_floor = min(z_dense.values())
            for j in z_dense.keys() | z_lex.keys():
                lang_of[j] = code
                scores[j] = z_dense.get(j, dense_floor) + LEXICAL_WEIGHT * z_lex.get(j, lex_floor)
                found.setdefault(j, set()).update(
                    name for name, d in (("dense", z_dense), ("lexical", z_lex)) if j in d
                )

        ranked = sorted(scores, key=lambda j: (-scores[j], j))
        if self.method == "hybrid":
            ranked = _guarantee_share(ranked, {j: lang_of[j] for j in ranked})
        ranked = ranked[:k]
        chunks = {c.chunk_id: c for c in self.library.get_chunks(ranked)}
        hits = tuple(
            Hit(chunks[j], float(scores[j]), rank, tuple(sorted(found[j])))
            for rank, j in enumerate((j for j in ranked if j in chunks), 1)
        )
        if self.method == "bm25":  # no cosine to judge by: answerable when anything matched
            return Retrieval(query, hits, bool(hits), 0.0, expansion)
        # A question naming something the library never mentions (a package, a product,
        # a PEP number) is about something else, however close its wording is.
        unknown = [t for t in named_terms(query, q_lang) if not self.library.lexical(t, 1)]
        answerable = bool(hits) and best_cos >= self.min_cosine and not unknown
        return Retrieval(query, hits, answerable, best_cos, expansion, unknown=tuple(unknown))
