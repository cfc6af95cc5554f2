"""Writing an embedded library: build the next generation from a plan, publish it.

The plan (`index.plan.Planner`) is made from file hashes alone. A write copies the current
store into a new generation directory, applies removals and additions there, rebuilds the
indexes of the languages that changed (the others are hard-linked: published files are
never modified), and flips CURRENT. Everything before the flip is invisible to readers.

The writer sees its library only through `index.protocol.Target` (what `index.library.Library`
offers in public): its config, embedder, the published generation, and refresh/reopen.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from index import manifest as layout
from index.embedded.generation import STORE, Generation, lexical_dir, vector_file
from index.embedded.lexical import LexicalIndex
from index.embedded.store import Store
from index.embedded.vectors import VectorIndex, choose_backend
from index.manifest import Manifest
from index.plan import EMBED_BATCH, TOKENIZER_VERSION, Plan, Planner, lexical_text, passage_text_of
from ingest.text import LANGS, tokenize


class Writer(Planner):
    """One write to one embedded library, holding its lock from planning to publishing."""

    def _locked(self) -> AbstractContextManager[Any]:
        """The library's one-writer lock (a lock file beside its generations)."""
        return layout.WriteLock(self.path, self.lib.config.name, wait=self.lock_wait)

    def _published(self) -> Generation | None:
        base = self.lib.published()
        assert base is None or isinstance(base, Generation)  # an embedded library's own
        return base

    def _write(self, plan: Plan) -> int:
        """Build and publish the next generation; returns the number of chunks re-tokenized."""
        base_gen = self._published()
        base = base_gen.manifest if base_gen else None
        layout.sweep(self.path, keep=_current(self.path))  # leftovers of crashed writers
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

    def _apply(self, plan: Plan, store: Store) -> tuple[set[str], set[str]]:
        """Removals then additions (with vectors, embedded in batches).

        Returns the languages that lost chunks and the languages that gained some."""
        removed: set[str] = set()
        for doc_id in plan.removals:
            removed |= store.chunk_langs(doc_id)
            store.delete_document(doc_id)
        now = time.time()
        for add in plan.additions:
            store.add_document(add.doc, add.path, add.file_hash, now, add.chunks, add.tokens)
        for ids, vecs in self._embedded(plan):
            store.set_vectors(ids, vecs)
        added = {lang for a in plan.additions for lang in store.chunk_langs(a.doc.doc_id)}
        return removed, added

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
        documents, now = store.count(), time.time()
        if base is not None:
            # every write leaves all tokens current (stale ones are re-tokenized first)
            if reembedded:  # by this write (`_reembed`): the manifest names the new model
                embedder = self.lib.ingest_embedder
                base = replace(base, embedder=embedder.name, dim=embedder.dim)
            return replace(
                base,
                generation=number,
                documents=documents,
                updated_at=now,
                tokenizer_version=TOKENIZER_VERSION,
                askdocs_version=layout.askdocs_version(),
            )
        return self._fresh_manifest(generation=number, documents=documents, updated_at=now)

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
            if reuse and base_gen is not None:
                _link(base_gen.dir / vector_file(lang), gen_dir / vector_file(lang))
                langs[lang] = dict(base_gen.manifest.langs[lang])
            else:
                ids, vecs = store.vectors(lang, manifest.dim)
                old = base_gen.dir / vector_file(lang) if base_gen else None
                vindex = self._vector_index(ids, vecs, old, grown_only=lang not in removed)
                vindex.save(gen_dir / vector_file(lang))
                langs[lang] = {"chunks": counts[lang], "backend": vindex.backend}
            if reuse and base_gen is not None and lang not in relexed:
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
        if (
            grown_only
            and old is not None
            and old.exists()
            and choose_backend(len(ids), backend) == "hnsw"
        ):
            index = VectorIndex.load(old)
            if index.backend == "hnsw":
                new = ~np.isin(ids, index.ids())
                index.add(ids[new], vecs[new])
                if index.ntotal == len(ids):
                    return index
        return VectorIndex.build(ids, vecs, backend)


def _current(lib_dir: Path) -> Path | None:
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
