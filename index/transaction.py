"""A write to the PostgreSQL store: the embedded writer's plan, published by one transaction.

`PgWriter` is `index.writer.Writer` (the same plan from file hashes, the same reports) with
two differences: the lock is a PostgreSQL advisory lock (so writers on several machines
exclude each other), and `_write` changes the tables of index/postgres.py in one transaction
that ends by bumping the generation in `meta`. The passages are embedded before that
transaction opens; a writer killed at any moment leaves the old generation published (the
server rolls an unfinished transaction back).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from index.lexical import TOKENIZER_VERSION
from index.manifest import Manifest, askdocs_version
from index.postgres import connect, failure, read_meta, schema_of
from index.vectors import choose_backend
from index.writer import EMBED_BATCH, Writer, _Plan, lexical_text, passage_text
from ingest.errors import AskdocsError, LibraryError
from ingest.text import LANGS, tokenize

LOCK_WAIT = 2.0  # seconds a writer waits for another one, as the embedded store's WriteLock

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
CREATE TABLE {s}.postings (lang text NOT NULL, term text NOT NULL,
    chunk_id bigint NOT NULL REFERENCES {s}.chunks ON DELETE CASCADE,
    tf int NOT NULL, dl int NOT NULL, PRIMARY KEY (lang, term, chunk_id));
CREATE INDEX ON {s}.postings (chunk_id);
CREATE TABLE {s}.lang_stats (lang text PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL);
"""
# One HNSW graph per language: a partial index that a `WHERE lang = '..'` search uses. Built
# only once a language needs it (above index.vectors.FLAT_MAX chunks, searched exactly below),
# at the end of the write, over rows already in: maintaining a graph row by row during a bulk
# COPY ran at ~200 chunks/s (bench/scale.py, 100k chunks). CREATE INDEX does not wait for
# readers (their snapshots only block DDL that rewrites or drops the table).
HNSW = "CREATE INDEX IF NOT EXISTS chunks_hnsw_{lang} ON {s}.chunks"
HNSW += " USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64) WHERE lang = '{lang}'"
CHUNK_TYPES = ["int8", "text", "text", "int4", "int4", "text", "text", "text", "text", "text"]
CHUNK_TYPES += ["int4", "vector"]


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL; U+FFFD keeps every offset where it was."""
    return text.replace("\x00", "\ufffd")


class PgWriter(Writer):
    """One write to one library in PostgreSQL, under its advisory lock."""

    def __init__(self, library: Any, progress: Any) -> None:  # noqa: ANN401
        super().__init__(library, progress)
        self.url = library.config.store
        self.schema = schema_of(library.config)
        self.conn: Any = None

    @contextmanager
    def _locked(self) -> Any:  # noqa: ANN401
        conn = connect(self.url)
        try:
            # A new model's rebuild drops the schema, which waits for readers' snapshots to
            # end (they hold the tables); fail with a message rather than wait for ever.
            conn.execute("SET lock_timeout = '60s'")
            deadline = time.monotonic() + LOCK_WAIT
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

    def _write(self, plan: _Plan) -> int:
        from psycopg import sql

        base = self.lib.published()
        vecs = self._embed(plan)
        q = lambda text, **kw: sql.SQL(text).format(s=sql.Identifier(self.schema), **kw)  # noqa: E731
        conn = self.conn
        try:
            with conn.transaction():
                manifest = self._prepare(conn, q, base is None)
                removed = set()
                for doc_id in plan.removals:
                    got = conn.execute(
                        q("SELECT DISTINCT lang FROM {s}.chunks WHERE doc_id = %s"), (doc_id,)
                    )
                    removed |= {r[0] for r in got}
                    conn.execute(q("DELETE FROM {s}.documents WHERE doc_id = %s"), (doc_id,))
                self._add(conn, q, plan, vecs)
                retokenized = self._retokenize(conn, q) if plan.retokenize else 0
                conn.execute(q("DELETE FROM {s}.lang_stats"))
                conn.execute(
                    q(
                        "INSERT INTO {s}.lang_stats SELECT lang, count(*), sum(dl)"
                        " FROM {s}.chunks GROUP BY lang"
                    )
                )
                counts = dict(conn.execute(q("SELECT lang, n FROM {s}.lang_stats")).fetchall())
                graphs = [lang for lang, n in counts.items() if self._backend(n) == "hnsw"]
                if graphs:  # the graph is built in memory: give it room (a million 384-d: ~2 GB)
                    conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
                for lang in graphs:
                    conn.execute(q(HNSW.replace("{lang}", lang)))
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

    def _embed(self, plan: _Plan) -> np.ndarray:
        """Every added chunk's vector, before the transaction opens (minutes on a big batch)."""
        pending = [(c, a.doc.title) for a in plan.additions for c in a.chunks]
        if not pending:
            return np.zeros((0, 0), dtype=np.float32)
        self.progress("model", 0, 1)  # as index/writer.py: a first model build is a stage
        embedder = self.lib.ingest_embedder
        self.progress("model", 1, 1)
        out = []
        for i in range(0, len(pending), EMBED_BATCH):
            batch = pending[i : i + EMBED_BATCH]
            out.append(embedder.embed([passage_text(c, t) for c, t in batch], kind="passage"))
            self.progress("embed", i + len(batch), len(pending))
        return np.concatenate(out).astype(np.float32)

    def _prepare(self, conn: Any, q: Any, fresh: bool) -> Manifest:  # noqa: ANN401
        """The schema (created if missing, emptied for a rebuild) and the manifest to update."""
        from pgvector.psycopg import register_vector
        from psycopg import sql

        embedder = self.lib.ingest_embedder if fresh else None
        old = read_meta(conn, self.schema)
        if old is not None and fresh and old.dim != embedder.dim:
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
        register_vector(conn)
        if old is not None and not fresh:
            return old
        if old is not None:  # a rebuild with the same model: empty, keep the numbering
            conn.execute(q("DELETE FROM {s}.documents"))
        return self._fresh_manifest(generation=old_gen)

    def _add(self, conn: Any, q: Any, plan: _Plan, vecs: np.ndarray) -> None:  # noqa: ANN401
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
        postings = []
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
                    postings += [(c.lang, t, c.chunk_id, n, dl) for t, n in Counter(terms).items()]
                    row += 1
        self._postings(conn, q, postings)

    def _postings(self, conn: Any, q: Any, rows: list[tuple]) -> None:  # noqa: ANN401
        with conn.cursor().copy(q("COPY {s}.postings FROM STDIN (FORMAT BINARY)")) as copy:
            copy.set_types(["text", "text", "int8", "int4", "int4"])
            for r in rows:
                copy.write_row(r)

    def _retokenize(self, conn: Any, q: Any) -> int:  # noqa: ANN401
        """Redo every chunk's tokens and postings with this tokenizer; vectors stay."""
        rows = conn.execute(q("SELECT chunk_id, heading, text, lang FROM {s}.chunks")).fetchall()
        conn.execute(q("DELETE FROM {s}.postings"))
        postings, updates = [], []
        for i, (chunk_id, heading, text, lang) in enumerate(rows, 1):
            terms = [t for t in tokenize(lexical_text(heading, text)) if "\x00" not in t]
            dl = max(len(terms), 1)
            updates.append((" ".join(terms), dl, chunk_id))
            postings += [(lang, t, chunk_id, n, dl) for t, n in Counter(terms).items()]
            if i % 200 == 0 or i == len(rows):
                self.progress("tokenize", i, len(rows))
        with conn.cursor() as cur:
            cur.executemany(
                q("UPDATE {s}.chunks SET tokens = %s, dl = %s WHERE chunk_id = %s"), updates
            )
        self._postings(conn, q, postings)
        return len(rows)
