"""Search in the PostgreSQL store (index/postgres/generation.py): dense in SQL, BM25 from term blocks.

`PgDense` is exact (a sequential scan) for a language the manifest marks "flat" (at most
`index.embedded.vectors.FLAT_MAX` chunks, as the embedded store's flat index) and an HNSW scan of that
language's partial index above. `PgLexical` scores BM25 from the query terms' blocks (index/postgres/terms.py: bm25s's
formula and float types), which the generation fetches in one statement and caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from index.embedded.lexical import SPARSE_SHARE, top_k
from index.embedded.vectors import FLAT_MAX

if TYPE_CHECKING:
    from index.postgres.generation import PgGeneration


class PgDense:
    """One language's vectors: HNSW search (a partial index per language) and lookups."""

    def __init__(self, gen: PgGeneration, lang: str) -> None:
        self.gen, self.lang = gen, lang
        info = gen.manifest.langs[lang]
        self.backend = info.get("backend", "hnsw")
        # exact search in the reader up to FLAT_MAX chunks (a `vector_backend="flat"` asked
        # for a bigger language is scanned in SQL: its vectors are not loaded into memory)
        self.cached = self.backend == "flat" and info.get("chunks", 0) <= FLAT_MAX

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        from psycopg import sql

        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.cached:
            # Exact, in numpy over the language's vectors, which the reader loads once per
            # generation (at most FLAT_MAX of them): an exact scan in SQL took 22 ms for 23k
            # chunks at 1M, and a full table scan without the language index 0.4 s.
            ids, vecs = self.gen.flat(self.lang)
            return [top_k(vecs @ q, ids, k, positive=False) for q in queries]
        exact = self.backend == "flat"  # asked for above FLAT_MAX: an exact scan in SQL
        if not exact:
            self.gen.set_ef(k)
        # `+ 0` orders by an expression no index provides: an exact scan. The language is a
        # literal, not a parameter: the planner must see that the partial HNSW index of that
        # language applies, also in a prepared statement.
        query = (
            "SELECT chunk_id, -d FROM (SELECT chunk_id, (embedding <#> %s) + 0 AS d"
            " FROM {s}.chunks WHERE lang = {lang}) c ORDER BY d, chunk_id LIMIT %s"
            if exact
            else "SELECT chunk_id, -(embedding <#> %s) FROM {s}.chunks WHERE lang = {lang}"
            " ORDER BY embedding <#> %s LIMIT %s"
        )
        out = []
        for q in queries:
            params = (q, int(k)) if exact else (q, q, int(k))
            rows = self.gen.rows(query, params, lang=sql.Literal(self.lang))
            out.append([(int(i), float(s)) for i, s in rows])
        return out

    def vectors(self, ids: list[int]) -> np.ndarray:
        if self.cached:  # the cached vectors: no round trip
            have, vecs = self.gen.flat(self.lang)
            pos = np.searchsorted(have, np.asarray(ids, dtype=np.int64))
            pos = np.minimum(pos, max(len(have) - 1, 0))
            out = np.zeros((len(ids), self.gen.manifest.dim), dtype=np.float32)
            hit = have[pos] == np.asarray(ids, dtype=np.int64) if len(have) else pos < 0
            out[hit] = vecs[pos[hit]]
            return out
        rows = self.gen.rows(
            "SELECT chunk_id, embedding FROM {s}.chunks WHERE chunk_id = ANY(%s)",
            ([int(i) for i in ids],),
        )
        found = {i: np.asarray(v.to_numpy(), dtype=np.float32) for i, v in rows}
        dim = self.gen.manifest.dim
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for row, i in enumerate(ids):
            if i in found:
                out[row] = found[i]
        return out


class PgLexical:
    """One language's BM25 from the term blocks (index/postgres/terms.py), scored in numpy."""

    def __init__(self, gen: PgGeneration, lang: str) -> None:
        self.gen, self.lang = gen, lang

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        tokens = [t for t in query_tokens if "\x00" not in t]
        if not tokens or k <= 0:
            return []
        blocks = self.gen.term_blocks(self.lang, tokens)
        known = [t for t in tokens if blocks.get(t) is not None]
        if not known:
            return []
        ids = self.gen.lang_arrays(self.lang)[0]
        # A repeated query token counts once per repetition, in query order, with bm25s's
        # float32 additions (index.embedded.lexical.SavedBM25): the same sums, bit for bit. Few
        # postings (a name check) are summed on those rows only, as SavedBM25 does.
        parts = [blocks[t] for t in known]
        if sum(len(r) for r, _ in parts) * SPARSE_SHARE < len(ids):
            rows, where = np.unique(np.concatenate([r for r, _ in parts]), return_inverse=True)
            acc = np.zeros(len(rows), dtype=np.float32)
            np.add.at(acc, where, np.concatenate([v for _, v in parts]))
            return top_k(acc, ids[rows], k)
        acc = np.zeros(len(ids), dtype=np.float32)
        for rows, scores in parts:
            acc[rows] += scores
        return top_k(acc, ids, k)
