"""SQLite store of one library generation: documents, chunks (+ cached lexical tokens), vectors.

The store is the source of truth: the FAISS and bm25s files of a generation are rebuilt from
its vectors and tokens, so a damaged index can be rebuilt without re-embedding. A store file
is written only while its generation is private to one writer; once published it is opened
read-only and immutable, which lets readers skip SQLite's locking entirely.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.disk import disk_full, is_disk_full
from ingest.errors import LibraryError
from ingest.records import Chunk, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,      -- absolute path: identity for change detection and prune
    source TEXT NOT NULL,           -- as shown to people
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    lang TEXT NOT NULL,
    mtime REAL NOT NULL,
    format TEXT NOT NULL,
    encoding TEXT NOT NULL,
    page_starts TEXT NOT NULL,      -- JSON list
    file_hash TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    heading TEXT NOT NULL,
    lang TEXT NOT NULL,
    hash TEXT NOT NULL,
    tokens TEXT NOT NULL,           -- lexical tokens joined by spaces (tokens hold no spaces)
    vector BLOB                     -- float32, L2-normalised; NULL until embedded
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, start);
CREATE INDEX IF NOT EXISTS chunks_lang ON chunks(lang);
"""

_CHUNK_COLS = 'chunk_id, doc_id, source, start, "end", text, heading, lang, hash'


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document without its text: what listings and change detection need."""

    doc_id: str
    path: str
    source: str
    title: str
    lang: str
    format: str
    mtime: float
    file_hash: str
    ingested_at: float
    chars: int
    chunks: int
    encoding: str = ""  # how the text was read; which pages were OCR'd (ingest.ocr)


def _chunk(row: tuple) -> Chunk:
    return Chunk(*row)


class Store:
    """One generation's `store.sqlite`. Writable only while the generation is private."""

    def __init__(self, path: Path, writable: bool = False) -> None:
        self.path = path
        self.writable = writable
        # Streamlit serves sessions from several threads; one connection guarded by a lock.
        self._lock = threading.Lock()
        try:
            if writable:
                self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                # Crash safety comes from generations, not from SQLite's journal.
                self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.executescript(SCHEMA)
            else:
                uri = f"file:{path}?mode=ro&immutable=1"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("SELECT count(*) FROM documents").fetchone()
        except sqlite3.DatabaseError as exc:
            if writable and is_disk_full(exc):
                raise disk_full(path.parent) from None
            raise LibraryError(
                f"The library store {path} cannot be read ({exc}).",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            ) from exc

    @classmethod
    def copy(cls, src: Path, dst: Path) -> Store:
        """A writable copy of `src` at `dst` (SQLite backup API: consistent, page by page)."""
        source = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):  # the copy's disk, not the intact published store
                raise disk_full(dst.parent) from None
            raise LibraryError(
                f"The library store {src} cannot be read ({exc}).",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            ) from exc
        finally:
            target.close()
            source.close()
        return cls(dst, writable=True)

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # ---- reading -------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        rows = self._rows(
            "SELECT d.doc_id, d.path, d.source, d.title, d.lang, d.format, d.mtime, d.file_hash,"
            " d.ingested_at, length(d.text), (SELECT count(*) FROM chunks c"
            " WHERE c.doc_id = d.doc_id), d.encoding FROM documents d ORDER BY d.source"
        )
        return [DocumentInfo(*row) for row in rows]

    def document(self, doc_id: str) -> Document | None:
        rows = self._rows(
            "SELECT doc_id, source, title, text, lang, mtime, format, encoding, page_starts"
            " FROM documents WHERE doc_id = ?",
            (doc_id,),
        )
        if not rows:
            return None
        *head, pages = rows[0]
        return Document(*head, page_starts=tuple(json.loads(pages)))

    def file_hashes(self) -> dict[str, tuple[str, str]]:
        """Absolute path → (file hash, doc_id) of every stored document."""
        rows = self._rows("SELECT path, file_hash, doc_id FROM documents")
        return {path: (h, doc_id) for path, h, doc_id in rows}

    def chunks(self, doc_id: str) -> list[Chunk]:
        sql = f"SELECT {_CHUNK_COLS} FROM chunks WHERE doc_id = ? ORDER BY start, chunk_id"
        return [_chunk(row) for row in self._rows(sql, (doc_id,))]

    def get_chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        ids = [int(i) for i in ids]
        out: dict[int, Chunk] = {}
        for i in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT {_CHUNK_COLS} FROM chunks WHERE chunk_id IN ({marks})"
            out.update((row[0], _chunk(row)) for row in self._rows(sql, part))
        return out

    def lang_counts(self) -> dict[str, int]:
        """Chunks per index language (zh, en, other)."""
        sql = "SELECT lang AS l, count(*) FROM chunks GROUP BY l ORDER BY l"
        return dict(self._rows(sql))

    def chunk_langs(self, doc_id: str) -> set[str]:
        sql = "SELECT DISTINCT lang FROM chunks WHERE doc_id = ?"
        return {r[0] for r in self._rows(sql, (doc_id,))}

    def count(self) -> int:
        return self._rows("SELECT count(*) FROM documents")[0][0]

    def vectors(self, lang: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n], vectors float32 [n, dim]) of index language `lang`, by chunk id."""
        rows = self._rows(
            "SELECT chunk_id, vector FROM chunks WHERE lang = ?"
            " AND vector IS NOT NULL ORDER BY chunk_id",
            (lang,),
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
        return ids, vecs

    def tokens(self, lang: str) -> Iterator[tuple[int, list[str]]]:
        rows = self._rows(
            "SELECT chunk_id, tokens FROM chunks WHERE lang = ? ORDER BY chunk_id",
            (lang,),
        )
        for chunk_id, tokens in rows:
            # interned: a vocabulary of ~10^5 words, not 10^7-10^8 copies of them (3+ GB at
            # a million chunks, bench/scale.py)
            yield chunk_id, list(map(sys.intern, tokens.split()))

    def all_chunks(self) -> list[Chunk]:
        return [
            _chunk(r) for r in self._rows(f"SELECT {_CHUNK_COLS} FROM chunks ORDER BY chunk_id")
        ]

    def passage_sources(self) -> list[tuple[int, str, str, str]]:
        """(chunk_id, heading, text, document title) of every chunk: what its vector is
        embedded from (`index.embedded.writer.passage_text`)."""
        return self._rows(
            "SELECT c.chunk_id, c.heading, c.text, d.title FROM chunks c "
            "JOIN documents d ON d.doc_id = c.doc_id ORDER BY c.chunk_id"
        )

    def lexical_sources(self) -> list[tuple[int, str, str]]:
        """(chunk_id, heading, text) of every chunk: what its lexical tokens are made from."""
        return self._rows("SELECT chunk_id, heading, text FROM chunks ORDER BY chunk_id")

    # ---- writing (private generations only) ----------------------------------------------

    def _write(self, sql: str, params: Iterable = ()) -> None:
        assert self.writable, "published generations are immutable"
        with self._lock:
            self._db.execute(sql, tuple(params))

    def _write_many(self, sql: str, rows: Iterable[tuple]) -> None:
        assert self.writable, "published generations are immutable"
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")

    def delete_document(self, doc_id: str) -> None:
        self._write("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self._write("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def add_document(
        self,
        doc: Document,
        path: str,
        file_hash: str,
        ingested_at: float,
        chunks: list[Chunk],
        tokens: list[list[str]],
    ) -> None:
        self._write(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                doc.doc_id,
                path,
                doc.source,
                doc.title,
                doc.text,
                doc.lang,
                doc.mtime,
                doc.format,
                doc.encoding,
                json.dumps(list(doc.page_starts)),
                file_hash,
                ingested_at,
            ),
        )
        self._write_many(
            f"INSERT OR REPLACE INTO chunks ({_CHUNK_COLS}, tokens) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    c.chunk_id,
                    c.doc_id,
                    c.source,
                    c.start,
                    c.end,
                    c.text,
                    c.heading,
                    c.lang,
                    c.hash,
                    " ".join(t),
                )
                for c, t in zip(chunks, tokens, strict=True)
            ),
        )

    def set_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._write_many(
            "UPDATE chunks SET vector = ? WHERE chunk_id = ?",
            ((vectors[i].tobytes(), int(cid)) for i, cid in enumerate(ids)),
        )

    def set_tokens(self, rows: Iterable[tuple[int, list[str]]]) -> None:
        self._write_many(
            "UPDATE chunks SET tokens = ? WHERE chunk_id = ?",
            ((" ".join(tokens), int(cid)) for cid, tokens in rows),
        )
