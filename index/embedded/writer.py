"""Writing a library: plan an incremental change, build the next generation, publish it.

The plan is made from file hashes alone, so unchanged files are never parsed and, when
nothing changed, no model is loaded and nothing is written. A write copies the current
store into a new generation directory, applies removals and additions there, rebuilds the
indexes of the languages that changed (the others are hard-linked: published files are
never modified), and flips CURRENT. Everything before the flip is invisible to readers.

The writer sees its library only through `Target` (what `index.library.Library` offers in
public): its config, embedder, the published generation, and refresh/reopen.

Why one module of ~450 lines: one write is one transaction under one lock, from the plan to
the flip of CURRENT; the plan's records (`_Plan`, `_Addition`) and the build share it, and the
records a write reports (`IngestReport`) or fixes (`passage_text`, `lexical_text`) are its own.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index import manifest as layout
from index.config import LibraryConfig
from index.embedded.generation import STORE, Generation, lexical_dir, vector_file
from index.embedded.lexical import TOKENIZER_VERSION, LexicalIndex
from index.embedded.store import Store
from index.embedded.vectors import VectorIndex, choose_backend
from index.manifest import Manifest
from index.model.embedder import Embedder
from ingest.errors import InputError
from ingest.records import Chunk, Document
from ingest.text import LANGS, tokenize

Progress = Callable[[str, int, int], None]  # (stage, done, total)
EMBED_BATCH = 64
LOCK_WAIT = 2.0  # seconds a write waits for another writer's commit, then is refused
# Bump when passage_text changes: libraries record it, and ingest warns on a mismatch.
PASSAGE_VERSION = 1


MAX_CHUNKS = 20_000  # per document, about 6 million characters of text


def max_chunks() -> int:
    """Chunks indexed per document: MAX_CHUNKS, or $ASKDOCS_MAX_CHUNKS."""
    return int(os.environ.get("ASKDOCS_MAX_CHUNKS", "") or MAX_CHUNKS)


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


@dataclass
class _Addition:
    doc: Document
    path: str  # absolute: loading.path_key of the file
    file_hash: str
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray | None = None  # embedded before the lock (index/embedded/reading.py)


@dataclass
class _Plan:
    removals: dict[str, str] = field(default_factory=dict)  # doc_id → why
    additions: list[_Addition] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: int = 0
    retokenize: bool = False  # the library's tokens come from an older tokenizer
    reembed: bool = False  # its vectors come from other weights of its model (a new adapter)

    def empty(self) -> bool:
        return not (self.removals or self.additions or self.retokenize or self.reembed)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _exists(key: str) -> bool:
    from ingest.loading import key_path

    return key_path(key).exists()


class Writer:
    """One write to one library, holding its lock from planning to publishing."""

    def __init__(self, library: Target, progress: Progress | None) -> None:
        self.lib = library
        self.path = library.config.path
        self.progress = progress or (lambda stage, done, total: None)
        self.lock_wait = LOCK_WAIT

    def _locked(self) -> AbstractContextManager:
        """The library's one-writer lock (index/postgres/writer.py: PostgreSQL's instead)."""
        return layout.WriteLock(self.path, self.lib.config.name, wait=self.lock_wait)

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
        if not todo and not gone and not self.lib.stale_tokens and not self.lib.stale_vectors:
            return IngestReport(
                unchanged=len(hashes) - len(dups),
                warnings=tuple(warnings + dups),
                seconds=time.perf_counter() - t0,
                files=len(files),
                failed=unreadable,
            )
        from index.embedded import reading

        # Read and embed before the lock: other writers commit meanwhile (see reading.py).
        known = {doc_id for _, doc_id in stored.values()}
        prepared = reading.read_files(
            loading,
            {key: given[key] for key in todo},
            self.lib.config.chunk,
            known,
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
            retokenized = self._write(plan) if not plan.empty() else 0
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
        loading,  # noqa: ANN001 - the ingest.loading module, imported lazily
        given: dict[str, Path],
        hashes: dict[str, str],
        stored: dict[str, tuple[str, str]],
        todo: list[str],
        prepared: dict | None = None,
    ) -> _Plan:
        """Decide what to remove and add for the new and changed files (by key), from what
        `prepared` read of them (`index.embedded.reading.Read`), reading the others now."""
        from index.embedded.reading import Read, chunked

        plan = _Plan()
        path_of = {doc_id: path for path, (_, doc_id) in stored.items()}
        seen: dict[str, str] = {}  # doc_id → key, in this batch
        prepared = prepared or {}
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
            if read.chunks is None:  # a likely duplicate, not chunked before: it is not one
                read = chunked(doc, self.lib.config.chunk, plan.warnings)
            add = _Addition(doc, key, hashes[key], read.chunks, read.tokens, read.vectors)
            plan.additions.append(add)
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
            self._write(_Plan(reembed=True))

    # ---- delete --------------------------------------------------------------------------

    def delete(self, doc_id: str) -> bool:
        with self._locked():
            self.lib.refresh()
            base = self.lib.published()
            if base is None or base.store.document(doc_id) is None:
                return False
            self._write(_Plan(removals={doc_id: "deleted"}))
        return True

    # ---- building a generation -----------------------------------------------------------

    def _write(self, plan: _Plan) -> int:
        """Build and publish the next generation; returns the number of chunks re-tokenized."""
        base_gen = self.lib.published()
        base = base_gen.manifest if base_gen else None
        layout.sweep(self.path, keep=_published(self.path))  # leftovers of crashed writers
        gen_dir = layout.next_generation(self.path)
        try:
            if base_gen:
                store = Store.copy(base_gen.dir / STORE, gen_dir / STORE)
            else:
                store = Store(gen_dir / STORE, writable=True)
            try:
                removed, added = self._apply(plan, store)
                retokenized = self._retokenize(store) if plan.retokenize else 0
                if plan.reembed:
                    self._reembed(
                        store, skip={c.chunk_id for a in plan.additions for c in a.chunks}
                    )
                    removed |= set(LANGS)  # every language's vectors are new: rebuilt
                manifest = self._manifest(base, store, gen_dir, plan.reembed)
                relexed = set(LANGS) if plan.retokenize else set()
                manifest = self._indexes(
                    manifest, store, gen_dir, base_gen, removed, added, relexed
                )
            finally:
                store.close()
            files = {**manifest.files, **layout.file_sizes(gen_dir, [STORE])}
            replace(manifest, files=files).write(gen_dir)
            layout.publish(self.path, gen_dir)
        except BaseException:
            shutil.rmtree(gen_dir, ignore_errors=True)  # the next writer would sweep it too
            raise
        self.lib.reopen()
        return retokenized

    def _apply(self, plan: _Plan, store: Store) -> tuple[set[str], set[str]]:
        """Removals then additions (with vectors, embedded in batches).

        Returns the languages that lost chunks and the languages that gained some."""
        removed: set[str] = set()
        for doc_id in plan.removals:
            removed |= store.chunk_langs(doc_id)
            store.delete_document(doc_id)
        now = time.time()
        for add in plan.additions:
            store.add_document(add.doc, add.path, add.file_hash, now, add.chunks, add.tokens)
        self._embed_rest(plan)
        for add in plan.additions:
            if add.chunks:
                store.set_vectors([c.chunk_id for c in add.chunks], add.vectors)
        added = {lang for a in plan.additions for lang in store.chunk_langs(a.doc.doc_id)}
        return removed, added

    def _embed_rest(self, plan: _Plan) -> None:
        """Embed the additions that were not embedded before the lock (a file another
        writer changed meanwhile, a moved file thought a duplicate)."""
        pending = [
            (a, i, passage_text(c, a.doc.title))
            for a in plan.additions
            if a.vectors is None
            for i, c in enumerate(a.chunks)
        ]
        if not pending:
            return
        # Loaded here, and only when there is work: the first time, building the model
        # takes ~15 s, which the app shows as a stage of its own.
        self.progress("model", 0, 1)
        embedder = self.lib.ingest_embedder
        self.progress("model", 1, 1)
        for a in plan.additions:
            if a.vectors is None:
                a.vectors = np.zeros((len(a.chunks), embedder.dim), dtype=np.float32)
        for i in range(0, len(pending), EMBED_BATCH):
            batch = pending[i : i + EMBED_BATCH]
            vecs = embedder.embed([text for _, _, text in batch], kind="passage")
            for (a, j, _), vec in zip(batch, vecs, strict=True):
                a.vectors[j] = vec
            self.progress("embed", i + len(batch), len(pending))

    def _reembed(self, store: Store, skip: set[int]) -> None:
        """Embed every stored chunk again with this library's model (its weights changed:
        a new shipped adapter or `askdocs tune`); chunks added by this write already were."""
        embedder = self.lib.ingest_embedder
        rows = [r for r in store.passage_sources() if r[0] not in skip]
        for i in range(0, len(rows), EMBED_BATCH):
            batch = rows[i : i + EMBED_BATCH]
            texts = [passage_text_of(heading, text, title) for _, heading, text, title in batch]
            store.set_vectors([r[0] for r in batch], embedder.embed(texts, kind="passage"))
            self.progress("re-embed", i + len(batch), len(rows))

    def _retokenize(self, store: Store) -> int:
        """Redo every chunk's lexical tokens with this tokenizer; vectors stay as they are."""
        rows = store.lexical_sources()
        tokens = []
        for i, (chunk_id, heading, text) in enumerate(rows, 1):
            tokens.append((chunk_id, tokenize(lexical_text(heading, text))))
            if i % 200 == 0 or i == len(rows):
                self.progress("tokenize", i, len(rows))
        store.set_tokens(tokens)
        return len(rows)

    def _manifest(
        self, base: Manifest | None, store: Store, gen_dir: Path, reembedded: bool = False
    ) -> Manifest:
        number = int(gen_dir.name.split("-")[1])
        stamp = {"generation": number, "documents": store.count(), "updated_at": time.time()}
        if base is not None:
            # every write leaves all tokens current (stale ones are re-tokenized first)
            model = {}
            if reembedded:  # by this write (`_reembed`): the manifest names the new model
                embedder = self.lib.ingest_embedder
                model = {"embedder": embedder.name, "dim": embedder.dim}
            return replace(
                base,
                **stamp,
                **model,
                tokenizer_version=TOKENIZER_VERSION,
                askdocs_version=layout.askdocs_version(),
            )
        return self._fresh_manifest(**stamp)

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

    def _indexes(
        self,
        manifest: Manifest,
        store: Store,
        gen_dir: Path,
        base_gen: Generation | None,
        removed: set[str],
        added: set[str],
        relexed: set[str],
    ) -> Manifest:
        """Per-language FAISS and bm25s files: rebuilt where changed, linked where not
        (`relexed`: languages whose tokens were redone, so only their bm25s index)."""
        changed = removed | added
        counts = store.lang_counts()
        langs: dict[str, dict] = {}
        names: list[str] = []
        todo = [lang for lang in LANGS if counts.get(lang)]
        for i, lang in enumerate(todo, 1):
            names += [vector_file(lang), lexical_dir(lang)]
            reuse = base_gen is not None and lang not in changed and lang in base_gen.manifest.langs
            if reuse:
                _link(base_gen.dir / vector_file(lang), gen_dir / vector_file(lang))
                langs[lang] = dict(base_gen.manifest.langs[lang])
            else:
                ids, vecs = store.vectors(lang, manifest.dim)
                old = base_gen.dir / vector_file(lang) if base_gen else None
                vindex = self._vector_index(ids, vecs, old, grown_only=lang not in removed)
                vindex.save(gen_dir / vector_file(lang))
                langs[lang] = {"chunks": counts[lang], "backend": vindex.backend}
            if reuse and lang not in relexed:
                _link(base_gen.dir / lexical_dir(lang), gen_dir / lexical_dir(lang))
            else:
                tok_ids, toks = zip(*store.tokens(lang), strict=True)
                LexicalIndex.build(list(tok_ids), list(toks)).save(gen_dir / lexical_dir(lang))
            self.progress("index", i, len(todo))
        return replace(manifest, langs=langs, files=layout.file_sizes(gen_dir, names))

    def _vector_index(
        self, ids: np.ndarray, vecs: np.ndarray, old: Path | None, grown_only: bool
    ) -> VectorIndex:
        """A new index, or, for an HNSW graph that only gained chunks, the old one grown:
        a graph cannot drop nodes, but adding to it is far cheaper than a rebuild."""
        backend = self.lib.config.vector_backend
        growable = grown_only and old is not None and old.exists()
        if growable and choose_backend(len(ids), backend) == "hnsw":
            index = VectorIndex.load(old)
            if index.backend == "hnsw":
                new = ~np.isin(ids, index.ids())
                index.add(ids[new], vecs[new])
                if index.ntotal == len(ids):
                    return index
        return VectorIndex.build(ids, vecs, backend)


def _published(lib_dir: Path) -> Path | None:
    """The generation CURRENT names, even when the library is too damaged to open."""
    try:
        return layout.current(lib_dir)
    except Exception:  # noqa: BLE001 - a corrupt pointer names nothing worth keeping
        return None


def _link(src: Path, dst: Path) -> None:
    """Hard-link an unchanged published file (or directory of files) into a new generation."""
    if src.is_dir():
        dst.mkdir()
        for child in src.iterdir():
            _link(child, dst / child.name)
        return
    try:
        os.link(src, dst)
    except OSError:  # filesystems without hard links
        shutil.copy2(src, dst)
