"""Lexical search: a bm25s index per chunk language over `ingest.text.tokenize` tokens.

bm25s is imported lazily: a library that only lists or skips files never pays for it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.disk import fsync
from ingest.errors import LibraryError

# The version of `ingest.text.tokenize`. Bump it when tokens change: `askdocs ingest` (and the
# app on start) then re-tokenizes the cached tokens of older libraries (no re-embedding),
# whose lexical index no longer matches the queries' tokens.
# 3: one stop-word list for BM25 and answer terms.
TOKENIZER_VERSION = 3
# A query whose tokens' postings hold under 1/8 of the documents is scored on those only.
SPARSE_SHARE = 8


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
        if isinstance(self.bm25, SavedBM25):
            rows, scores = self.bm25.candidate_scores(known)
        else:  # just built: bm25s's own scores over every document
            rows, scores = None, np.asarray(self.bm25.get_scores(known), dtype=np.float32)
        return top_k(scores, self.ids if rows is None else self.ids[rows], k)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(directory), show_progress=False)
        np.save(directory / "ids.npy", self.ids)
        for name in os.listdir(directory):
            fsync(directory / name)
        fsync(directory)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        try:
            bm25 = SavedBM25.load(directory)
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


@dataclass(frozen=True)
class SavedBM25:
    """A saved bm25s index, read for searching without importing bm25s.

    Why: `import bm25s` imports scipy.sparse, ~0.9 s of a cold `askdocs ask` whose budget is
    2 s. Searching needs only what bm25s saved: the vocabulary and the CSC matrix of
    precomputed per-(token, document) scores; a query's scores are the sums of its tokens'
    columns, as `bm25s.BM25.get_scores` computes them (tests/test_lexical.py compares the two).
    bm25s still builds and saves every index."""

    vocab_dict: dict[str, int]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    scores: dict[str, int]  # {"num_docs": n}, as bm25s names it

    @classmethod
    def load(cls, directory: Path) -> SavedBM25:
        params = json.loads((directory / "params.index.json").read_text())
        vocab = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))
        # memory-mapped: a query reads only its tokens' columns, so opening a library of a
        # million chunks does not read the whole matrix (published files never change)
        arrays = [
            np.load(directory / f"{n}.csc.index.npy", mmap_mode="r")
            for n in ("data", "indices", "indptr")
        ]
        return cls(vocab, *arrays, {"num_docs": int(params["num_docs"])})

    def candidate_scores(self, tokens: list[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """(rows, scores) of the documents holding a token, or (None, every document's
        scores) when they are many. A rare name in a million chunks then costs its postings,
        not a million-long array to fill and partition (the retriever asks often); the sums
        are the same float32 additions in the same order, so the scores are identical."""
        ids = [self.vocab_dict[t] for t in tokens if t in self.vocab_dict]
        spans = [(int(self.indptr[i]), int(self.indptr[i + 1])) for i in ids]
        if sum(e - s for s, e in spans) * SPARSE_SHARE >= self.scores["num_docs"]:
            return None, self.get_scores(tokens)
        if not spans:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self.data.dtype)
        rows = np.concatenate([self.indices[s:e] for s, e in spans])
        docs, where = np.unique(rows, return_inverse=True)
        scores = np.zeros(len(docs), dtype=self.data.dtype)
        np.add.at(scores, where, np.concatenate([self.data[s:e] for s, e in spans]))
        return docs, scores

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        ids = np.asarray([self.vocab_dict[t] for t in tokens if t in self.vocab_dict], np.int64)
        scores = np.zeros(self.scores["num_docs"], dtype=self.data.dtype)
        for start, end in zip(self.indptr[ids], self.indptr[ids + 1], strict=True):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores


def top_k(
    acc: np.ndarray, ids: np.ndarray, k: int, *, positive: bool = True
) -> list[tuple[int, float]]:
    """The best k rows of `acc` as (ids[row], score): everything scoring at least the k-th
    score, then score desc, id asc, so ties at the cut are decided by id whichever way (and
    in whichever store) the scores were computed; only scores > 0 where `positive`."""
    hit = np.flatnonzero(acc > 0) if positive else np.arange(len(acc))
    k = min(k, len(hit))
    if k == 0:
        return []
    vals = acc[hit]  # partitioning only the scored rows: a million, mostly zeros, was 8 ms
    kth = np.partition(vals, len(vals) - k)[len(vals) - k]  # the k-th best score
    top = hit[vals >= kth]
    order = np.lexsort((ids[top], -acc[top]))[:k]
    return [(int(ids[top[i]]), float(acc[top[i]])) for i in order]
