"""A reading aid across languages: the key terms of cited sentences with their translations.

When an English question is answered from the Chinese notes (or the other way round), the reader
gets the terms of the cited sentences that the bilingual glossary knows, e.g. "全局解释器锁 —
global interpreter lock", longest terms first and each part of a sentence used once (so 全局解释器锁
does not also list 解释器). Term tables found next to the glossary (`assistant/*terms*.tsv`, the
same "zh<TAB>en, en" format) are read too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from assistant.glossary import Glossary, default_glossary

MAX_TERMS = 6


@cache
def _tables() -> tuple[Glossary, ...]:
    extra = sorted(p for p in Path(__file__).parent.glob("*terms*.tsv") if p.is_file())
    out = [default_glossary()]
    for path in extra:
        try:
            out.append(Glossary.from_file(path))
        except (OSError, ValueError):
            continue  # a malformed table only costs its terms
    return tuple(out)


@cache
def _zh_terms() -> tuple[tuple[str, str], ...]:
    """(Chinese term, its first English translation), longest first."""
    pairs: dict[str, str] = {}
    for table in _tables():
        for zh, en in table.zh_to_en.items():
            if en:
                pairs.setdefault(zh, en[0])
    return tuple(sorted(pairs.items(), key=lambda p: -len(p[0])))


@cache
def _en_terms() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern over every English term (longest first) and its first Chinese translation."""
    to_zh: dict[str, str] = {}
    for table in _tables():
        for en, zh in table.en_to_zh.items():
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
