"""The PostgreSQL + pgvector store: one library in one schema of a database (reading side).

Where the embedded store keeps a generation in files (index/embedded/generation.py), this one keeps the
library in tables: documents, chunks (offsets, heading path, language, lexical tokens and a
pgvector embedding, with an HNSW index per language), BM25 term blocks with each language's
chunk list and lengths (index/postgres/terms.py), and one `meta` row: the manifest and the generation
number.
A write (index/postgres/writer.py) changes them in one transaction, so readers see the old
library or the new one, never half.

A reader pins a generation, as an opened embedded generation pins its files: `PgGeneration`
reads through one connection held in a REPEATABLE READ, READ ONLY transaction, so every query
of a search sees one snapshot; `Library.refresh` (or, in `askdocs serve`, a new Library)
moves on. Its search (dense, and BM25 over term blocks cached per generation) is
index/postgres/search.py. psycopg and pgvector are imported only in these modules and
index/postgres/writer.py, only for a postgresql:// store. Over 300 lines because connecting (with
its error messages), the schema's versions, the pinned snapshot and its per-generation caches
all belong to reading one library and share its connection.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from index.config import LibraryConfig
from index.embedded.store import _CHUNK_COLS, DocumentInfo
from index.manifest import Manifest
from ingest.errors import InputError, LibraryError
from ingest.records import Chunk, Document

if TYPE_CHECKING:
    from index.postgres.search import PgDense, PgLexical

# Candidates an HNSW scan keeps (pgvector's hnsw.ef_search, default 40): a scan returns at
# most this many rows, and recall grows with it. pgvector's maximum, 1000: recall@10 of the
# bench's question vectors kept rising up to it (1M chunks: 0.45 at 512, 0.59 at 1000 with
# m 16; docs/results.md) while a search stayed within the latency budget. A language of at
# most index.embedded.vectors.FLAT_MAX chunks is searched exactly, as the embedded store's flat index
# does: on the bundled library the HNSW graph missed some of the top 50 of the retriever's
# calibrated query vectors.
EF_SEARCH = 1000
# Bytes of scored BM25 term blocks a reader keeps per generation (rows and float32 scores,
# 8 bytes a posting): a common term of a million-chunk library is a few MB.
TERM_CACHE = 256 << 20
HINT_URL = (
    "check --store / ASKDOCS_STORE (postgresql://USER:PASSWORD@HOST:PORT/DATABASE) and that "
    "the server runs and has pgvector; or leave both unset for the embedded store"
)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def schema_of(config: LibraryConfig) -> str:
    """The schema holding the library: one per library name, so one database serves many."""
    schema = f"askdocs_{config.name}"
    if len(schema.encode()) > 63:  # PostgreSQL's identifier limit
        raise InputError(
            f"The library name {config.name!r} is too long for a PostgreSQL store.",
            hint="use a name of at most 55 bytes with --store",
        )
    return schema


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection to `url`; every failure becomes a LibraryError with a hint."""
    try:
        import psycopg
    except ImportError as exc:
        raise LibraryError(
            "The PostgreSQL store needs psycopg and pgvector, which are not installed.",
            hint="pip install 'askdocs[postgres]' (psycopg[binary] and pgvector)",
        ) from exc
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except (psycopg.Error, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LibraryError(
            f"Cannot connect to the PostgreSQL store {redact(url)} ({first}).", hint=HINT_URL
        ) from exc
    return conn


def failure(url: str, exc: Exception) -> LibraryError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return LibraryError(f"The PostgreSQL store {redact(url)} failed: {first}", hint=HINT_URL)


def _table(conn: Any, schema: str, table: str) -> bool:  # noqa: ANN401
    from psycopg import sql

    # quoted by psycopg: a library named `q"x` is the schema "askdocs_q""x", not broken SQL
    name = sql.Identifier(schema, table).as_string(conn)
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None


def exists(conn: Any, schema: str) -> bool:  # noqa: ANN401
    return _table(conn, schema, "meta")


def has_terms(conn: Any, schema: str) -> bool:  # noqa: ANN401
    """Whether the library has BM25 term blocks (askdocs before them kept a postings table)."""
    return _table(conn, schema, "terms")


def read_meta(conn: Any, schema: str) -> Manifest | None:
    """The manifest of the published generation; None when the library was never written."""
    if not exists(conn, schema):
        return None
    from psycopg import sql

    row = conn.execute(sql.SQL("SELECT manifest FROM {}.meta").format(sql.Identifier(schema)))
    found = row.fetchone()
    if found is None:
        return None
    data = found[0] if isinstance(found[0], dict) else json.loads(found[0])
    known = {f.name for f in fields(Manifest)}
    return Manifest(**{k: v for k, v in data.items() if k in known})


class Watch:
    """What names the generation published now: one row read on an autocommit connection."""

    def __init__(self, config: LibraryConfig) -> None:
        self.url, self.schema = config.store, schema_of(config)
        self._conn: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> int | None:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            try:
                m = read_meta(self._conn, self.schema)
            except Exception as exc:  # noqa: BLE001 - a dropped connection: say which store
                self._conn.close()
                raise failure(self.url, exc) from exc
        return m.generation if m else None


def built_model(config: LibraryConfig) -> str | None:
    conn = connect(config.store)
    try:
        m = read_meta(conn, schema_of(config))
    finally:
        conn.close()
    return m.model if m else None


class PgGeneration:
    """One published generation, read through a pinned snapshot (see the module's doc)."""

    def __init__(self, config: LibraryConfig, conn: Any, manifest: Manifest) -> None:
        from psycopg import sql

        self.url, self.schema = config.store, schema_of(config)
        self.manifest = manifest
        self.key = manifest.generation  # what Library compares with Watch()
        self.where = f"{redact(config.store)} schema {self.schema}"
        self.store = PgStore(self)
        self._conn = conn
        self._lock = threading.Lock()
        self._ef = EF_SEARCH
        self.ef_search = EF_SEARCH  # hnsw.ef_search of a search (at least its k)
        # BM25 of this generation (index/postgres/terms.py): each language's chunk list, and scored
        # term blocks, least recently used dropped past TERM_CACHE bytes. A generation is one
        # snapshot, so what is cached here never changes; the next generation is another
        # PgGeneration with an empty cache.
        self._langs: dict[str, tuple[np.ndarray, np.ndarray, int, float]] = {}
        self._blocks: OrderedDict[tuple[str, str], tuple | None] = OrderedDict()
        self._cached = 0
        self._flat: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_lock = threading.Lock()
        self.lexical_ready = True
        self._q = lambda text: sql.SQL(text).format(s=sql.Identifier(self.schema))

    @classmethod
    def open(cls, config: LibraryConfig) -> PgGeneration | None:
        """The generation published now, or None when the library was never written."""
        from psycopg import IsolationLevel

        conn = connect(config.store)
        try:
            conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
            # the snapshot is an open transaction on purpose: a server's timeout must not end it
            conn.execute("SET idle_in_transaction_session_timeout = 0")
            conn.autocommit = False
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            manifest = read_meta(conn, schema_of(config))  # the snapshot starts here
            if manifest is None:
                conn.close()
                return None
            lexical_ready = has_terms(conn, schema_of(config))
            if not lexical_ready:  # the next ingest re-tokenizes and builds the term blocks
                manifest = replace(manifest, tokenizer_version=0)
            from pgvector.psycopg import register_vector

            register_vector(conn)
        except LibraryError:
            conn.close()
            raise
        except Exception as exc:  # noqa: BLE001 - psycopg's errors, with the store named
            conn.close()
            raise failure(config.store, exc) from exc
        gen = cls(config, conn, manifest)
        gen.lexical_ready = lexical_ready
        return gen

    def rows(self, query: str, params: Iterable = (), **parts: Any) -> list[tuple]:
        from psycopg import sql

        stmt = (
            self._q(query)
            if not parts
            else sql.SQL(query).format(s=sql.Identifier(self.schema), **parts)
        )
        with self._lock:
            try:
                # binary results: a vector comes as 384 floats, not as text to parse
                return self._conn.execute(stmt, tuple(params), binary=True).fetchall()
            except Exception as exc:  # noqa: BLE001 - the snapshot is aborted: start anew
                if not self._conn.closed:
                    self._conn.rollback()
                raise failure(self.url, exc) from exc

    def lang_arrays(self, lang: str) -> tuple[np.ndarray, np.ndarray, int, float]:
        """(chunk id per row, length per row, live chunks, average length) of a language."""
        if not self.lexical_ready:
            raise LibraryError(
                f"The library in {self.where} was written by an older askdocs: its BM25 index"
                " has another layout.",
                hint="run askdocs ingest --store URL --library NAME once (no re-embedding)",
            )
        with self._cache_lock:
            if lang not in self._langs:
                got = self.rows(
                    "SELECT n, total, ids, dl FROM {s}.lang_stats WHERE lang = %s", (lang,)
                )
                if got:
                    n, total, ids, dl = got[0]
                    arrays = (np.frombuffer(ids, "<i8"), np.frombuffer(dl, "<i4"), n, total / n)
                else:
                    arrays = (np.zeros(0, np.int64), np.zeros(0, np.int32), 0, 1.0)
                self._langs[lang] = arrays
            return self._langs[lang]

    def flat(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids ascending, vectors) of a language searched exactly, loaded once per generation
        (at most index.embedded.vectors.FLAT_MAX chunks: 77 MB at dim 384)."""
        with self._cache_lock:
            if lang not in self._flat:
                self._flat[lang] = self.store.vectors(lang, self.manifest.dim)
            return self._flat[lang]

    def term_blocks(self, lang: str, terms: list[str]) -> dict[str, tuple | None]:
        """term → (rows, float32 scores) of one language, None for a term it lacks. Terms
        not cached are fetched for every language of the library in one statement (the next
        language's search of the same question then finds them here)."""
        from index.postgres import terms as pgterms

        langs = sorted(self.manifest.langs)
        for code in langs:
            self.lang_arrays(code)
        want = list(dict.fromkeys(terms))
        with self._cache_lock:
            missing = [t for t in want if (lang, t) not in self._blocks]
        found = {}
        if missing:
            got = self.rows(
                "SELECT lang, term, rows, tf FROM {s}.terms WHERE term = ANY(%s)", (missing,)
            )
            found = {(code, t): pgterms.decode(r, f) for code, t, r, f in got}
        with self._cache_lock:
            for code in langs:
                ids, dl, n, avgdl = self._langs[code]
                for t in missing:
                    if (code, t) in self._blocks:  # another thread was quicker
                        continue
                    block = found.get((code, t))
                    if block is not None:
                        block = (block[0], pgterms.scores(*block, n, dl, avgdl))
                        self._cached += block[0].nbytes + block[1].nbytes
                    self._blocks[(code, t)] = block
            out = {}
            for t in want:
                self._blocks.move_to_end((lang, t))
                out[t] = self._blocks[(lang, t)]
            while self._cached > TERM_CACHE and len(self._blocks) > len(want):
                _, old = self._blocks.popitem(last=False)  # this search's own are the newest
                if old is not None:
                    self._cached -= old[0].nbytes + old[1].nbytes
        return out

    def vectors(self, lang: str) -> PgDense | None:
        from index.postgres.search import PgDense

        return PgDense(self, lang) if lang in self.manifest.langs else None

    def lexical(self, lang: str) -> PgLexical | None:
        from index.postgres.search import PgLexical

        return PgLexical(self, lang) if lang in self.manifest.langs else None

    def set_ef(self, k: int) -> None:
        ef = max(self.ef_search, min(k, 1000))  # pgvector accepts 1..1000
        if ef != self._ef:
            self.rows(f"SELECT set_config('hnsw.ef_search', '{ef}', false)")
            self._ef = ef

    def sizes(self) -> dict[str, int]:
        """Bytes of the tables and indexes: documents and chunks, vectors, lexical."""
        q = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN"
        q += " pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname"
        total = self.rows(q + " IN ('documents', 'chunks')", (self.schema,))[0][0]
        vectors = self.rows(q + " LIKE 'chunks_hnsw_%%'", (self.schema,))[0][0]
        vectors += self.rows("SELECT coalesce(sum(pg_column_size(embedding)), 0) FROM {s}.chunks")[
            0
        ][0]
        lexical = self.rows(q + " IN ('terms', 'lang_stats')", (self.schema,))[0][0]
        return {"store": int(total - vectors), "vectors": int(vectors), "lexical": int(lexical)}

    def close(self) -> None:
        self._conn.close()


class PgStore:
    """The reading methods of index.embedded.store.Store, over the pinned snapshot."""

    def __init__(self, gen: PgGeneration) -> None:
        self.gen = gen

    def documents(self) -> list[DocumentInfo]:
        rows = self.gen.rows(
            "SELECT d.doc_id, d.path, d.source, d.title, d.lang, d.format, d.mtime, d.file_hash,"
            " d.ingested_at, length(d.text), (SELECT count(*) FROM {s}.chunks c"
            " WHERE c.doc_id = d.doc_id), d.encoding FROM {s}.documents d"
            ' ORDER BY d.source COLLATE "C"'
        )
        return [DocumentInfo(*row) for row in rows]

    def document(self, doc_id: str) -> Document | None:
        rows = self.gen.rows(
            "SELECT doc_id, source, title, text, lang, mtime, format, encoding, page_starts"
            " FROM {s}.documents WHERE doc_id = %s",
            (doc_id,),
        )
        if not rows:
            return None
        *head, pages = rows[0]
        return Document(*head, page_starts=tuple(json.loads(pages)))

    def file_hashes(self) -> dict[str, tuple[str, str]]:
        rows = self.gen.rows("SELECT path, file_hash, doc_id FROM {s}.documents")
        return {path: (h, doc_id) for path, h, doc_id in rows}

    def chunks(self, doc_id: str) -> list[Chunk]:
        sql = f"SELECT {_CHUNK_COLS} FROM {{s}}.chunks WHERE doc_id = %s ORDER BY start, chunk_id"
        return [Chunk(*row) for row in self.gen.rows(sql, (doc_id,))]

    def get_chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        sql = f"SELECT {_CHUNK_COLS} FROM {{s}}.chunks WHERE chunk_id = ANY(%s)"
        return {row[0]: Chunk(*row) for row in self.gen.rows(sql, ([int(i) for i in ids],))}

    def count(self) -> int:
        return self.gen.rows("SELECT count(*) FROM {s}.documents")[0][0]

    def vectors(self, lang: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of one language by chunk id, as `index.embedded.store.Store.vectors`."""
        rows = self.gen.rows(
            "SELECT chunk_id, embedding FROM {s}.chunks WHERE lang = %s ORDER BY chunk_id", (lang,)
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.stack([r[1].to_numpy() for r in rows]) if rows else np.zeros((0, dim))
        return ids, vecs.astype(np.float32)
