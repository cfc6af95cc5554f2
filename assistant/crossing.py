"""Crossing languages: the one owner of what lets a question meet text in the other language.

Every consumer (retrieval, the sentence ranker, the near-miss check, the reading aid, the
answer's cosines) reaches the tables and the model's language geometry through `crossing()`;
nothing else opens a table. What it holds:

- `terms`: the bilingual term table, the hand glossary (`glossary.tsv`, whose entries win) plus
  the terms mined from the Python docs' parallel translation (`terms.tsv`, Chinese → English
  only). It expands a question into the other language's words and gives the reading aid.
- `words`: ordinary-word translations learned by IBM Model 1 from the same parallel text
  (`translations.tsv`): a Chinese question meets an English sentence through 默认 → default.
- per model, `axes(embedder, cache_dir)`: the directions that separate the languages in the
  model's space, estimated from the hand glossary's pairs (`assistant.calibrate`), and
  `query_map(model)`: the learned zh ↔ en query map (`assistant.align`), which belongs to the
  base model only (None for any other).

One loader and one cache: the tables are read once per process; the per-model parts are keyed
by the model's name (the axes also on disk next to the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.glossary import Glossary, read_terms, read_translations
from ingest.text import text_lang

if TYPE_CHECKING:
    from assistant.align import Alignment
    from assistant.calibrate import LanguageAxes
    from index.model.embedder import Embedder

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Crossing:
    hand: Glossary  # the hand glossary alone: both directions, and the calibration pairs
    terms: Glossary  # hand + mined Chinese → English; English → Chinese as the hand glossary
    words: Mapping[str, tuple[str, ...]]  # word (ingest.text.terms form) → translations

    def expand(self, query: str, lang: str | None = None, mined: bool = True) -> str:
        """The question's terms in the other language (code names, table terms)."""
        table = self.terms if mined else self.hand
        return table.expand(query, lang or text_lang(query))

    def translations(self, word: str) -> tuple[str, ...]:
        return self.words.get(word, ())

    def axes(self, embedder: Embedder, cache_dir: Path | None) -> LanguageAxes:
        from assistant.calibrate import language_axes

        return language_axes(embedder, self.hand, cache_dir)

    @staticmethod
    def query_map(model: str) -> Alignment | None:
        from assistant.align import load_alignment

        return load_alignment(model)


@cache
def crossing() -> Crossing:
    hand = Glossary.from_file(HERE / "glossary.tsv")
    mined = read_terms(HERE / "terms.tsv")
    merged = Glossary.from_pairs([*mined.items(), *hand.zh_to_en.items()])
    terms = Glossary(merged.zh_to_en, hand.en_to_zh)
    return Crossing(hand, terms, read_translations(HERE / "translations.tsv"))
