"""The plan of a write, shared by both stores' writers: what changed, decided from file hashes.

The plan is made from file hashes alone, so unchanged files are never parsed and, when
nothing changed, no model is loaded and nothing is written. `Planner` scans, hashes and diffs
against the published generation; what changed is read and embedded before the store's
one-writer lock (`index.reading`) and planned into a `Plan` under it; a store's writer (`index.embedded.writer.Writer`,
`index.postgres.writer.PgWriter`) supplies that lock (`Planner._locked`) and publishes the plan
(`Planner._write`). What is embedded (`passage_text`) and what BM25 sees (`lexical_text`) of a
chunk are fixed here, for both.

Over 300 lines because the plan's steps (scan, diff, parse, drift check) share one lock and
one set of hashes; the stores' writers only publish.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from index.manifest import Manifest
from index.protocol import IngestReport, Progress, Target
from index.reading import Read, read_files
from ingest import settings
from ingest.errors import InputError
from ingest.records import Chunk, Document
from ingest.text import tokenize

log = logging.getLogger(f"askdocs.{__name__}")
EMBED_BATCH = 64
LOCK_WAIT = 2.0  # seconds a write waits for another writer's commit, then is refused
# The version of `ingest.text.tokenize` (and of `lexical_text`). Bump it when tokens change:
# `askdocs ingest` (and the app on start) then re-tokenizes the cached tokens of older
# libraries (no re-embedding), whose lexical index no longer matches the queries' tokens.
# 3: one stop-word list for BM25 and answer terms.
TOKENIZER_VERSION = 3
# Bump when passage_text changes: libraries record it, and ingest warns on a mismatch.
PASSAGE_VERSION = 1
MAX_CHUNKS = 20_000  # per document, about 6 million characters of text (settings.MAX_CHUNKS)


def max_chunks() -> int:
    """Chunks indexed per document: MAX_CHUNKS, or $ASKDOCS_MAX_CHUNKS."""
    return int(settings.MAX_CHUNKS.get() or MAX_CHUNKS)


def passage_text(chunk: Chunk, title: str) -> str:
    """What is embedded for a chunk: its heading path (led by the title) and its text.

    The heading path gives a passage its topic ("Functions > Default arguments") even when
    the chunk's own words never name it. The title is left out when the path starts with it.
    """
    return passage_text_of(chunk.heading, chunk.text, title)


def passage_text_of(heading: str, text: str, title: str) -> str:
    path = heading
    if title and not path.startswith(title):
        path = f"{title} > {path}" if path else title
    return f"{path}\n{text}" if path else text


def lexical_text(heading: str, text: str) -> str:
    """What the lexical index sees of a chunk: heading path and text (titles would repeat in
    every chunk)."""
    return f"{heading}\n{text}" if heading else text


@dataclass
class Addition:
    doc: Document
    path: str  # absolute: loading.path_key of the file
    file_hash: str
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray | None = None  # embedded before the lock (index/reading.py)


@dataclass
class Plan:
    removals: dict[str, str] = field(default_factory=dict)  # doc_id → why
    additions: list[Addition] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: int = 0
    retokenize: bool = False  # the library's tokens come from an older tokenizer
    reembed: bool = False  # its vectors come from other weights of its model (a new adapter)

    def empty(self) -> bool:
        return not (self.removals or self.additions or self.retokenize or self.reembed)


def chunked(doc: Document, settings: Any, warnings: list[str]) -> Read:  # noqa: ANN401
    """A document's chunks (at most `max_chunks`, with a warning) and their BM25 tokens."""
    from ingest.chunking import chunk_document

    chunks = chunk_document(doc, settings)
    limit = max_chunks()
    if len(chunks) > limit:  # the work of one file stays bounded (embedding is slow)
        warnings.append(
            f"{doc.source}: {len(chunks):,} chunks; only the first {limit:,} are "
            f"indexed (ASKDOCS_MAX_CHUNKS raises the limit)"
        )
        chunks = chunks[:limit]
    tokens = [tokenize(lexical_text(c.heading, c.text)) for c in chunks]
    return Read(doc, warnings, chunks, tokens)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _exists(key: str) -> bool:
    from ingest.loading import key_path

    return key_path(key).exists()


class Planner(ABC):
    """One write to one library, holding the store's lock from planning to publishing: the
    plan is made here, a store's writer publishes it (`_locked`, `_write`)."""

    def __init__(self, library: Target, progress: Progress | None) -> None:
        self.lib = library
        self.path = library.config.path
        self.progress = progress or (lambda stage, done, total: None)
        self.lock_wait = LOCK_WAIT

    @abstractmethod
    def _locked(self) -> AbstractContextManager[Any]:
        """The library's one-writer lock, held from planning to publishing."""

    @abstractmethod
    def _write(self, plan: Plan) -> int:
        """Publish the next generation made by `plan`; the number of chunks re-tokenized."""

    # ---- ingest --------------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[str | Path],
        prune: bool,
        include: Sequence[str],
        exclude: Sequence[str],
        follow_symlinks: bool = False,
    ) -> IngestReport:
        from ingest import loading

        t0 = time.perf_counter()
        missing = [str(p) for p in paths if not os.path.lexists(p)]
        if prune and missing:  # a moved or unmounted folder must not read as "all deleted"
            raise InputError(
                f"--prune needs every given path to exist; not found: {' '.join(missing)}",
                hint="check the path (nothing was removed); without --prune, ingest adds "
                "and updates only",
            )
        found = loading.scan(
            [Path(p) for p in paths], tuple(include), tuple(exclude), follow_symlinks
        )
        warnings: list[str] = list(found.warnings)
        files = list(found.files)
        given = dict(zip(found.keys, files, strict=True))  # key → path as reached
        roots = [loading.key_path(r) for r in found.roots]
        hashes: dict[str, str] = {}  # key → content hash
        for i, (key, f) in enumerate(given.items(), 1):
            try:
                hashes[key] = loading.file_hash(f)
            except InputError as exc:  # too large, a device, ...: one warning, never read
                warnings.append(f"{loading.source_of(f)}: {exc.message}")
            except OSError as exc:
                warnings.append(f"{loading.source_of(f)}: cannot read ({exc.strerror or exc})")
            self.progress("scan", i, len(files))
        unreadable = len(files) - len(hashes)

        def diff() -> tuple[dict, list[str], list[str], list[str]]:
            """Changed or new files, docs to prune, duplicate-file warnings."""
            base = self.lib.published()
            store = base.store if base else None
            stored = store.file_hashes() if store else {}
            by_hash = {h: path for path, (h, _) in stored.items()}
            todo, dups = [], []
            for key, h in hashes.items():
                if stored.get(key, ("",))[0] == h:
                    continue  # unchanged: not even parsed
                twin = by_hash.get(h)
                dup = twin and twin != key and _exists(twin) and hashes.get(twin, h) == h
                if dup and key not in stored:  # a changed file goes on: its old version goes
                    dups.append(f"{loading.source_of(given[key])}: same content as {twin}; skipped")
                    continue
                todo.append(key)
            # With prune, the library mirrors what the scan took under each root: files gone,
            # excluded or behind a refused link are forgotten; so is a file an older askdocs
            # stored by a refused link's target (outside the root) under the link's name.
            links = set(found.unfollowed)
            sources = {d.path: d.source for d in store.documents()} if links and store else {}
            gone = [
                doc_id
                for path, (_, doc_id) in stored.items()
                if prune
                and (
                    (_under(loading.key_path(path), roots) and path not in given)
                    or (path, sources.get(path)) in links
                )
            ]
            return stored, todo, gone, dups

        stored, todo, gone, dups = diff()
        log.debug(
            "plan: %d files hashed, %d new or changed, %d gone, %d duplicates (%.2f s)",
            len(hashes),
            len(todo),
            len(gone),
            len(dups),
            time.perf_counter() - t0,
        )
        if not todo and not gone and not self.lib.stale_tokens and not self.lib.stale_vectors:
            return IngestReport(
                unchanged=len(hashes) - len(dups),
                warnings=tuple(warnings + dups),
                seconds=time.perf_counter() - t0,
                files=len(files),
                failed=unreadable,
            )
        # Read and embed before the lock: other writers commit meanwhile (index/reading.py).
        settings = self.lib.config.chunk
        prepared = read_files(
            loading,
            {key: given[key] for key in todo},
            lambda doc, warned: chunked(doc, settings, warned),
            passage_text,
            {doc_id for _, doc_id in stored.values()},
            lambda: self.lib.ingest_embedder,
            self.progress,
        )
        with self._locked():
            if self.lib.refresh():  # another writer published since we looked: what it
                stored, todo, gone, dups = diff()  # committed is unchanged now, and skipped
            plan = self._plan(loading, given, hashes, stored, todo, prepared)
            for doc_id in gone:
                plan.removals.setdefault(doc_id, "gone")
            plan.retokenize = self.lib.stale_tokens
            plan.reembed = self.lib.stale_vectors
            warnings += dups + plan.warnings
            if plan.additions:
                warnings += self._drift()
            started = time.perf_counter()
            retokenized = self._write(plan) if not plan.empty() else 0
            log.debug(
                "write: %d removals, %d chunks added, %d re-tokenized, published in %.2f s",
                len(plan.removals),
                sum(len(a.chunks) for a in plan.additions),
                retokenized,
                time.perf_counter() - started,
            )
        return IngestReport(
            added=plan.added,
            updated=plan.updated,
            unchanged=len(hashes) - len(todo) - len(dups),
            removed=sum(1 for why in plan.removals.values() if why == "gone"),
            chunks_added=sum(len(a.chunks) for a in plan.additions),
            warnings=tuple(warnings),
            seconds=time.perf_counter() - t0,
            files=len(files),
            failed=unreadable + plan.failed,
            retokenized=retokenized,
        )

    def _plan(
        self,
        loading: ModuleType,  # ingest.loading, imported lazily
        given: dict[str, Path],
        hashes: dict[str, str],
        stored: dict[str, tuple[str, str]],
        todo: list[str],
        prepared: dict[str, Read],
    ) -> Plan:
        """Decide what to remove and add for the new and changed files (by key), from what
        `prepared` read of them before the lock, reading the others now."""
        plan = Plan()
        path_of = {doc_id: path for path, (_, doc_id) in stored.items()}
        seen: dict[str, str] = {}  # doc_id → key, in this batch
        for key in todo:
            read = prepared.get(key)
            if read is None:  # not read before the lock (another writer changed its state)
                warned: list[str] = []
                read = Read(loading.load_or_warn(given[key], warned), warned)
            plan.warnings += read.warnings
            doc = read.doc
            if doc is None:  # one bad file is a warning; its old version stays
                plan.failed += 1
                continue
            old = stored.get(key)
            twin = path_of.get(doc.doc_id) or seen.get(doc.doc_id)
            twin_now = hashes.get(twin, doc.doc_id) if twin else None  # its current hash
            if twin and twin != key and _exists(twin) and twin_now == doc.doc_id:
                plan.warnings.append(f"{doc.source}: same content as {twin}; skipped")
                if old:  # its old version is outdated, and the new one is a duplicate
                    plan.removals[old[1]] = "changed"
                continue
            if twin and twin != key and twin in stored:  # moved: the old path is gone
                plan.removals[doc.doc_id] = "moved"
            if old:
                plan.removals[old[1]] = "changed"
            plan.updated += 1 if old or twin else 0
            plan.added += 0 if old or twin else 1
            if read.chunks is None or read.tokens is None:  # a likely duplicate, not chunked
                read = chunked(doc, self.lib.config.chunk, plan.warnings)
            assert read.chunks is not None and read.tokens is not None
            plan.additions.append(
                Addition(doc, key, hashes[key], read.chunks, read.tokens, read.vectors)
            )
            seen[doc.doc_id] = key
        return plan

    def _drift(self) -> list[str]:
        """Warn when this askdocs chunks, embeds or tokenizes differently from the library's
        builder: new and changed files would then differ from the rest."""
        base = self.lib.published()
        chunk = self.lib.config.chunk
        if base is None:
            return []
        m = base.manifest
        # An older tokenizer is not drift: the same write re-tokenizes the whole library.
        now = (chunk.size, chunk.overlap, PASSAGE_VERSION)
        then = (m.chunk_size, m.chunk_overlap, m.passage_version)
        if now == then:
            return []
        what = "chunk size/overlap, passage format"
        return [
            f"library {self.lib.config.name!r} was built with ({what}) = {then}, this askdocs "
            f"uses {now}; new and changed files follow the new settings. Run askdocs ingest "
            "--rebuild PATH... to make the whole library consistent."
        ]

    def reembed(self) -> None:
        """Every chunk embedded again by the library's ingest embedder, published as one
        generation (nothing else changes)."""
        with self._locked():
            self.lib.refresh()
            self._write(Plan(reembed=True))

    # ---- delete --------------------------------------------------------------------------

    def delete(self, doc_id: str) -> bool:
        with self._locked():
            self.lib.refresh()
            base = self.lib.published()
            if base is None or base.store.document(doc_id) is None:
                return False
            self._write(Plan(removals={doc_id: "deleted"}))
        return True

    # ---- building a generation -----------------------------------------------------------

    # ---- what both stores' writes share -----------------------------------------------------

    def _embedded(self, plan: Plan) -> Iterator[tuple[list[int], np.ndarray]]:
        """The added chunks' vectors, EMBED_BATCH at a time: (chunk ids, rows). Most were
        embedded before the lock; the rest (a file another writer changed meanwhile, a moved
        file first thought a duplicate) are embedded now."""
        for a in plan.additions:
            if a.vectors is not None and a.chunks:
                yield [c.chunk_id for c in a.chunks], a.vectors
        pending = [(c, a.doc.title) for a in plan.additions if a.vectors is None for c in a.chunks]
        if not pending:
            return
        # Loaded here, and only when there is work: the first time, building the model
        # takes ~15 s, which the app shows as a stage of its own.
        self.progress("model", 0, 1)
        embedder = self.lib.ingest_embedder
        self.progress("model", 1, 1)
        for i in range(0, len(pending), EMBED_BATCH):
            batch = pending[i : i + EMBED_BATCH]
            vecs = embedder.embed([passage_text(c, t) for c, t in batch], kind="passage")
            yield [c.chunk_id for c, _ in batch], vecs
            self.progress("embed", i + len(batch), len(pending))

    def _fresh_manifest(self, **stamp: Any) -> Manifest:
        """The manifest of a library built now with this library's model and chunking."""
        embedder = self.lib.ingest_embedder
        chunk = self.lib.config.chunk
        return Manifest(
            model=self.lib.config.model,
            embedder=embedder.name,
            dim=embedder.dim,
            chunk_size=chunk.size,
            chunk_overlap=chunk.overlap,
            passage_version=PASSAGE_VERSION,
            tokenizer_version=TOKENIZER_VERSION,
            **stamp,
        )
