"""Search in the PostgreSQL store (index/postgres.py): dense and BM25, computed in SQL.

`PgDense` is exact (a sequential scan) for a language the manifest marks "flat" (at most
`index.vectors.FLAT_MAX` chunks, as the embedded store's flat index) and an HNSW scan of that
language's partial index above. `PgLexical` scores BM25 from the postings with bm25s's formula
(index/lexical.py: Lucene IDF ln(1 + (N - df + 0.5) / (df + 0.5)), k1 1.5, b 0.75, length in
tokens, an empty chunk counted as one token), so its scores equal the embedded store's.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from index.postgres import PgGeneration

K1, B = 1.5, 0.75  # bm25s's defaults, which the embedded store's index is built with


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
    """One language's BM25, scored in the database from postings and length statistics."""

    def __init__(self, gen: PgGeneration, lang: str) -> None:
        self.gen, self.lang = gen, lang

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        from psycopg import sql

        counts = Counter(t for t in query_tokens if "\x00" not in t)
        if not counts or k <= 0:
            return []
        # A repeated query token counts once per repetition, as in SavedBM25.get_scores.
        rows = self.gen.rows(
            "WITH q AS (SELECT * FROM unnest(%s::text[], %s::int[]) AS q(term, qtf)),"
            " df AS (SELECT p.term, count(*)::float8 AS df FROM {s}.postings p JOIN q USING (term)"
            "  WHERE p.lang = {lang} GROUP BY p.term),"
            " st AS (SELECT n::float8 AS n, total::float8 / n AS avgdl FROM {s}.lang_stats"
            "  WHERE lang = {lang})"
            " SELECT p.chunk_id, sum(q.qtf * ln(1 + (st.n - df.df + 0.5) / (df.df + 0.5))"
            "  * p.tf / (p.tf + {k1} * (1 - {b} + {b} * p.dl / st.avgdl))) AS score"
            " FROM {s}.postings p JOIN q USING (term) JOIN df USING (term) CROSS JOIN st"
            " WHERE p.lang = {lang} GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %s",
            (list(counts), list(counts.values()), int(k)),
            lang=sql.Literal(self.lang),
            k1=sql.Literal(K1),
            b=sql.Literal(B),
        )
        return [(int(i), float(s)) for i, s in rows]
