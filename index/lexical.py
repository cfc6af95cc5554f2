"""Lexical search: a tokenizer for mixed Chinese/English/code text and a bm25s index.

Tokens are lower-cased. Chinese runs go through jieba in search mode (it also emits the
shorter words inside long ones, which helps recall on both the query and the passage side).
Code identifiers (`os.lseek`, `__init__`, `SEEK_END`, `PyObject_New`) stay whole and also
yield their parts (`os`, `lseek`, `os.path` of `os.path.join`), so both exact and partial
matches score. English words are reduced to their Snowball stem (PyStemmer, as bm25s
recommends), so "tracebacks" meets "traceback" and "exceptions" meets "except"; whole dotted
or underscored identifiers are kept as written. jieba and bm25s are imported lazily: a
library that only lists or skips files never pays for them.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from index.manifest import fsync
from ingest.errors import LibraryError
from ingest.language import HAN_RANGES

# Bump when tokenize() changes: `askdocs ingest` then re-tokenizes the cached tokens of older
# libraries (no re-embedding), whose lexical index no longer matches the queries' tokens.
TOKENIZER_VERSION = 2
_CJK = HAN_RANGES
# A letter or underscore, then letters, digits, underscores; never a CJK character.
_IDENT = rf"[^\W\d{_CJK}][^\W{_CJK}]*"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"
    rf"|(?P<ident>{_IDENT}(?:\.{_IDENT})*)"
    r"|(?P<num>\d+(?:\.\d+)*)"
    rf"|(?P<word>[^\W_{_CJK}]+)"
)

STOPWORDS_EN = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i if
    in into is it its me my no not of on or our should so such than that the their them then
    there these they this those to was we were what when where which while who why will with
    would you your""".split()  # noqa: SIM905 - a word list reads better as text
)
STOPWORDS_ZH = frozenset("的了是在和与或及也就都而之其这那个吗呢吧啊着把被于")  # single characters


@cache
def _stem() -> Callable[[str], str]:
    import Stemmer

    return Stemmer.Stemmer("english").stemWord


def _word(token: str) -> str:
    """An English word's stem; anything else (digits, non-Latin letters) as it is."""
    return _stem()(token) if token.isascii() and token.isalpha() else token


@cache
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary load on stderr otherwise
    return jieba


def _ident_tokens(ident: str) -> list[str]:
    """`os.path.join` → the whole, its dotted prefixes, and every dotted/underscore part."""
    out = [ident]
    dotted = ident.split(".")
    out += [".".join(dotted[:i]) for i in range(2, len(dotted))]
    for piece in dotted:
        if len(dotted) > 1:
            out.append(piece)
        parts = [p for p in piece.split("_") if p]
        if len(parts) > 1 or (parts and parts[0] != piece):
            out += parts
    seen: set[str] = set()
    kept = []
    for tok in out:
        if tok not in seen and (tok == ident or tok not in STOPWORDS_EN):
            seen.add(tok)
            kept.append(tok)
    return kept


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens for BM25: words, whole code identifiers and their parts, jieba words."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup, m.group()
        if kind == "cjk":
            tokens += [
                w for w in _jieba().cut_for_search(value) if w.strip() and w not in STOPWORDS_ZH
            ]
        elif kind == "ident":
            if "." in value or "_" in value:
                tokens += [t if "." in t or "_" in t else _word(t) for t in _ident_tokens(value)]
            elif value not in STOPWORDS_EN:
                tokens.append(_word(value))
        elif value not in STOPWORDS_EN:
            tokens.append(_word(value))
    return tokens


@dataclass
class LexicalIndex:
    """A bm25s index over one language's chunks; `ids[i]` is the chunk id of bm25s doc i."""

    bm25: Any
    ids: np.ndarray

    @classmethod
    def build(cls, ids: list[int], tokens: list[list[str]]) -> LexicalIndex:
        import bm25s

        # bm25s cannot index an empty document; a chunk of pure punctuation gets a token
        # that no query can produce, so it never matches but keeps its slot.
        corpus = [t if t else ["\x00"] for t in tokens]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk_id, BM25 score) among chunks sharing at least one query token."""
        known = [t for t in query_tokens if t in self.bm25.vocab_dict]
        if not known or k <= 0 or not len(self.ids):
            return []
        scores = np.asarray(self.bm25.get_scores(known), dtype=np.float32)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((self.ids[top], -scores[top]))]  # score desc, then id: stable
        return [(int(self.ids[i]), float(scores[i])) for i in top]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(directory), show_progress=False)
        np.save(directory / "ids.npy", self.ids)
        for name in os.listdir(directory):
            fsync(directory / name)
        fsync(directory)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        import bm25s

        try:
            bm25 = bm25s.BM25.load(str(directory), mmap=False, show_progress=False)
            ids = np.load(directory / "ids.npy")
        except (OSError, ValueError, json.JSONDecodeError, KeyError) as exc:
            raise LibraryError(
                f"The lexical index {directory} is missing or corrupt ({exc}).",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            ) from exc
        if len(ids) != bm25.scores["num_docs"]:
            raise LibraryError(
                f"The lexical index {directory} is inconsistent.",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            )
        return cls(bm25, ids)
