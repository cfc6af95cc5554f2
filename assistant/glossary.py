"""Bilingual term tables and question expansion (loaded once by `assistant.crossing`).

A Chinese question about English documents usually still names the thing it asks about in
code (`uuid`, `os.access`), and its Chinese terms have standard English names (装饰器 →
decorator). The expansion feeds both the other language's lexical index and a second query
embedding, which measurably pulls the right passage up within that language (see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ingest.text import identifiers, is_code_name


@dataclass(frozen=True)
class Glossary:
    zh_to_en: dict[str, tuple[str, ...]]
    en_to_zh: dict[str, tuple[str, ...]]

    @classmethod
    def from_file(cls, path: Path) -> Glossary:
        return cls.from_pairs(read_terms(path).items())

    @classmethod
    def from_pairs(cls, pairs) -> Glossary:
        """From (Chinese term, English terms) pairs; a later pair for a term replaces it."""
        zh_to_en: dict[str, tuple[str, ...]] = dict(pairs)
        en_to_zh: dict[str, list[str]] = {}
        for zh, terms in zh_to_en.items():
            for term in terms:
                en_to_zh.setdefault(term.lower(), []).append(zh)
        return cls(zh_to_en, {k: tuple(v) for k, v in en_to_zh.items()})

    @cached_property
    def _zh_longest_first(self) -> list[str]:
        return sorted(self.zh_to_en, key=len, reverse=True)

    @cached_property
    def _en_pattern(self) -> re.Pattern[str]:
        alternatives = "|".join(re.escape(t) for t in sorted(self.en_to_zh, key=len, reverse=True))
        return re.compile(r"(?<![\w.])(?P<term>" + alternatives + r")s?(?![\w.])")

    def expand(self, query: str, query_lang: str) -> str:
        """Terms of `query` in the other language (empty when nothing carries over)."""
        if query_lang == "zh":
            terms = [name.removesuffix("()") for name in identifiers(query)]
            # Longest glossary entries first, and each span of the question used once,
            # so 全局解释器锁 does not also add 解释器's terms.
            rest = query
            for zh in self._zh_longest_first:
                if zh in rest:
                    terms += self.zh_to_en[zh]
                    rest = rest.replace(zh, " ")
            return " ".join(dict.fromkeys(terms))
        # One alternation, longest terms first, so "unit test" wins over "test" at a position.
        terms = [
            zh
            for m in self._en_pattern.finditer(query.lower())
            for zh in self.en_to_zh[m.group("term")]
        ]
        # Identifiers that look like code carry over to Chinese notes, which quote code as is.
        terms += [name.removesuffix("()") for name in identifiers(query) if is_code_name(name)]
        return " ".join(dict.fromkeys(terms))


def read_terms(path: Path) -> dict[str, tuple[str, ...]]:
    """Chinese term → English terms of a TSV file: zh <TAB> en terms, comma separated (further
    columns, such as the mined table's scores, are ignored; # starts a comment line)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        zh, en = line.split("\t")[:2]
        out[zh] = tuple(t.strip() for t in en.split(",") if t.strip())
    return out


def read_translations(path: Path) -> dict[str, tuple[str, ...]]:
    """Word → its translations in the other language, best first: a TSV of `word <TAB>
    translation:score ...` (`assistant/translations.tsv`, IBM Model 1 over the Python docs'
    parallel paragraphs, rebuilt by `python bench/translate.py --write`)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            word, found = line.split("\t")
            out[word] = tuple(t.rpartition(":")[0] for t in found.split(" "))
    return out
