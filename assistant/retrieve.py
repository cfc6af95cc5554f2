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

from dataclasses import dataclass, field

import numpy as np

from assistant.glossary import default_glossary
from assistant.records import Hit
from ingest.language import detect_lang

DEPTH = 50
LEXICAL_WEIGHT = 0.5
# Abstain below this best cosine between the question and any passage (tuned on dev.jsonl).
MIN_COSINE = 0.84
METHODS = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Retrieval:
    query: str
    hits: tuple[Hit, ...]
    answerable: bool
    confidence: float  # best cosine between the question (or its expansion) and a passage
    expansion: str = ""
    timings: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "answerable": self.answerable,
            "confidence": round(self.confidence, 4),
            "expansion": self.expansion,
            "hits": [h.to_json() for h in self.hits],
        }


def _z(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    """z-scores of a candidate list, and the z a chunk missing from the list gets."""
    values = np.fromiter(scores.values(), dtype=np.float64)
    mu, sd = values.mean(), values.std() + 1e-6
    return {j: (v - mu) / sd for j, v in scores.items()}, (values.min() - mu) / sd


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
                scores[j] = z_dense.get(j, dense_floor) + LEXICAL_WEIGHT * z_lex.get(j, lex_floor)
                found.setdefault(j, set()).update(
                    name for name, d in (("dense", z_dense), ("lexical", z_lex)) if j in d
                )

        ranked = sorted(scores, key=lambda j: (-scores[j], j))[:k]
        chunks = {c.chunk_id: c for c in self.library.get_chunks(ranked)}
        hits = tuple(
            Hit(chunks[j], float(scores[j]), rank, tuple(sorted(found[j])))
            for rank, j in enumerate((j for j in ranked if j in chunks), 1)
        )
        if self.method == "bm25":  # no cosine to judge by: answerable when anything matched
            return Retrieval(query, hits, bool(hits), 0.0, expansion)
        answerable = bool(hits) and best_cos >= self.min_cosine
        return Retrieval(query, hits, answerable, best_cos, expansion)
