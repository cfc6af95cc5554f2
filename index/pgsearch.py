"""Search in the PostgreSQL store (index/postgres.py): dense in SQL, BM25 from term blocks.

`PgDense` is exact (a sequential scan) for a language the manifest marks "flat" (at most
`index.vectors.FLAT_MAX` chunks, as the embedded store's flat index) and an HNSW scan of that
language's partial index above. `PgLexical` scores BM25 from the query terms' blocks (index/pgterms.py: bm25s's
formula and float types), which the generation fetches in one statement and caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from index.pgterms import top_k

if TYPE_CHECKING:
    from index.postgres import PgGeneration


class PgDense:
    """One language's vectors: HNSW search (a partial index per language) and lookups."""

    def __init__(self, gen: PgGeneration, lang: str) -> None:
        self.gen, self.lang = gen, lang
        self.backend = gen.manifest.langs[lang].get("backend", "hnsw")

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        from psycopg import sql

        exact = self.backend == "flat"
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
        for q in np.atleast_2d(np.asarray(queries, dtype=np.float32)):
            params = (q, int(k)) if exact else (q, q, int(k))
            rows = self.gen.rows(query, params, lang=sql.Literal(self.lang))
            out.append([(int(i), float(s)) for i, s in rows])
        return out

    def vectors(self, ids: list[int]) -> np.ndarray:
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
    """One language's BM25 from the term blocks (index/pgterms.py), scored in numpy."""

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
        # float32 additions (index.lexical.SavedBM25.get_scores): the same sums, bit for bit.
        acc = np.zeros(len(ids), dtype=np.float32)
        for t in known:
            rows, scores = blocks[t]
            acc[rows] += scores
        return top_k(acc, ids, k)
