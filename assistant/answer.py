"""Extractive answers: the few source sentences that answer the question, with exact citations.

Candidates are the sentences of the top passages, read from the stored document text around
each chunk so that a sentence cut by a chunk boundary is whole again. They are scored by shared
terms (identifiers, English words, jieba words, and the question's glossary terms in the other
language), each weighted by how rare it is among the candidates, and by the rank of their
passage. The library's embedder (question as query, sentence as passage) joins in only when
shared words say little: sentence embeddings favour sentences that restate the question's topic
over the one that answers it (dev set, gold quote in the answer: 0.70 without them, 0.60 with
every candidate embedded, at ~2.8 sentences an answer). The best few are shown in
reading order, each citing its own exact span `[n]` (`Citation.text == document.text[start:end]`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np

from assistant.glossary import default_glossary
from assistant.records import Answer, Citation, Hit, Library, Retrieval, Sentence
from assistant.sentences import display, split
from assistant.support import weight
from ingest.text import HAN, identifiers, is_code_name, terms, text_lang

if TYPE_CHECKING:
    from index.embedder import Embedder

TextLookup = Callable[[str], str]  # doc_id -> stored document text

TOP_HITS = 5  # passages whose sentences compete
MARGIN = 300  # characters read around a chunk to complete its edge sentences
CHEAP = (0.75, 0.25)  # lexical, passage rank
DENSE_BELOW = 0.2  # embed sentences only when no candidate shares more of the question's terms
# Embedding costs: a batch pads to its longest text, and ~30 sentences take ~0.5 s on two
# cores. So only the best few by the cheap score are embedded, truncated.
EMBEDDED = 8
EMBED_CHARS = 200
WEIGHTS = (0.55, 0.30, 0.15)  # with embeddings: dense, lexical, passage rank
NUMBER_BONUS = 0.1  # "how many / 多少" questions: sentences holding a number
KEEP_WITHIN = 0.2  # further sentences must score within this of the best one (dev: ~2.8 kept)
CONTEXT = 160  # characters of the preceding sentence or heading whose terms count half
LEADS = 3  # nearest sections listed when the library does not cover a question

NOTICES = {
    ("zh", "all"): "以下内容来自英文文档。",
    ("zh", "some"): "以下部分内容来自英文文档。",
    ("en", "all"): "The following comes from the Chinese documents.",
    ("en", "some"): "Some of the following comes from the Chinese documents.",
}
REFUSAL = {
    "zh": "文档库中没有找到这个问题的答案。最接近的章节：",
    "en": "The library does not cover this question. The nearest sections:",
}
EMPTY = {
    "zh": "文档库中没有找到这个问题的答案。",
    "en": "The library does not cover this question.",
}


@dataclass(frozen=True)
class Candidate:
    hit: Hit
    start: int
    end: int
    raw: str  # document.text[start:end]
    shown: str  # display form
    lang: str
    context: str = ""  # the heading or sentence just before: who "it" is in "It returns -1.0"


def candidates(
    hits: Sequence[Hit], text_of: TextLookup | None, code: bool = False
) -> list[Candidate]:
    """Whole sentences overlapping the given hits, deduplicated by span, in hit order."""
    seen: set[tuple[str, int, int]] = set()
    out: list[Candidate] = []
    for hit in hits:
        c = hit.chunk
        text = text_of(c.doc_id) if text_of else None
        if text is not None and text[c.start : c.end] == c.text:
            base, lo, hi = 0, max(0, c.start - MARGIN), min(len(text), c.end + MARGIN)
        else:  # no document text: the chunk alone (edge sentences may be cut)
            text, base, lo, hi = c.text, c.start, 0, len(c.text)
        before = c.heading.rsplit(" > ", 1)[-1]
        for s in split(text, lo, hi):
            a, b = base + s.start, base + s.end
            context, before = before, display(text[s.start : s.end]) if s.kind != "code" else before
            cut = (s.start == lo and lo > 0) or (s.end == hi and hi < len(text))
            if cut or b <= c.start or a >= c.end or (s.kind == "code") != code:
                continue
            if s.kind == "heading" or (c.doc_id, a, b) in seen:
                continue
            raw = text[s.start : s.end]
            shown = raw.strip() if code else display(raw)
            if not code and not _informative(shown):
                continue
            seen.add((c.doc_id, a, b))
            out.append(Candidate(hit, a, b, raw, shown, text_lang(shown), context[-CONTEXT:]))
    return out


def _informative(shown: str) -> bool:
    """Skip bare list labels ("整数", "CPython"): a sentence needs a few words."""
    han = len(HAN.findall(shown))
    return han >= 6 or len(shown.split()) >= 4


def score(query: str, cands: list[Candidate], embedder: Embedder | None = None) -> np.ndarray:
    """Combined relevance of each candidate to the (resolved) query."""
    lex = lexical(query, cands)
    prior = np.array([1.0 - (c.hit.rank - 1) / (2 * TOP_HITS) for c in cands], dtype=np.float32)
    bonus = np.zeros(len(cands), dtype=np.float32)
    if _NUMERIC_Q.search(query):
        bonus = NUMBER_BONUS * np.array([bool(_DIGIT.search(c.shown)) for c in cands], np.float32)
    cheap = CHEAP[0] * lex + CHEAP[1] * prior + bonus
    if embedder is None or not cands or EMBEDDED <= 0 or float(lex.max()) >= DENSE_BELOW:
        return cheap
    top = np.argsort(-cheap, kind="stable")[:EMBEDDED]
    qv = embedder.embed([query], kind="query")[0]
    texts = [_embed_text(cands[i]) for i in top]
    cos = embedder.embed(texts, kind="passage") @ qv
    spread = float(cos.max() - cos.min())
    dense = np.zeros(len(cands), dtype=np.float32)  # not embedded: out of the running
    dense[top] = (cos - cos.min()) / spread if spread > 1e-6 else 1.0
    wd, wl, wr = WEIGHTS
    return wd * dense + wl * lex + wr * prior + bonus


_NUMERIC_Q = re.compile(
    r"多少|几[个种次位岁倍层级]|多[大长久高深]|哪个版本|哪一版|百分之|上限|限制"
    r"|\bhow (?:many|much|long|large|big|deep|often)\b|\bwhat (?:version|percentage|size|limit)"
    r"|\bwhich version\b|\blimits?\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


def _embed_text(c: Candidate) -> str:
    text = c.shown
    return text if len(text) <= EMBED_CHARS else text[:EMBED_CHARS]


def lexical(query: str, cands: list[Candidate]) -> np.ndarray:
    """Shared terms, each weighted by its rarity among the candidates.

    Every candidate sentence names the topic ("PyFloat_AsDouble"); the terms that tell the
    answer apart ("failure", "80%", "default") are the rare ones. The question's terms in the
    other language (the retriever's glossary) let a Chinese question meet English sentences.
    """
    found = [terms(c.shown) | terms(c.context) if c.context else terms(c.shown) for c in cands]
    own = [terms(c.shown) for c in cands]
    wanted = terms(query) | terms(default_glossary().expand(query, text_lang(query)))
    q = [t for t in wanted if any(t in f for f in found)]
    if not q:
        return np.zeros(len(cands), dtype=np.float32)
    idf = {t: weight(t) * np.log(1 + len(cands) / sum(t in f for f in found)) for t in q}
    total = sum(idf.values())
    return np.array(
        [
            sum(idf[t] * (1.0 if t in o else 0.5) for t in q if t in f) / total
            for f, o in zip(found, own, strict=True)
        ],
        dtype=np.float32,
    )


def select(cands: list[Candidate], scores: np.ndarray, limit: int) -> list[Candidate]:
    """The best sentence and those close to it, without repeats, in reading order."""
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= limit or float(scores[i]) < best - KEEP_WITHIN:
            break
        if any(_same(cands[i].shown, cands[j].shown) for j in chosen):
            continue
        chosen.append(int(i))
    # Reading order: documents by their best sentence, sentences by position.
    doc_rank = {}
    for i in chosen:
        doc_rank.setdefault(cands[i].hit.chunk.doc_id, len(doc_rank))
    chosen.sort(key=lambda i: (doc_rank[cands[i].hit.chunk.doc_id], cands[i].start))
    return [cands[i] for i in chosen]


def _same(a: str, b: str) -> bool:
    ta, tb = terms(a), terms(b)
    return a == b or (bool(ta) and len(ta & tb) / len(ta | tb) > 0.8)


def compose_extractive(
    question: str,
    retrieval: Retrieval,
    text_of: TextLookup | None = None,
    embedder: Embedder | None = None,
    query: str | None = None,
    max_sentences: int = 5,
) -> Answer:
    """The extractive answer to `question`; `query` is what was searched (default: question)."""
    query = query or retrieval.query or question
    lang = text_lang(question)
    hits = tuple(retrieval.hits)
    if not retrieval.answerable or not hits:
        return refusal(question, query, hits, text_of)
    top = hits[:TOP_HITS]
    cands = candidates(top, text_of) or candidates(top, text_of, code=True)
    if not cands:
        return refusal(question, query, hits, text_of)
    chosen = select(cands, score(query, cands, embedder), max_sentences)
    sentences, citations = [], []
    for n, c in enumerate(chosen, start=1):
        citations.append(Citation.of(n, c.hit, (c.start, c.end, c.raw)))
        sentences.append(Sentence(c.shown, (n,)))
    foreign = sum(c.lang != lang for c in chosen)
    notice = NOTICES.get((lang, "all" if foreign == len(chosen) else "some"), "") if foreign else ""
    return Answer(question, True, tuple(sentences), tuple(citations), hits, query, notice)


def refusal(
    question: str, query: str, hits: Sequence[Hit], text_of: TextLookup | None = None
) -> Answer:
    """'Not in the library', in the question's language, then the nearest sections as leads:
    one sentence per lead holding its heading path (or file name), citing the section.

    A section whose text is only a list of names (`abs() all() any() …`, exception class
    names, a list of interpreters) is no lead: it matches many questions and explains none."""
    lang = text_lang(question)
    leads = [h for h in hits if not _bare_names(h, text_of)][:LEADS]
    if not leads:
        return Answer(question, False, (Sentence(EMPTY[lang]),), (), tuple(hits), query)
    sentences, citations = [Sentence(REFUSAL[lang])], []
    for n, hit in enumerate(leads, start=1):
        c = hit.chunk
        where = c.heading.replace(" > ", " › ") if c.heading else PurePath(c.source).name
        citations.append(Citation.of(n, hit))
        sentences.append(Sentence(where, (n,)))
    return Answer(question, False, tuple(sentences), tuple(citations), tuple(hits), query)


def _bare_names(hit: Hit, text_of: TextLookup | None) -> bool:
    """Whether a section says nothing but names: no sentence of a few words outside code,
    or one whose words are mostly code names."""
    first = next(iter(candidates([hit], text_of)), None)
    if first is None:
        return True
    if len(HAN.findall(first.shown)) >= 6:
        return False
    words = identifiers(first.shown)
    return not words or sum(map(is_code_name, words)) >= len(words) / 2


class ExtractiveAnswerer:
    """Holds what a warm service reuses: the embedder and a document-text cache."""

    def __init__(self, library: Library, embedder: Embedder | None = None) -> None:
        self.library = library
        self.embedder = embedder if embedder is not None else library.embedder
        self._texts: dict[str, str] = {}

    def text_of(self, doc_id: str) -> str:
        # doc_id is a content hash, so a cached text can never be stale.
        if doc_id not in self._texts:
            if len(self._texts) > 16:
                self._texts.clear()
            self._texts[doc_id] = self.library.document(doc_id).text
        return self._texts[doc_id]

    def answer(self, question: str, retrieval: Retrieval, query: str | None = None) -> Answer:
        return compose_extractive(question, retrieval, self.text_of, self.embedder, query)


@dataclass(frozen=True)
class Location:
    """Where a cited span sits in its document, with some text around it (for "open")."""

    line: int  # 1-based line of `start`
    column: int  # 1-based
    before: str
    span: str
    after: str


def locate(text: str, start: int, end: int, around: int = 200) -> Location:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    lo, hi = max(0, start - around), min(len(text), end + around)
    return Location(line, column, text[lo:start], text[start:end], text[end:hi])
