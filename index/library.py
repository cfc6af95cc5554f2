"""A library on disk: open, read, search primitives, and atomic incremental writes.

Where the library lives is picked once, by `storage_of`: a directory of generations
(`index.embedded.storage.Files`: CURRENT names the published one, FAISS and bm25s indexes load
lazily on first use) or a PostgreSQL schema (`index.postgres.storage.Database`: a generation
is a pinned snapshot of the database). Both are read through the `index.protocol.Generation`
protocol, and written by their writer (`index.plan.Planner`'s plan, published by each store).
Nothing heavy is imported until needed: an unchanged re-ingest hashes files, compares, and
returns.

Why one module of ~450 lines: it is the one library class (reading, following the published
generation across processes, the model check, the search primitives); what a write does lives
in index/plan.py and the stores' writers.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from index.config import DEFAULT_MODEL, LibraryConfig
from index.manifest import Manifest
from index.model.embedder import Embedder
from index.plan import TOKENIZER_VERSION
from index.protocol import (
    DocumentInfo,
    Generation,
    IngestReport,
    Progress,
    Storage,
    StoreReader,
    Writes,
)
from ingest.errors import LibraryError, ModelMismatchError
from ingest.records import Chunk, Document
from ingest.text import index_lang, tokenize

T = TypeVar("T")
log = logging.getLogger(f"askdocs.{__name__}")


def storage_of(config: LibraryConfig) -> Storage:
    """Where the library of `config` lives: the one place the store is chosen."""
    if config.postgres:
        from index.postgres.storage import Database

        return Database(config)
    from index.embedded.storage import Files

    return Files(config)


@dataclass(frozen=True)
class LibraryStats:
    name: str
    path: str
    generation: int
    documents: int
    chunks: dict[str, int]  # per language
    model: str
    embedder: str
    dim: int
    backends: dict[str, str]  # per language: "flat" | "pq" | "sq8" | "hnsw"
    bytes: dict[str, int]  # "store", "vectors", "lexical", "total"
    updated_at: float
    askdocs_version: str


class Library:
    """One named library. Use `Library.open` (read) or `Library.open(..., create=True)` (ingest)."""

    def __init__(self, config: LibraryConfig, embedder: Embedder | None, fresh: bool) -> None:
        self.config = config
        self.path = config.path
        self.storage = storage_of(config)
        self._embedder = embedder
        self._given = embedder is not None
        self._ingest_embedder: Embedder | None = None
        self._fresh = fresh  # ignore what is on disk: the next write rebuilds from scratch
        self._gen: Generation | None = None
        self._lock = threading.Lock()
        self._watch: Callable[[], object] | None = None

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        config: LibraryConfig,
        embedder: Embedder | None = None,
        *,
        create: bool = False,
        fresh: bool = False,
    ) -> Library:
        """Open the library of `config`. Never repairs or rebuilds anything by itself.

        create: a missing library is fine (ingest creates it). fresh: do not even read what
        is there; the next write replaces it wholesale (`askdocs ingest --rebuild`).
        """
        lib = cls(config, embedder, fresh)
        if fresh:
            return lib
        lib.storage.tidy()  # what a killed writer left, unless one is writing now
        lib._load()
        if lib._gen is None and not create:
            raise LibraryError(
                f"The library {config.name!r} does not exist yet ({config.path}).",
                hint=f"run askdocs ingest PATH --library {config.name} to create it",
            )
        lib._check_model()
        log.debug(
            "library %r: %s, generation %s (%s)",
            config.name,
            type(lib.storage).__name__,
            lib.generation,
            lib._gen.where if lib._gen else "empty",
        )
        return lib

    @staticmethod
    def built_embedder(config: LibraryConfig) -> str | None:
        """The embedder whose vectors the library holds; None if never written."""
        return storage_of(config).built_embedder()

    @staticmethod
    def built_model(config: LibraryConfig) -> str | None:
        """The model the library was built with (from its manifest); None if never written."""
        return storage_of(config).built_model()

    @staticmethod
    def watch(config: LibraryConfig) -> Callable[[], object]:
        """A cheap reading of which generation is published now (one small file, or one row
        of the database), to compare with `Library.key`."""
        return storage_of(config).watch()

    @property
    def key(self) -> object:
        """What names the generation this library reads (None when empty)."""
        gen = self._gen
        return None if gen is None else gen.key

    def _now(self) -> object:
        if self._watch is None:
            self._watch = self.storage.watch()
        return self._watch()

    def _load(self) -> None:
        """(Re)open the published generation."""
        self._set_gen(self.storage.open())

    def _set_gen(self, gen: Generation | None) -> None:
        # The old generation is not closed here: another thread may be reading it this very
        # moment (the app serves sessions from threads). Its store closes when the last
        # reference goes; its files, even if swept, stay readable through the open handle.
        with self._lock:
            self._gen = gen

    def refresh(self) -> bool:
        """Follow CURRENT if another process published a newer generation; True if it did."""
        if self._fresh:
            return False
        if self._gen is not None and self._now() == self._gen.key:
            return False
        self._load()
        return True

    def close(self) -> None:
        with self._lock:
            old, self._gen = self._gen, None
        if old is not None:
            old.close()

    def _check_model(self, embedder: Embedder | None = None, purpose: str = "query") -> None:
        m = self.manifest
        if m is None:
            return
        embedder = embedder or self._embedder
        if embedder is not None:
            got, want = embedder.name, m.embedder
            same = got == want and embedder.dim == m.dim
        else:
            got, want = self.config.model, m.model
            same = got == want
        if same:
            return
        name = self.config.name
        if self.stale_vectors:
            # The same model name with new weights (a new shipped adapter, or askdocs tune):
            # an ingest re-embeds every chunk; until then the old vectors cannot be searched.
            in_place = self.storage.reembeds_in_place
            if purpose == "ingest" and in_place:
                return
            how = "askdocs ingest" if in_place else "askdocs ingest --rebuild"
            raise ModelMismatchError(
                f"The library {name!r} was embedded by {want!r}; this askdocs uses {got!r}.",
                hint=f"re-embed it once: {how} PATH... --library {name} "
                f"({sum(self.langs().values())} chunks)",
            )
        raise ModelMismatchError(
            f"The library {name!r} was built with the model {want!r}, not {got!r}; "
            "vectors of two models cannot be mixed.",
            hint=(
                f"use the library's model (askdocs ... --library {name} --model {m.model}), "
                f"or rebuild it with the new one (askdocs ingest --rebuild --library {name} "
                f"--model {got} PATH..., or rm -r {self.path} and ingest again), "
                "or pick another --library NAME"
            ),
        )

    # ---- properties ----------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest | None:
        return None if self._fresh or self._gen is None else self._gen.manifest

    @property
    def stale_vectors(self) -> bool:
        """Whether the library's vectors come from other weights of its own model (a library
        embedded before the shipped adapter, or before `askdocs tune`): the next ingest
        re-embeds every chunk."""
        from index.model.embedder import expected_name

        m = self.manifest
        if m is None or m.model != self.config.model:
            return False
        # only vectors of some version of the default model are re-embedded by themselves
        if m.embedder != DEFAULT_MODEL and not m.embedder.startswith(f"{DEFAULT_MODEL}+"):
            return False
        want = expected_name(self.config)
        return want is not None and m.embedder != want

    @property
    def stale_tokens(self) -> bool:
        """Whether the lexical index was built by an older tokenizer; any ingest (even of no
        files) re-tokenizes it in seconds, without re-embedding."""
        m = self.manifest
        return m is not None and m.tokenizer_version != TOKENIZER_VERSION

    @property
    def generation(self) -> int:
        m = self.manifest
        return m.generation if m else 0

    @property
    def embedder(self) -> Embedder:
        """The model for questions, loaded on first use: the ONNX Runtime one for the default
        model (no torch import), else the torch one; an ingest's model once it is loaded."""
        if self._embedder is None:
            # an ingest's model serves questions too, unless it is the int8 passage graph:
            # questions stay on fp32 (index/model/passages.py)
            ingest = self._ingest_embedder
            if ingest is not None and getattr(ingest, "precision", "") != "int8":
                return ingest
            self._embedder = self._load_embedder("query")
        return self._embedder

    def published(self) -> Generation | None:
        """The generation reads and the next write start from; None when the library is
        empty or being rebuilt from scratch (`fresh`)."""
        return None if self._fresh else self._gen

    def reopen(self) -> None:
        """Read the generation a write has just published (what is on disk is current now)."""
        self._fresh = False
        self._load()

    @property
    def ingest_embedder(self) -> Embedder:
        """The model for passages in bulk (the torch one: faster on large batches); the
        embedder given to `open` serves both."""
        if self._embedder is not None and self._given:
            return self._embedder
        if self._ingest_embedder is None:
            self._ingest_embedder = self._load_embedder("ingest")
        return self._ingest_embedder

    def _load_embedder(self, purpose: Literal["query", "ingest"]) -> Embedder:
        from index.model.embedder import load_embedder

        # stdout may be JSON (askdocs search --json): a one-time model build talks on stderr
        started = time.perf_counter()
        loaded = load_embedder(
            self.config, lambda msg: print(msg, file=sys.stderr), purpose=purpose
        )
        log.debug(
            "%s model %s loaded in %.2f s", purpose, loaded.name, time.perf_counter() - started
        )
        self._check_model(loaded, purpose)
        return loaded

    def _store(self) -> StoreReader | None:
        gen = self.published()
        return gen.store if gen else None

    # ---- reading -------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        store = self._store()
        return store.documents() if store else []

    def document(self, doc_id: str) -> Document | None:
        store = self._store()
        return store.document(doc_id) if store else None

    def chunks(self, doc_id: str) -> list[Chunk]:
        store = self._store()
        return store.chunks(doc_id) if store else []

    def get_chunks(self, ids: Iterable[int]) -> list[Chunk]:
        """Chunks in the order of `ids`; ids no longer in the library are left out."""
        ids = list(ids)
        store = self._store()
        found = store.get_chunks(ids) if store else {}
        return [found[i] for i in ids if i in found]

    def langs(self) -> dict[str, int]:
        """Chunk counts of the languages present, e.g. {"en": 1800, "zh": 230}."""
        m = self.manifest
        return {lang: info["chunks"] for lang, info in sorted(m.langs.items())} if m else {}

    def _langs_for(self, lang: str | None) -> list[str]:
        present = self.langs()
        if lang is None:
            return list(present)
        return [index_lang(lang)] if index_lang(lang) in present else []

    def _with_gen(self, fn: Callable[[Generation, str], T], lang: str) -> T | None:
        """Run a lazy index load of `lang`; if a writer swept our generation meanwhile, follow it.

        A sweep may be under way (the directory half gone), so what decides is whether CURRENT
        still names the generation: if it does, the failure is damage and is raised."""
        for attempt in range(3):
            gen = self._gen
            if gen is None or self._fresh:
                return None
            try:
                return fn(gen, lang)
            except LibraryError:
                if attempt == 2 or not self.storage.swept or self._now() == gen.key:
                    raise
                if self._gen is gen:  # another thread may have moved on already
                    self.refresh()
        return None

    def dense(self, qvec: np.ndarray, k: int, lang: str | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk_id, cosine) for a query vector; lang None merges all languages by score."""
        hits: list[tuple[int, float]] = []
        for code in self._langs_for(lang):
            index = self._with_gen(lambda g, c: g.vectors(c), code)
            if index is not None:
                hits += index.search(np.asarray(qvec, dtype=np.float32), k)[0]
        return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]

    def vectors(self, ids: list[int], lang: str) -> np.ndarray:
        """Stored vectors of chunks of one language, rows in the order of `ids`."""
        codes = self._langs_for(lang)
        index = self._with_gen(lambda g, c: g.vectors(c), codes[0]) if codes else None
        if index is None or not ids:
            return np.zeros((0, self.manifest.dim if self.manifest else 0), dtype=np.float32)
        return index.vectors(ids)

    def lexical(self, query: str, k: int, lang: str | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk_id, BM25 score) with per-language IDF; lang None merges by score."""
        tokens = tokenize(query)
        hits: list[tuple[int, float]] = []
        for code in self._langs_for(lang):
            index = self._with_gen(lambda g, c: g.lexical(c), code)
            if index is not None:
                hits += index.search(tokens, k)
        return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]

    def passage_rows(self) -> list[tuple[str, str, str, str]]:
        """(doc_id, lang, heading path, text) of every chunk (`askdocs tune` learns from them)."""
        store = self._store()
        if store is None:
            return []
        return [(c.doc_id, c.lang, c.heading, c.text) for c in store.all_chunks()]

    def reembed(self, embedder: Embedder, progress: Progress | None = None) -> None:
        """Embed every chunk again with `embedder` (weights of this library's model that
        changed: `askdocs tune`) and publish that as the next generation."""
        if not self.storage.reembeds_in_place:
            raise LibraryError(
                "re-embedding a PostgreSQL library in place is not supported",
                hint="askdocs ingest --rebuild PATH...",
            )
        self._ingest_embedder = embedder
        self._writer(progress).reembed()

    def stats(self) -> LibraryStats:
        m = self.manifest
        if m is None or self._gen is None:
            raise LibraryError(
                f"The library {self.config.name!r} is empty.",
                hint=f"run askdocs ingest PATH --library {self.config.name}",
            )
        sizes = self._gen.sizes()
        sizes["total"] = sum(sizes.values())
        return LibraryStats(
            name=self.config.name,
            path=self._gen.where,
            generation=m.generation,
            documents=m.documents,
            chunks=self.langs(),
            model=m.model,
            embedder=m.embedder,
            dim=m.dim,
            backends={lang: info["backend"] for lang, info in sorted(m.langs.items())},
            bytes=sizes,
            updated_at=m.updated_at,
            askdocs_version=m.askdocs_version,
        )

    # ---- writing -------------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[str | Path],
        prune: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Progress | None = None,
        follow_symlinks: bool = False,
        wait: float | None = None,
    ) -> IngestReport:
        """Add new files, re-embed changed ones, skip unchanged ones unparsed; prune if asked.

        prune makes the documents under `paths` mirror what is taken from them now: files
        gone, excluded or behind a refused symbolic link are forgotten. Every path must exist.
        follow_symlinks: take links that point outside the folder they are in.
        wait: seconds to wait for another writer's commit (default: a moment, then refused).
        """
        with self._space():
            writer = self._writer(progress)
            writer.lock_wait = wait or writer.lock_wait
            report = writer.ingest(paths, prune, include, exclude, follow_symlinks)
        self._fresh = False  # even when nothing was written, what is on disk is current
        return report

    def delete(self, doc_id: str) -> bool:
        """Forget one document; False if it was not in the library."""
        with self._space():
            return self._writer(None).delete(doc_id)

    @contextmanager
    def _space(self) -> Iterator[None]:
        """A write that runs out of space (SQLite, FAISS, bm25s or a manifest, wherever it
        shows) is one DiskFullError: it never published, so the library is the old one, and
        its half-built generation is swept at the next open."""
        from ingest.disk import disk_full, is_disk_full

        try:
            yield
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full(self.storage.where) from None
            raise

    def _writer(self, progress: Progress | None) -> Writes:
        return self.storage.writer(self, progress)
