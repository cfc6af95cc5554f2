"""A reading aid across languages: the key terms of cited sentences with their translations.

When an English question is answered from the Chinese notes (or the other way round), the reader
gets the terms of the cited sentences that the bilingual glossary knows, e.g. "全局解释器锁 —
global interpreter lock", longest terms first and each part of a sentence used once (so 全局解释器锁
does not also list 解释器). For Chinese sentences the mined term table (`glossary.mined_terms`,
noisier) adds the terms the hand glossary lacks, words of three characters or more only.
Both come from `assistant.crossing`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from assistant.crossing import crossing

MAX_TERMS = 6


@cache
def _zh_terms() -> tuple[tuple[str, str], ...]:
    """(Chinese term, its first English translation), longest first; the hand glossary wins."""
    hand = crossing().hand.zh_to_en
    pairs = {zh: en[0] for zh, en in crossing().terms.zh_to_en.items()
             if en and (zh in hand or len(zh) >= 3)}  # fmt: skip
    return tuple(sorted(pairs.items(), key=lambda p: -len(p[0])))


@cache
def _en_terms() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern over every English term (longest first) and its first Chinese translation."""
    to_zh: dict[str, str] = {}
    for en, zh in crossing().hand.en_to_zh.items():
        if zh and len(en) > 2:
            to_zh.setdefault(en, zh[0])
    alternatives = "|".join(re.escape(t) for t in sorted(to_zh, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])(?:{alternatives})(?:s|es)?(?![\w.])", re.IGNORECASE), to_zh


def reading_aid(sentences: Sequence[str], question_lang: str) -> tuple[tuple[str, str], ...]:
    """(term as it appears in the sentences, translation) for sentences of the other language."""
    out: dict[str, str] = {}
    for text in sentences:
        if question_lang == "en":  # Chinese sentences: list their Chinese terms
            rest = text
            for zh, en in _zh_terms():
                if zh in rest:
                    out.setdefault(zh, en)
                    rest = rest.replace(zh, " ")
        else:  # English sentences for a Chinese reader
            pattern, to_zh = _en_terms()
            for m in pattern.finditer(text):
                word = m.group()
                key = word.lower()
                if key not in to_zh:
                    key = key[:-2] if key.endswith("es") and key[:-2] in to_zh else key[:-1]
                if key in to_zh:
                    out.setdefault(word, to_zh[key])
    return tuple(list(out.items())[:MAX_TERMS])
