"""BM25 term blocks of the PostgreSQL store: one row per (language, term), as bm25s's columns.

Why blocks and not a postings table: BM25 in SQL over a row per (term, chunk) read and summed
the whole posting list of every query term on every call (0.5–0.8 s a search at 100k chunks)
and made a write COPY tens of millions of rows. A block holds one term's chunks as arrays,
like a column of bm25s's CSC matrix: `rows` (int32, ascending: positions in the language's
chunk list) and `tf` (uint16, or int32 when a count does not fit). Per language, `lang_stats`
holds the chunk list itself: `ids` (int64 chunk id per row, -1 for a row freed by a removal)
and `dl` (int32 length in tokens per row). A search fetches its query terms' blocks in one
statement and scores them in numpy with bm25s's formula and float types (`scores`), so the
ids and scores equal the embedded store's; a reader caches the scored blocks of its
generation (index/postgres/generation.py).

The writer (index/postgres/writer.py) builds every block of a language in bulk (`build`: a numpy
group-by, then one COPY) for a new library, a re-tokenized one, or one whose freed rows
outnumber its chunks; otherwise it rewrites only the blocks of the terms that the added and
removed chunks hold (`Update`), in the write's transaction.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

K1, B = 1.5, 0.75  # bm25s's defaults, which the embedded store's index is built with
BATCH = 50_000  # chunks grouped at a time by `build` (bounds the Python lists)
TERM_TYPES = ["text", "text", "int4", "bytea", "bytea"]


def encode_tf(tf: np.ndarray) -> bytes:
    """uint16 when every count fits (every chunk a chunker makes), else int32: the reader
    tells them apart by the length (2 or 4 bytes a row)."""
    kind = "<u2" if tf.size == 0 or int(tf.max()) < 1 << 16 else "<i4"
    return np.asarray(tf).astype(kind).tobytes()


def decode(rows: bytes, tf: bytes) -> tuple[np.ndarray, np.ndarray]:
    r = np.frombuffer(rows, dtype="<i4")
    t = np.frombuffer(tf, dtype="<u2" if len(tf) == 2 * len(r) else "<i4")
    return r, t


def idf(n: int, df: int) -> np.float32:
    """bm25s's Lucene IDF, kept as float32 as its idf array is."""
    return np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))


def scores(rows: np.ndarray, tf: np.ndarray, n: int, dl: np.ndarray, avgdl: float) -> np.ndarray:
    """Each row's score for one term, in bm25s's types: a float64 term-frequency part times
    the float32 IDF, stored as float32 (bm25s.scoring._build_scores_and_indices_for_matrix)."""
    t = tf.astype(np.float64)
    d = dl[rows].astype(np.float64)
    tfc = t / (K1 * ((1 - B) + B * d / np.float64(avgdl)) + t)
    return (np.float64(idf(n, len(rows))) * tfc).astype(np.float32)


def group(token_lists: Sequence[Sequence[str]], first_row: int, vocab: dict[str, int]):  # noqa: ANN201
    """(term index, row, tf) of every (term, chunk) pair, sorted by term then row."""
    flat = [t for tokens in token_lists for t in tokens]
    tid = np.fromiter((vocab.setdefault(t, len(vocab)) for t in flat), np.int64, len(flat))
    lengths = np.fromiter((len(t) for t in token_lists), np.int64, len(token_lists))
    rows = np.repeat(np.arange(first_row, first_row + len(token_lists), dtype=np.int64), lengths)
    key, tf = np.unique((tid << 32) | rows, return_counts=True)
    return (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32), tf


def build(token_lists: Iterable[Sequence[str]]) -> list[tuple]:
    """Every block of one language from its chunks' tokens in row order: (term, df, rows
    bytes, tf bytes). Tokens holding NUL are skipped (never a query's)."""
    vocab: dict[str, int] = {}
    parts, batch, row = [], [], 0
    for tokens in token_lists:
        batch.append([t for t in tokens if "\x00" not in t])
        if len(batch) == BATCH:
            parts.append(group(batch, row, vocab))
            row, batch = row + len(batch), []
    if batch:
        parts.append(group(batch, row, vocab))
    if not parts:
        return []
    tid, rows, tf = (np.concatenate(p) for p in zip(*parts, strict=True))
    del parts
    order = np.argsort(tid, kind="stable")  # batches are in row order: rows stay ascending
    tid, rows, tf = tid[order], rows[order], tf[order]
    cuts = np.flatnonzero(np.diff(tid)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(tid)]])
    terms = list(vocab)
    return [
        (terms[tid[s]], int(e - s), rows[s:e].tobytes(), encode_tf(tf[s:e]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


class Update:
    """Changes to one language's blocks within a write: rows freed by removed chunks, rows
    appended for added ones; `blocks(old)` rewrites the touched terms' blocks."""

    def __init__(self, ids: np.ndarray, dl: np.ndarray) -> None:
        self.ids, self.dl = ids.copy(), dl.copy()
        self.freed: list[int] = []
        self.new: dict[str, list[tuple[int, int]]] = {}  # term → [(row, tf)]
        self.touched: set[str] = set()
        self._added_ids: list[int] = []
        self._added_dl: list[int] = []

    def remove(self, chunk_ids: Sequence[int], token_lists: Sequence[Sequence[str]]) -> None:
        """Free the rows of removed chunks (one pass over the row list for the batch)."""
        where = np.flatnonzero(np.isin(self.ids, np.asarray(chunk_ids, dtype=np.int64)))
        self.ids[where] = -1
        self.dl[where] = 0
        self.freed += where.tolist()
        for tokens in token_lists:
            self.touched.update(t for t in tokens if "\x00" not in t)

    def add(self, chunk_id: int, tokens: Sequence[str]) -> None:
        terms = [t for t in tokens if "\x00" not in t]
        row = len(self.ids) + len(self._added_ids)
        self._added_ids.append(chunk_id)
        self._added_dl.append(max(len(terms), 1))  # bm25s's placeholder for an empty chunk
        counts = Counter(terms)
        for t, n in counts.items():
            self.new.setdefault(t, []).append((row, n))
        self.touched.update(counts)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.concatenate([self.ids, np.asarray(self._added_ids, dtype=np.int64)])
        dl = np.concatenate([self.dl, np.asarray(self._added_dl, dtype=np.int32)])
        return ids, dl

    def blocks(self, old: dict[str, tuple[bytes, bytes]]) -> list[tuple]:
        """The touched terms' new blocks (term, df, rows, tf); a term left with no chunk has
        none. `old`: the touched terms' current blocks."""
        freed = np.asarray(sorted(self.freed), dtype=np.int32)
        out = []
        for term in sorted(self.touched):
            rows, tf = decode(*old[term]) if term in old else (np.zeros(0, np.int32),) * 2
            keep = ~np.isin(rows, freed) if len(freed) else np.ones(len(rows), bool)
            rows, tf = rows[keep], tf[keep].astype(np.int64)
            if term in self.new:
                add = np.asarray(self.new[term], dtype=np.int64)
                rows = np.concatenate([rows, add[:, 0].astype(np.int32)])
                tf = np.concatenate([tf, add[:, 1]])
            if len(rows):
                out.append((term, len(rows), rows.astype("<i4").tobytes(), encode_tf(tf)))
        return out


def lang_row(lang: str, ids: np.ndarray, dl: np.ndarray) -> tuple[Any, ...]:
    """The `lang_stats` row of a language: live chunks, their total length, the arrays."""
    live = ids >= 0
    return (
        lang,
        int(live.sum()),
        int(dl[live].sum()),
        ids.astype("<i8").tobytes(),
        dl.astype("<i4").tobytes(),
    )
