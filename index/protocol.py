"""What both stores implement: a published generation, read through its store and indexes.

`index.library.Library` reads one `Generation` at a time, whichever store holds the library:
`index.embedded.generation.Generation` (files: SQLite, FAISS, bm25s) or
`index.postgres.generation.PgGeneration` (a pinned snapshot of the database). The type checker
holds both to these protocols (mypy, `make test`), so a method one store grows and the other
lacks is an error before it is a traceback. `DocumentInfo` and `IngestReport` are the records
both return. A library is written through its `Storage`'s writer, which sees the library as a
`Target`; `index.library.Library` picks the storage once, from its config.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.config import LibraryConfig
from index.manifest import Manifest
from index.model.embedder import Embedder
from ingest.records import Chunk, Document

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# The chunk columns both stores select, in `ingest.records.Chunk`'s field order.
CHUNK_COLS = 'chunk_id, doc_id, source, start, "end", text, heading, lang, hash'
# A document's columns, as `document_of` reads them.
DOCUMENT_COLS = "doc_id, source, title, text, lang, mtime, format, encoding, page_starts"


def document_of(row: tuple[Any, ...]) -> Document:
    """A `Document` from a row of DOCUMENT_COLS (its page starts stored as a JSON list)."""
    doc_id, source, title, text, lang, mtime, fmt, encoding, pages = row
    return Document(
        doc_id, source, title, text, lang, mtime, fmt, encoding, tuple(json.loads(pages))
    )


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


class StoreReader(Protocol):
    """Documents and chunks of one generation (`index.embedded.store.Store`,
    `index.postgres.generation.PgStore`)."""

    def documents(self) -> list[DocumentInfo]: ...

    def document(self, doc_id: str) -> Document | None: ...

    def file_hashes(self) -> dict[str, tuple[str, str]]:
        """path key → (content hash, doc_id): what a write plans from."""
        ...

    def chunks(self, doc_id: str) -> list[Chunk]: ...

    def get_chunks(self, ids: Iterable[int]) -> dict[int, Chunk]: ...

    def all_chunks(self) -> list[Chunk]: ...

    def count(self) -> int: ...

    def vectors(self, lang: str, dim: int) -> tuple[np.ndarray, np.ndarray]: ...


class DenseSearch(Protocol):
    """One language's vectors (`index.embedded.vectors.VectorIndex`,
    `index.postgres.search.PgDense`)."""

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]: ...

    def vectors(self, ids: list[int]) -> np.ndarray: ...


class LexicalSearch(Protocol):
    """One language's BM25 (`index.embedded.lexical.LexicalIndex`,
    `index.postgres.search.PgLexical`)."""

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]: ...


class Generation(Protocol):
    """One published generation, opened: what a reader and the next write start from."""

    @property
    def manifest(self) -> Manifest: ...

    @property
    def store(self) -> StoreReader: ...

    @property
    def key(self) -> object:
        """What `index.library.Library.watch` names this generation by."""
        ...

    @property
    def where(self) -> str:
        """Where it lives, for people (a directory, or a database and schema)."""
        ...

    def sizes(self) -> dict[str, int]: ...

    def vectors(self, lang: str) -> DenseSearch | None: ...

    def lexical(self, lang: str) -> LexicalSearch | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    files: int = 0  # files found under the given paths
    failed: int = 0  # files that could not be read or parsed
    retokenized: int = 0  # chunks whose lexical tokens were redone for a newer tokenizer

    @property
    def nothing_read(self) -> bool:
        """No file found, or none could be read (and nothing pruned): the CLI exits non-zero."""
        return (self.files == 0 or self.failed >= self.files) and not self.removed

    def summary(self) -> str:
        redone = f"; {self.retokenized} chunks re-tokenized" if self.retokenized else ""
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed; {self.chunks_added} chunks embedded{redone} "
            f"in {self.seconds:.1f} s"
        )


class Target(Protocol):
    """The library a writer writes, as it sees it (`index.library.Library` is one)."""

    config: LibraryConfig

    @property
    def ingest_embedder(self) -> Embedder: ...

    @property
    def stale_tokens(self) -> bool: ...

    @property
    def stale_vectors(self) -> bool: ...

    def published(self) -> Generation | None:
        """The generation the next one starts from; None for an empty or rebuilt library."""
        ...

    def refresh(self) -> bool:
        """Follow a generation another writer published; True if there was one."""
        ...

    def reopen(self) -> None:
        """Read the generation this writer has just published."""
        ...


class Writes(Protocol):
    """One write to one library (`index.plan.Planner`: each store's writer is one)."""

    lock_wait: float  # seconds to wait for another writer's commit before refusing

    def ingest(
        self,
        paths: Sequence[str | Path],
        prune: bool,
        include: Sequence[str],
        exclude: Sequence[str],
        follow_symlinks: bool = False,
    ) -> IngestReport: ...

    def delete(self, doc_id: str) -> bool: ...

    def reembed(self) -> None: ...


class Storage(Protocol):
    """Where a library lives: `index.embedded.storage.Files` (a directory of generations) or
    `index.postgres.storage.Database` (a schema of a PostgreSQL database). Picked once per
    library (`index.library.storage_of`); everything the two do differently is asked of it."""

    @property
    def where(self) -> str:
        """What holds the library, for a disk-full message."""
        ...

    @property
    def reembeds_in_place(self) -> bool:
        """Whether an ingest re-embeds a library whose model's weights changed (else it
        takes a rebuild)."""
        ...

    @property
    def swept(self) -> bool:
        """Whether a writer may sweep a generation a reader has open (a reader then follows
        the published one and retries)."""
        ...

    def tidy(self) -> None:
        """Clear what a killed writer left, at open."""
        ...

    def open(self) -> Generation | None:
        """The generation published now; None when the library was never written."""
        ...

    def watch(self) -> Callable[[], object]:
        """A cheap reading of which generation is published now (`Generation.key`)."""
        ...

    def built_model(self) -> str | None: ...

    def built_embedder(self) -> str | None: ...

    def writer(self, target: Target, progress: Progress | None) -> Writes: ...
