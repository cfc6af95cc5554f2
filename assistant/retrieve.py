"""Retrieval that works across languages: calibrated dense scores plus per-language BM25.

Why: multilingual-e5 puts a language component in every vector, so a question scores higher
with any passage of its own language than with the passage of the other language that
answers it, and the bigger language part of a library wins by count (README, "Cross-language
retrieval": plain dense top-k finds 0.00 of the English→Chinese dev questions in its top 5). Steps:

1. The question, plus its other-language expansion (code identifiers and glossary terms,
   `assistant.glossary`), is embedded once.
2. Dense: each language index returns its top `DEPTH`; every candidate is re-scored by the
   cosine of question and passage with the language directions projected out of both
   (`assistant.calibrate`), which makes one merged list comparable across languages.
3. Lexical: BM25 with the question and its expansion over each language's own index (its
   own IDF; chunks are filed by main script, so Chinese notes quote code and English pages
   quote Chinese); scores become z-scores within each language's list.
4. A chunk scores z_dense + LEXICAL_WEIGHT · z_lexical, z_dense taken over the merged top
   `DEPTH` of calibrated cosines; chunks found only lexically get their calibrated cosine too.

Parameters: DEPTH 50, LEXICAL_WEIGHT 0.35, MIN_COSINE 0.84, chosen on the dev set; how little
the figures move around them (`python bench/retrieval.py`) is in the README and
docs/results.md, not repeated here.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from assistant.calibrate import LanguageAxes, language_axes
from assistant.glossary import default_glossary
from assistant.records import Hit, Library, Retrieval
from ingest.text import named_terms, text_lang, tokenize

DEPTH = 50
LEXICAL_WEIGHT = 0.35
# Abstain below this best cosine between the question and any passage (tuned on dev.jsonl).
MIN_COSINE = 0.84
METHODS = ("hybrid", "dense", "bm25")


def _z(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    """z-scores of a candidate list, and the z a chunk missing from the list gets."""
    if len(scores) == 1:  # a lone match stands out from everything that did not match
        return dict.fromkeys(scores, 1.0), 0.0
    values = np.fromiter(scores.values(), dtype=np.float64)
    mu, sd = values.mean(), values.std() + 1e-6
    return {j: (v - mu) / sd for j, v in scores.items()}, (values.min() - mu) / sd


class Retriever:
    """`search(query, k, lang)` over a Library; `method` picks hybrid (shipped), dense or bm25."""

    def __init__(
        self,
        library: Library,
        method: str = "hybrid",
        min_cosine: float = MIN_COSINE,
        *,
        depth: int = DEPTH,
        lexical_weight: float = LEXICAL_WEIGHT,
        calibrate: bool = True,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown retrieval method {method!r}; choose from {METHODS}")
        self.library = library
        self.method = method
        self.min_cosine = min_cosine
        self.depth = depth
        self.lexical_weight = lexical_weight
        # Plain dense is the baseline of `eval --compare`: the question alone, uncalibrated.
        self.calibrate = calibrate and method == "hybrid"

    @cached_property
    def _axes(self) -> LanguageAxes | None:
        """Looked up once per retriever, not per query (the lookup hashes the glossary)."""
        if not self.calibrate:
            return None
        # cached next to the model: the axes belong to it, not to any one library
        models_dir = self.library.config.models_dir
        return language_axes(self.library.embedder, default_glossary(), models_dir)

    def search(self, query: str, k: int = 10, lang: str | None = None) -> Retrieval:
        query = query.strip()
        present = [code for code in self.library.langs() if lang is None or code == lang]
        if not query or not present:
            return Retrieval(query, (), False, 0.0)
        q_lang = text_lang(query)
        expansion = default_glossary().expand(query, q_lang)
        # Every language's lexical index gets the question and its expansion: chunks are filed
        # by their main script, so Chinese notes quote code and English pages quote Chinese;
        # each index's own IDF keeps the languages' statistics apart.
        lex_text = f"{query} {expansion}".strip()
        if self.method == "bm25":
            scores: dict[int, float] = {}
            for code in present:
                scores.update(self.library.lexical(lex_text, self.depth, code))
            hits = self._hits(sorted(scores, key=lambda j: (-scores[j], j))[:k], scores, {})
            # no cosine to judge by: answerable when anything matched
            return Retrieval(query, hits, bool(hits), 0.0, expansion)

        foreign = any(code != q_lang for code in present)
        text = (
            f"{query} {expansion}" if self.method == "hybrid" and expansion and foreign else query
        )
        qvec = self.library.embedder.embed([text], kind="query")[0]
        if self.method == "hybrid":
            scores, lexical, best = self._hybrid(qvec, lex_text, present)
        else:
            scores, lexical = self._dense(qvec, present), {}
            best = max(scores.values(), default=0.0)
        ranked = sorted(scores, key=lambda j: (-scores[j], j))[:k]
        hits = self._hits(ranked, scores, lexical)
        # A question naming something the library never mentions (a package, a product,
        # a PEP number) is about something else, however close its wording is.
        unknown = [t for t in named_terms(query, q_lang) if not self._known(t)]
        answerable = bool(hits) and best >= self.min_cosine and not unknown
        return Retrieval(query, hits, answerable, best, expansion, unknown=tuple(unknown))

    def _dense(self, qvec: np.ndarray, langs: list[str]) -> dict[int, float]:
        return {j: v for code in langs for j, v in self.library.dense(qvec, self.depth, code)}

    def _hybrid(
        self, qvec: np.ndarray, lex_text: str, langs: list[str]
    ) -> tuple[dict[int, float], dict[int, float], float]:
        """(scores, lexical z-scores, best raw cosine) of the calibrated, fused candidates."""
        axes = self._axes
        # Projected query · stored passage equals projected · projected: FAISS searches as is.
        qsearch = axes.project(qvec) if axes else qvec
        cosine: dict[int, float] = {}
        lexical: dict[int, float] = {}
        floor: dict[int, float] = {}  # what a candidate the lexical list missed gets
        best = 0.0
        for code in langs:
            top = self.library.dense(qsearch, self.depth, code)
            bm25 = dict(self.library.lexical(lex_text, self.depth, code))
            bm25 = {j: v for j, v in bm25.items() if v > 0}
            z_lex, lex_floor = _z(bm25) if bm25 else ({}, 0.0)
            lexical.update(z_lex)
            ids = list(dict.fromkeys([j for j, _ in top] + list(bm25)))
            if not ids:
                continue
            vecs = self.library.vectors(ids, code)
            # Abstention reads the raw cosine, the scale MIN_COSINE was set on.
            best = max(best, float((vecs @ qvec).max()))
            cos = axes.cosines(qvec, vecs) if axes else vecs @ qvec
            cosine.update(zip(ids, cos.tolist(), strict=True))
            floor.update(dict.fromkeys(ids, lex_floor))
        if not cosine:
            return {}, {}, best
        # z of the calibrated cosine over the merged top: one scale for all languages.
        top_values = sorted(cosine.values(), reverse=True)[: self.depth]
        mu, sd = float(np.mean(top_values)), float(np.std(top_values)) + 1e-6
        scores = {
            j: (c - mu) / sd + self.lexical_weight * lexical.get(j, floor[j])
            for j, c in cosine.items()
        }
        return scores, lexical, best

    def _known(self, term: str) -> bool:
        """Whether the library mentions `term`; of a dotted name, its last part must appear
        (`sys.setrecursionlimit` is not covered by a library that only mentions `sys`)."""
        key = term.rstrip(".").rsplit(".", 1)[-1] or term
        if not tokenize(key):
            return True  # a stop word ("for", "why") names nothing
        forms = [key, key[:-1]] if key.endswith("s") and len(key) > 3 else [key]  # CPUs → CPU
        return any(self.library.lexical(form, 1) for form in forms)

    def _hits(
        self, ranked: list[int], scores: dict[int, float], lexical: dict[int, float]
    ) -> tuple[Hit, ...]:
        chunks = {c.chunk_id: c for c in self.library.get_chunks(ranked)}
        found = "lexical" if self.method == "bm25" else "dense"
        return tuple(
            Hit(chunks[j], float(scores[j]), rank, (found, "lexical") if j in lexical else (found,))
            for rank, j in enumerate((j for j in ranked if j in chunks), 1)
        )
