"""A write to the PostgreSQL store: the embedded writer's plan, published by one transaction.

`PgWriter` publishes the plan of `index.plan.Planner` (the same plan from file hashes as the
embedded store's writer, the same reports) under a PostgreSQL advisory lock (so writers on
several machines exclude each other): `_write` changes the tables of
index/postgres/generation.py in one transaction that ends by bumping the generation in `meta`. The passages are embedded before that
transaction opens; a writer killed at any moment leaves the old generation published (the
server rolls an unfinished transaction back). Over 300 lines because the schema it creates,
the bulk and the incremental paths of one write, and the HNSW build's memory sizing must change
together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from index.embedded.vectors import choose_backend
from index.manifest import Manifest, askdocs_version
from index.plan import TOKENIZER_VERSION, Plan, Planner, lexical_text
from index.postgres import terms as pgterms
from index.postgres.generation import connect, failure, has_terms, read_meta, schema_of
from index.protocol import Progress, Target
from ingest.errors import AskdocsError, LibraryError
from ingest.text import LANGS, tokenize

# BM25 (index/postgres/terms.py): a block of arrays per (language, term) and the chunk list of each
# language. EXTERNAL: stored out of line uncompressed, so a read does not decompress.
LEXICAL = [
    "CREATE TABLE {s}.terms (lang text NOT NULL, term text NOT NULL, df int NOT NULL,"
    " rows bytea NOT NULL, tf bytea NOT NULL, PRIMARY KEY (lang, term));",
    "ALTER TABLE {s}.terms ALTER COLUMN rows SET STORAGE EXTERNAL,"
    " ALTER COLUMN tf SET STORAGE EXTERNAL;",
    "CREATE TABLE {s}.lang_stats (lang text PRIMARY KEY, n bigint NOT NULL,"
    " total bigint NOT NULL, ids bytea NOT NULL, dl bytea NOT NULL);",
    "ALTER TABLE {s}.lang_stats ALTER COLUMN ids SET STORAGE EXTERNAL,"
    " ALTER COLUMN dl SET STORAGE EXTERNAL;",
]
SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE {s}.meta (one bool PRIMARY KEY DEFAULT true CHECK (one),
    generation int NOT NULL, manifest jsonb NOT NULL);
CREATE TABLE {s}.documents (doc_id text PRIMARY KEY, path text NOT NULL UNIQUE,
    source text NOT NULL, title text NOT NULL, text text NOT NULL, lang text NOT NULL,
    mtime float8 NOT NULL, format text NOT NULL, encoding text NOT NULL,
    page_starts text NOT NULL, file_hash text NOT NULL, ingested_at float8 NOT NULL);
CREATE TABLE {s}.chunks (chunk_id bigint PRIMARY KEY,
    doc_id text NOT NULL REFERENCES {s}.documents ON DELETE CASCADE,
    source text NOT NULL, start int NOT NULL, "end" int NOT NULL, text text NOT NULL,
    heading text NOT NULL, lang text NOT NULL, hash text NOT NULL,
    tokens text NOT NULL, dl int NOT NULL, embedding vector({dim}) NOT NULL);
-- pgvector stores vectors out of line (EXTERNAL); an exact scan then reads a second table
-- row by row (29 ms for 2,503 chunks on a busy machine). MAIN keeps them in the row.
ALTER TABLE {s}.chunks ALTER COLUMN embedding SET STORAGE MAIN;
CREATE INDEX ON {s}.chunks (doc_id, start);
CREATE INDEX chunks_lang ON {s}.chunks (lang);
""" + "\n".join(LEXICAL)
# One HNSW graph per language: a partial index that a `WHERE lang = '..'` search uses. Built
# only once a language needs it (above index.embedded.vectors.FLAT_MAX chunks, searched exactly below),
# at the end of the write, over rows already in: maintaining a graph row by row during a bulk
# COPY ran at ~200 chunks/s (bench/scale.py, 100k chunks). CREATE INDEX does not wait for
# readers (their snapshots only block DDL that rewrites or drops the table).
HNSW = "CREATE INDEX IF NOT EXISTS chunks_hnsw_{lang} ON {s}.chunks"
HNSW += " USING hnsw (embedding vector_ip_ops) WITH (m = {m}, ef_construction = {efc})"
HNSW += " WHERE lang = '{lang}'"
# Twice pgvector's defaults (16, 64): at 100k chunks recall@10 of the bench's question vectors
# rose from 0.785 to 0.915 (hnsw.ef_search 512) and 0.85 to 0.958 (1000), build 36 → 81 s.
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 128
# The most memory an HNSW build may take (maintenance_work_mem; sized from the data below it):
# 976k vectors of dim 384 (m 32) get ~3.2 GB. Above it pgvector goes on building on disk, slowly.
HNSW_MEMORY = 4 << 30
HNSW_WORKERS = 2  # parallel build workers (pgvector >= 0.6), besides the leader
CHUNK_TYPES = ["int8", "text", "text", "int4", "int4", "text", "text", "text", "text", "text"]
CHUNK_TYPES += ["int4", "vector"]


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL; U+FFFD keeps every offset where it was."""
    return text.replace("\x00", "\ufffd")


class PgWriter(Planner):
    """One write to one library in PostgreSQL, under its advisory lock."""

    def __init__(self, library: Target, progress: Progress | None) -> None:
        super().__init__(library, progress)
        self.url = library.config.store
        self.schema = schema_of(library.config)
        self.conn: Any = None
        self._rebuild_lexical = False  # the library predates term blocks: build them

    @contextmanager
    def _locked(self) -> Iterator[None]:
        conn = connect(self.url)
        try:
            # A new model's rebuild drops the schema, which waits for readers' snapshots to
            # end (they hold the tables); fail with a message rather than wait for ever.
            conn.execute("SET lock_timeout = '60s'")
            deadline = time.monotonic() + self.lock_wait
            key = "SELECT pg_try_advisory_lock(hashtext(%s))"
            while not conn.execute(key, (self.schema,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise LibraryError(
                        f"The library {self.lib.config.name!r} is being written by another "
                        "askdocs process.",
                        hint="wait for that ingest to finish, then run this command again",
                    )
                time.sleep(0.05)
            self.conn = conn
            yield
        finally:
            self.conn = None
            conn.close()  # ends the session: the lock goes with it

    def _write(self, plan: Plan) -> int:
        from psycopg import sql

        base = self.lib.published()
        vecs = self._embed(plan)
        q = lambda text, **kw: sql.SQL(text).format(s=sql.Identifier(self.schema), **kw)  # noqa: E731
        conn = self.conn
        try:
            with conn.transaction():
                manifest = self._prepare(conn, q, base is None)
                removed: dict[str, list[tuple[int, list[str]]]] = {}
                for doc_id in plan.removals:
                    got = conn.execute(
                        q("SELECT chunk_id, lang, tokens FROM {s}.chunks WHERE doc_id = %s"),
                        (doc_id,),
                    )
                    for chunk_id, lang, tokens in got:
                        removed.setdefault(lang, []).append((chunk_id, tokens.split(" ")))
                    conn.execute(q("DELETE FROM {s}.documents WHERE doc_id = %s"), (doc_id,))
                added = self._add(conn, q, plan, vecs)
                retokenized = self._retokenize(conn, q) if plan.retokenize else 0
                if base is None:  # every chunk is in the plan: blocks from its tokens
                    for lang in LANGS:
                        self._build(conn, q, lang, added.get(lang, []))
                elif plan.retokenize or self._rebuild_lexical:
                    for lang in LANGS:
                        self._build(conn, q, lang, None)
                else:
                    for lang in set(removed) | set(added):
                        self._update(conn, q, lang, removed.get(lang, []), added.get(lang, []))
                counts = dict(conn.execute(q("SELECT lang, n FROM {s}.lang_stats")).fetchall())
                graphs = [lang for lang, n in counts.items() if self._backend(n) == "hnsw"]
                for lang in graphs:
                    self._graph(conn, q, lang, counts[lang], manifest.dim)
                docs = conn.execute(q("SELECT count(*) FROM {s}.documents")).fetchone()[0]
                manifest = replace(
                    manifest,
                    generation=manifest.generation + 1,
                    documents=docs,
                    updated_at=time.time(),
                    langs={
                        lang: {"chunks": counts[lang], "backend": self._backend(counts[lang])}
                        for lang in LANGS
                        if counts.get(lang)
                    },
                    tokenizer_version=TOKENIZER_VERSION,
                    askdocs_version=askdocs_version(),
                )
                conn.execute(
                    q("UPDATE {s}.meta SET generation = %s, manifest = %s"),
                    (manifest.generation, json.dumps(asdict(manifest))),
                )
        except AskdocsError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolled back: the old generation stands
            raise failure(self.url, exc) from exc
        self.lib.reopen()
        return retokenized

    def _backend(self, n: int) -> str:
        """Flat (searched exactly) where the embedded store is flat, else HNSW: pgvector's
        index (the embedded store's PQ / SQ8 codes have no pgvector counterpart)."""
        kind = choose_backend(n, self.lib.config.vector_backend)
        return "flat" if kind == "flat" else "hnsw"

    def _embed(self, plan: Plan) -> np.ndarray:
        """Every added chunk's vector, before the transaction opens (minutes on a big batch)."""
        out = [vecs for _, vecs in self._embedded(plan)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def _prepare(self, conn: Any, q: Any, fresh: bool) -> Manifest:  # noqa: ANN401
        """The schema (created if missing, emptied for a rebuild) and the manifest to update."""
        from pgvector.psycopg import register_vector
        from psycopg import sql

        embedder = self.lib.ingest_embedder if fresh else None
        old = read_meta(conn, self.schema)
        if old is not None and embedder is not None and old.dim != embedder.dim:
            conn.execute(q("DROP SCHEMA {s} CASCADE"))  # a new model: new vector columns
            old_gen, old = old.generation, None
        else:
            old_gen = old.generation if old else 0
        if old is None:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except Exception as exc:  # noqa: BLE001 - no right to: say what an admin runs
                raise LibraryError(
                    f"pgvector is not enabled in the PostgreSQL store ({exc}).",
                    hint="as a superuser, run CREATE EXTENSION vector; in that database",
                ) from exc
            dim = (embedder or self.lib.ingest_embedder).dim
            conn.execute(q(SCHEMA, dim=sql.SQL(str(int(dim)))))
            conn.execute(q("INSERT INTO {s}.meta VALUES (true, 0, '{{}}')"))
        else:
            conn.execute(q("SELECT generation FROM {s}.meta FOR UPDATE"))
            conn.execute(q("CREATE INDEX IF NOT EXISTS chunks_lang ON {s}.chunks (lang)"))
            if not has_terms(conn, self.schema):  # written by an askdocs with a postings table
                conn.execute(q("DROP TABLE IF EXISTS {s}.postings, {s}.lang_stats"))
                for stmt in LEXICAL:
                    conn.execute(q(stmt))
                self._rebuild_lexical = True
        register_vector(conn)
        if old is not None and not fresh:
            return old
        if old is not None:  # a rebuild with the same model: empty, keep the numbering
            conn.execute(q("DELETE FROM {s}.documents"))
        return self._fresh_manifest(generation=old_gen)

    def _add(
        self, conn: Any, q: Any, plan: Plan, vecs: np.ndarray
    ) -> dict[str, list[tuple[int, list[str]]]]:
        """The plan's documents and chunks, in; (chunk id, terms) of the added chunks by
        language."""
        now = time.time()
        with conn.cursor() as cur:
            cur.executemany(
                q("INSERT INTO {s}.documents VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"),
                [
                    (
                        a.doc.doc_id,
                        _clean(a.path),
                        a.doc.source,
                        _clean(a.doc.title),
                        _clean(a.doc.text),
                        a.doc.lang,
                        a.doc.mtime,
                        a.doc.format,
                        a.doc.encoding,
                        json.dumps(list(a.doc.page_starts)),
                        a.file_hash,
                        now,
                    )
                    for a in plan.additions
                ],
            )
        row = 0
        added: dict[str, list[tuple[int, list[str]]]] = {}
        with conn.cursor().copy(q("COPY {s}.chunks FROM STDIN (FORMAT BINARY)")) as copy:
            copy.set_types(CHUNK_TYPES)
            for a in plan.additions:
                for c, tokens in zip(a.chunks, a.tokens, strict=True):
                    terms = [t for t in tokens if "\x00" not in t]
                    dl = max(len(terms), 1)  # bm25s gives an empty chunk one placeholder token
                    copy.write_row(
                        (
                            c.chunk_id,
                            c.doc_id,
                            c.source,
                            c.start,
                            c.end,
                            _clean(c.text),
                            _clean(c.heading),
                            c.lang,
                            c.hash,
                            " ".join(terms),
                            dl,
                            vecs[row],
                        )
                    )
                    added.setdefault(c.lang, []).append((c.chunk_id, terms))
                    row += 1
        return added

    def _build(self, conn: Any, q: Any, lang: str, chunks: list | None) -> None:  # noqa: ANN401
        """Every BM25 block of a language at once, from `chunks` ((id, tokens) of a write that
        holds all of them) or else from the chunks table; a language with no chunk has none."""
        if chunks is None:
            got = conn.execute(
                q("SELECT chunk_id, tokens FROM {s}.chunks WHERE lang = %s ORDER BY chunk_id"),
                (lang,),
            )
            chunks = [(i, _split(t)) for i, t in got]
        conn.execute(q("DELETE FROM {s}.terms WHERE lang = %s"), (lang,))
        conn.execute(q("DELETE FROM {s}.lang_stats WHERE lang = %s"), (lang,))
        if not chunks:
            return
        self.progress("lexical", 0, 1)
        ids = np.fromiter((i for i, _ in chunks), np.int64, len(chunks))
        dl = np.fromiter((max(len(t), 1) for _, t in chunks), np.int32, len(chunks))
        blocks = pgterms.build(t for _, t in chunks)
        self._blocks(conn, q, lang, blocks)
        self._stats(conn, q, lang, ids, dl)
        self.progress("lexical", 1, 1)

    def _update(self, conn: Any, q: Any, lang: str, removed: list, added: list) -> None:  # noqa: ANN401
        """Rewrite only the blocks of the terms the removed and added chunks hold (read,
        change in numpy, write back); rebuild the language when freed rows outnumber its
        chunks (the row list would mostly be holes)."""
        got = conn.execute(q("SELECT ids, dl FROM {s}.lang_stats WHERE lang = %s"), (lang,))
        row = got.fetchone()
        if row is None:
            self._build(conn, q, lang, None)
            return
        upd = pgterms.Update(np.frombuffer(row[0], "<i8"), np.frombuffer(row[1], "<i4"))
        upd.remove([i for i, _ in removed], [t for _, t in removed])
        for chunk_id, terms in added:
            upd.add(chunk_id, terms)
        ids, dl = upd.arrays()
        if int((ids < 0).sum()) > int((ids >= 0).sum()):
            self._build(conn, q, lang, None)
            return
        touched = sorted(upd.touched)
        old = conn.execute(
            q("SELECT term, rows, tf FROM {s}.terms WHERE lang = %s AND term = ANY(%s)"),
            (lang, touched),
        )
        blocks = upd.blocks({t: (r, f) for t, r, f in old})
        conn.execute(q("DELETE FROM {s}.terms WHERE lang = %s AND term = ANY(%s)"), (lang, touched))
        conn.execute(q("DELETE FROM {s}.lang_stats WHERE lang = %s"), (lang,))
        self._blocks(conn, q, lang, blocks)
        if (ids >= 0).any():
            self._stats(conn, q, lang, ids, dl)

    def _blocks(self, conn: Any, q: Any, lang: str, blocks: list[tuple]) -> None:  # noqa: ANN401
        with conn.cursor().copy(q("COPY {s}.terms FROM STDIN (FORMAT BINARY)")) as copy:
            copy.set_types(pgterms.TERM_TYPES)
            for block in blocks:
                copy.write_row((lang, *block))

    def _stats(self, conn: Any, q: Any, lang: str, ids: np.ndarray, dl: np.ndarray) -> None:  # noqa: ANN401
        conn.execute(
            q("INSERT INTO {s}.lang_stats VALUES (%s, %s, %s, %s, %s)"),
            pgterms.lang_row(lang, ids, dl),
        )

    def _graph(self, conn: Any, q: Any, lang: str, n: int, dim: int) -> None:  # noqa: ANN401
        """Build a language's HNSW graph. pgvector builds it in memory when it fits in
        maintenance_work_mem (far faster than on disk), with parallel workers: the memory is
        sized from the data (a vector and 2·m neighbour links of 16 bytes a chunk, +25%), at
        most HNSW_MEMORY."""
        need = int(n * (dim * 4 + 2 * HNSW_M * 16 + 128) * 1.25) >> 20
        mem = max(64, min(need, HNSW_MEMORY >> 20))
        conn.execute(f"SET LOCAL maintenance_work_mem = '{mem}MB'")
        conn.execute(f"SET LOCAL max_parallel_maintenance_workers = {HNSW_WORKERS}")
        self.progress("graph", 0, 1)
        stmt = HNSW.replace("{m}", str(HNSW_M)).replace("{efc}", str(HNSW_EF_CONSTRUCTION))
        conn.execute(q(stmt.replace("{lang}", lang)))
        self.progress("graph", 1, 1)

    def _retokenize(self, conn: Any, q: Any) -> int:  # noqa: ANN401
        """Redo every chunk's tokens with this tokenizer (the caller rebuilds the blocks);
        vectors stay."""
        rows = conn.execute(q("SELECT chunk_id, heading, text FROM {s}.chunks")).fetchall()
        updates = []
        for i, (chunk_id, heading, text) in enumerate(rows, 1):
            terms = [t for t in tokenize(lexical_text(heading, text)) if "\x00" not in t]
            updates.append((" ".join(terms), max(len(terms), 1), chunk_id))
            if i % 200 == 0 or i == len(rows):
                self.progress("tokenize", i, len(rows))
        with conn.cursor() as cur:
            cur.executemany(
                q("UPDATE {s}.chunks SET tokens = %s, dl = %s WHERE chunk_id = %s"), updates
            )
        return len(rows)


def _split(tokens: str) -> list[str]:
    return tokens.split(" ") if tokens else []
