"""Readable answers, on the display side: a sentence whose subject is a pronoun brings the
sentence it points back to.

"It wraps a function in a dictionary lookup to cache results…" never names `cache`; the
sentence just before it in the passage does ("cache is a simple unbounded function cache…").
After the answerer has chosen its sentences (how they are scored and chosen is not touched),
`with_antecedents` puts that previous sentence in front of the pronoun sentence when the two
are adjacent in one paragraph of the document (nothing but white space or a quote marker
between them, no heading). The citation grows to cover both, so it stays an exact span of the
stored text: `Citation.text == document.text[start:end]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from assistant.records import Answer, Citation, Sentence
from assistant.sentences import display, split

LOOKBACK = 800  # characters before a citation searched for its antecedent sentence
# A sentence opening with a pronoun subject (not "This module …": a noun after it names it).
_EN = re.compile(
    r"^(?:It|Its|They|Their|These|This|That|Those)\b(?!\s+(?:module|function|class|method)\b)"
)
_ZH = re.compile(r"^(?:它们|它|其|该|此|这些|这)")

TextOf = Callable[[str], "str | None"]


def leans_back(sentence: str) -> bool:
    """Whether `sentence` names its subject only by a pronoun."""
    s = sentence.lstrip()
    return bool(_EN.match(s) or _ZH.match(s))


def with_antecedents(answer: Answer, text_of: TextOf) -> Answer:
    """`answer` with each pronoun-subject sentence preceded by its antecedent (see above)."""
    if not answer.answered or answer.mode != "extractive":
        return answer
    by_n = {c.n: c for c in answer.citations}
    shown = {display(c.text) for c in answer.citations}
    sentences: list[Sentence] = []
    grown: dict[int, Citation] = {}
    for s in answer.sentences:
        cite = by_n.get(s.citations[0]) if s.citations and len(s.citations) == 1 else None
        if s.code or cite is None or not leans_back(s.text):
            sentences.append(s)
            continue
        cite = grown.get(cite.n, cite)
        found = _before(text_of(cite.doc_id), cite)
        if found is None or found[1] in shown or any(p.text == found[1] for p in sentences):
            sentences.append(s)
            continue
        start, text = found
        doc = text_of(cite.doc_id) or ""
        grown[cite.n] = replace(cite, start=start, text=doc[start : cite.end])
        shown.add(text)
        sentences += [Sentence(text, (cite.n,)), s]
    if not grown:
        return answer
    citations = tuple(grown.get(c.n, c) for c in answer.citations)
    return replace(answer, sentences=tuple(sentences), citations=citations)


def _before(doc: str | None, cite: Citation) -> tuple[int, str] | None:
    """(start, display text) of the sentence just before `cite` in its paragraph, if any."""
    if doc is None or doc[cite.start : cite.end] != cite.text:
        return None  # the document changed since the answer: leave it as it is
    lo = max(0, cite.start - LOOKBACK)
    prev = None
    for span in split(doc, lo, cite.start):
        prev = span
    if prev is None or prev.kind != "text" or (prev.start == lo and lo > 0):
        return None
    if doc[prev.end : cite.start].strip(" \t>") not in ("", "\n"):
        return None  # a blank line or more: another paragraph
    text = display(doc[prev.start : prev.end])
    return (prev.start, text) if text else None
