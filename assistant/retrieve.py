"""Retrieval that works across languages: calibrated dense scores plus per-language BM25.

Why: multilingual-e5 puts a language component in every vector, so a question scores higher
with any passage of its own language than with the passage of the other language that
answers it, and the bigger language part of a library wins by count (README, "Cross-language
retrieval": plain dense top-k finds 0.00 of the English→Chinese dev questions in its top 5). Steps:

1. The question, plus its other-language expansion (code identifiers, glossary terms, and for
   Chinese questions the terms mined from parallel text: `assistant.glossary`), and the
   question alone are embedded in one call.
2. Dense, own language: each index returns its top `DEPTH`, re-scored by the cosine of
   question and passage with the language directions projected out of both
   (`assistant.calibrate`). Other language: the question alone goes through the learned map
   (`assistant.align`, Procrustes on 6.8k translated paragraph pairs) to the vector the other
   language would have asked with; its cosine (+ `OTHER_BONUS`) scores that language's
   passages, which it also searches. One merged list of dense scores results.
3. Lexical: BM25 with the question and its expansion over each language's own index (its
   own IDF; chunks are filed by main script, so Chinese notes quote code and English pages
   quote Chinese); scores become z-scores within each language's list.
4. A chunk scores z_dense + LEXICAL_WEIGHT · z_lexical, z_dense taken over the merged top
   `DEPTH`; chunks found only lexically get their dense score too. `Evidence` keeps the parts.
5. Abstention: the best raw cosine must reach MIN_COSINE, and the question must not name
   something the library never mentions in a passage's text (code names, capitalised words,
   and lower-case words rare in English: "mypy", "dotenv", "cron").

Why one module of ~340 lines: the five steps share the candidate pool and its evidence, and
`eval --explain` reads them from one place.

Parameters were chosen on dev.jsonl + dev2.jsonl together (`python bench/retrieval.py` prints
every parameter's sensitivity on both; docs/results.md): LEXICAL_WEIGHT 0.7 and OTHER_BONUS
0.02 (chosen by every fold of a 5-fold cross-validation by question, so CV = in-sample: all
R@5 0.923 / MRR@10 0.783 over the candidate pool of `bench/fusion.py`), DEPTH 50, MIN_COSINE
0.84, RARE_ZIPF 2.6.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from assistant.align import Alignment, load_alignment
from assistant.calibrate import LanguageAxes, language_axes
from assistant.glossary import default_glossary, extended_glossary
from assistant.records import Hit, Library, Retrieval
from index.model.adapter import stored_setting
from ingest.chunking import HEADING_SEPARATOR
from ingest.text import (
    content_words,
    is_code_name,
    named_terms,
    stem,
    text_lang,
    tokenize,
    zipf,
)

DEPTH = 50
LEXICAL_WEIGHT = 0.7
# Added to the mapped question's cosine with the other language's passages: a mapped vector is
# an estimate, so its cosines run a little lower than a native question's.
OTHER_BONUS = 0.02
# Abstain below this best cosine between the question and any passage: the base model's floor
# (tuned on dev.jsonl); an adapter stores its own (`index.model.adapter.stored_setting`).
MIN_COSINE = 0.84
# A lower-case English word rarer than this (wordfreq's Zipf scale: 3 = once per million words)
# that the library never mentions names a tool or package ("mypy", "dotenv", "cron").
RARE_ZIPF = 2.6
METHODS = ("hybrid", "dense", "bm25")
# `askdocs eval --compare` rows: each part alone, each kept option, and the shipped default.
VARIANTS: dict[str, dict] = {
    "bm25": {"method": "bm25"},
    "dense": {"method": "dense"},
    "hybrid, calibration only (before issue 13)": {
        "align": False,
        "other_bonus": 0.0,
        "lexical_weight": 0.35,
        "rare_names": False,
        "mined_terms": False,
    },
    "hybrid, no learned map": {"align": False, "other_bonus": 0.0},
    "hybrid, hand glossary only": {"mined_terms": False},
    "hybrid": {},
}


@dataclass(frozen=True)
class Evidence:
    """Why a candidate scored as it did (`askdocs eval --explain`, `search --json`)."""

    dense: float  # the cosine used: calibrated, or of the mapped question (+ OTHER_BONUS)
    via: str  # "calibrated", "mapped question" or "cosine"
    dense_z: float  # z of `dense` over the merged top DEPTH of all languages
    lexical_z: float  # z of BM25 within the passage's language (floor when BM25 missed it)
    lexical_weight: float

    @property
    def score(self) -> float:
        return self.dense_z + self.lexical_weight * self.lexical_z

    def to_json(self) -> dict:
        return {
            "dense": round(self.dense, 4),
            "via": self.via,
            "dense_z": round(self.dense_z, 3),
            "lexical_z": round(self.lexical_z, 3),
            "lexical_weight": self.lexical_weight,
            "score": round(self.score, 3),
        }


@cache
def _rare(word: str) -> bool:
    """Whether a lower-case word is too rare in English to be anything but a name. An
    inflection of a word English has ("mistypes", "overwriting") is a word, however rare."""
    if zipf(word) >= RARE_ZIPF:
        return False
    for suffix in ("ing", "ed", "es", "s"):
        base = word.removesuffix(suffix)
        if base != word and any(zipf(b) >= 1.0 for b in (base, base + "e")):
            return False
    return True


def _z(scores: dict[int, float]) -> tuple[dict[int, float], float]:
    """z-scores of a candidate list, and the z a chunk missing from the list gets."""
    if len(scores) == 1:  # a lone match stands out from everything that did not match
        return dict.fromkeys(scores, 1.0), 0.0
    values = np.fromiter(scores.values(), dtype=np.float64)
    mu, sd = values.mean(), values.std() + 1e-6
    return {j: (v - mu) / sd for j, v in scores.items()}, (values.min() - mu) / sd


def _body(text: str, heading: str) -> str:
    """A chunk's text without the lines that only repeat its heading path."""
    parts = {p.strip().lower() for p in heading.split(HEADING_SEPARATOR.strip())}
    return "\n".join(
        line for line in text.splitlines() if line.strip().lstrip("#").strip().lower() not in parts
    )


def _mentions(text: str) -> set[str]:
    """Lower-cased words a passage mentions: each word and its stem, code names whole and
    their dotted parts (not their underscored parts)."""
    out: set[str] = set()
    for word in content_words(text):
        low = word.lower()
        parts = low.split(".") if is_code_name(word) else [low]
        out.update(parts + [low] + [stem(p) for p in parts])
    return out


class Retriever:
    """`search(query, k, lang)` over a Library; `method` picks hybrid (shipped), dense or bm25."""

    def __init__(
        self,
        library: Library,
        method: str = "hybrid",
        min_cosine: float | None = None,
        *,
        depth: int = DEPTH,
        lexical_weight: float = LEXICAL_WEIGHT,
        calibrate: bool = True,
        align: bool = True,
        other_bonus: float = OTHER_BONUS,
        rare_names: bool = True,
        mined_terms: bool = True,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown retrieval method {method!r}; choose from {METHODS}")
        self.library = library
        self.method = method
        # The floor belongs to the model's geometry: stored with its adapter (bench/floor.py).
        stored = stored_setting(library.config, "min_cosine")
        self.min_cosine = min_cosine if min_cosine is not None else stored or MIN_COSINE
        self.depth = depth
        self.lexical_weight = lexical_weight
        # Plain dense is the baseline of `eval --compare`: the question alone, uncalibrated.
        self.calibrate = calibrate and method == "hybrid"
        self.align = align and method == "hybrid"
        self.other_bonus = other_bonus
        self.rare_names = rare_names
        self.glossary = extended_glossary() if mined_terms else default_glossary()

    @cached_property
    def _alignment(self) -> Alignment | None:
        """The shipped query map of this library's model (None for any other model)."""
        return load_alignment(self.library.embedder.name) if self.align else None

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
        expansion = self.glossary.expand(query, q_lang)
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
        # One call embeds both: the question with its expansion, and (for the learned map,
        # fitted on plain questions) the question alone.
        qvecs = self.library.embedder.embed([text] if text == query else [text, query], "query")
        evidence: dict[int, Evidence] = {}
        if self.method == "hybrid":
            scores, lexical, best, evidence = self._hybrid(qvecs, q_lang, lex_text, present)
        else:
            scores, lexical = self._dense(qvecs[0], present), {}
            best = max(scores.values(), default=0.0)
        ranked = sorted(scores, key=lambda j: (-scores[j], j))[:k]
        hits = self._hits(ranked, scores, lexical)
        # A question naming something the library never mentions (a package, a product,
        # a PEP number, a tool written in lower case) is about something else, however close
        # its wording is.
        unknown = [t for t in self._names(query, q_lang) if not self._known(t)]
        answerable = bool(hits) and best >= self.min_cosine and not unknown
        return Retrieval(
            query,
            hits,
            answerable,
            best,
            expansion,
            unknown=tuple(unknown),
            evidence=tuple(evidence[h.chunk.chunk_id].to_json() for h in hits if evidence),
        )

    def _dense(self, qvec: np.ndarray, langs: list[str]) -> dict[int, float]:
        return {j: v for code in langs for j, v in self.library.dense(qvec, self.depth, code)}

    def _hybrid(
        self, qvecs: np.ndarray, q_lang: str, lex_text: str, langs: list[str]
    ) -> tuple[dict[int, float], dict[int, float], float, dict[int, Evidence]]:
        """(scores, lexical z-scores, best raw cosine, evidence) of the fused candidates.

        `qvecs` holds the question with its expansion (first row) and the question alone
        (last row; the same row when nothing was expanded).
        """
        qvec, plain = qvecs[0], qvecs[-1]
        axes = self._axes
        # Projected query · stored passage equals projected · projected: FAISS searches as is.
        qsearch = axes.project(qvec) if axes else qvec
        align = self._alignment
        dense: dict[int, float] = {}
        via: dict[int, str] = {}
        lexical: dict[int, float] = {}
        floor: dict[int, float] = {}  # what a candidate the lexical list missed gets
        best = 0.0
        for code in langs:
            # The question as the other language would have asked it, for that language's
            # passages only: the learned map carries what calibration leaves of the gap.
            mapped = align.map(plain, q_lang, code) if align and code != q_lang else None
            top = self.library.dense(qsearch, self.depth, code)
            if mapped is not None:
                top += self.library.dense(mapped, self.depth, code)
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
            if mapped is not None:
                cos, how = vecs @ mapped + self.other_bonus, "mapped question"
            elif axes:
                cos, how = axes.cosines(qvec, vecs), "calibrated"
            else:
                cos, how = vecs @ qvec, "cosine"
            dense.update(zip(ids, cos.tolist(), strict=True))
            via.update(dict.fromkeys(ids, how))
            floor.update(dict.fromkeys(ids, lex_floor))
        if not dense:
            return {}, {}, best, {}
        # z of the dense score over the merged top: one scale for all languages.
        top_values = sorted(dense.values(), reverse=True)[: self.depth]
        mu, sd = float(np.mean(top_values)), float(np.std(top_values)) + 1e-6
        evidence = {
            j: Evidence(
                dense=d,
                via=via[j],
                dense_z=(d - mu) / sd,
                lexical_z=float(lexical.get(j, floor[j])),
                lexical_weight=self.lexical_weight,
            )
            for j, d in dense.items()
        }
        scores = {j: e.score for j, e in evidence.items()}
        return scores, lexical, best, evidence

    def _names(self, query: str, q_lang: str) -> list[str]:
        """Named terms, plus (English questions) lower-case words too rare in English to be
        anything but a name: tools and packages are written "mypy", "python-dotenv"."""
        names = named_terms(query, q_lang)
        if self.rare_names and q_lang == "en":
            words = [w for w in content_words(query) if w.isascii() and w.isalpha() and w.islower()]
            # Known words are no unknown names whatever their rarity: asking the library first
            # keeps wordfreq's word lists (~0.3 s to load) off most questions.
            names += [w for w in words if len(w) >= 3 and not self._known(w) and _rare(w)]
        return list(dict.fromkeys(names))

    def _known(self, term: str) -> bool:
        """Whether the library mentions `term` in the text of a passage.

        Of a dotted name, its last part must appear (`sys.setrecursionlimit` is not covered by
        a library that only mentions `sys`). A heading alone does not count (a page that only
        names a module in a bare heading says nothing about it), and neither does a part of an
        underscored name (`LOG_CRON` is not about cron).
        """
        key = term.rstrip(".").rsplit(".", 1)[-1] or term
        if not tokenize(key):
            return True  # a stop word ("for", "why") names nothing
        forms = [key, key[:-1]] if key.endswith("s") and len(key) > 3 else [key]  # CPUs → CPU
        wanted = {f for form in forms for f in (form, stem(form))}
        if term != key:
            forms, wanted = [term, *forms], wanted | {term}  # `setup.py` itself counts
        for form in forms:
            ids = [j for j, _ in self.library.lexical(form, 20)]
            for chunk in self.library.get_chunks(ids):
                if wanted & _mentions(_body(chunk.text, chunk.heading)):
                    return True
        return False

    def _hits(
        self, ranked: list[int], scores: dict[int, float], lexical: dict[int, float]
    ) -> tuple[Hit, ...]:
        chunks = {c.chunk_id: c for c in self.library.get_chunks(ranked)}
        found = "lexical" if self.method == "bm25" else "dense"
        return tuple(
            Hit(chunks[j], float(scores[j]), rank, (found, "lexical") if j in lexical else (found,))
            for rank, j in enumerate((j for j in ranked if j in chunks), 1)
        )
