"""One published generation of a library, opened: its manifest, its read-only store, and its
FAISS and bm25s indexes, loaded lazily. The files a generation holds are named here.

`index.library.Library` reads through the current one; `index.embedded.writer.Writer` builds the next
one from it (see index/manifest.py for the layout and publishing).
"""

from __future__ import annotations

import threading
from pathlib import Path

from index.embedded.lexical import LexicalIndex
from index.embedded.store import Store
from index.embedded.vectors import VectorIndex
from index.manifest import MANIFEST, Manifest
from ingest.errors import LibraryError

STORE = "store.sqlite"


def vector_file(lang: str) -> str:
    return f"vectors-{lang}.faiss"


def lexical_dir(lang: str) -> str:
    return f"lexical-{lang}"


class Generation:
    """One opened, published generation: manifest, read-only store, lazily loaded indexes."""

    def __init__(self, gen_dir: Path) -> None:
        self.dir = gen_dir
        self.manifest = Manifest.read(gen_dir)
        self.manifest.check_files(gen_dir)
        self.store = Store(gen_dir / STORE)
        self._vectors: dict[str, VectorIndex] = {}
        self._lexical: dict[str, LexicalIndex] = {}
        self._lock = threading.Lock()

    @property
    def key(self) -> Path:
        """What `index.library.Library.watch` names this generation by."""
        return self.dir

    @property
    def where(self) -> str:
        return str(self.dir.parent)

    def sizes(self) -> dict[str, int]:
        """Bytes on disk: the store (with the manifest), vectors, lexical."""
        sizes = {"store": (self.dir / STORE).stat().st_size, "vectors": 0, "lexical": 0}
        sizes["store"] += (self.dir / MANIFEST).stat().st_size
        for rel, size in self.manifest.files.items():
            if rel != STORE:
                sizes["vectors" if rel.startswith("vectors-") else "lexical"] += size
        return sizes

    def vectors(self, lang: str) -> VectorIndex | None:
        if lang not in self.manifest.langs:
            return None
        with self._lock:
            if lang not in self._vectors:
                # mapped: opening costs nothing at any size; pages load as searches touch them
                index = VectorIndex.load(self.dir / vector_file(lang), mapped=True)
                expected = self.manifest.langs[lang]["chunks"]
                if index.ntotal != expected or index.dim != self.manifest.dim:
                    raise LibraryError(
                        f"The vector index {self.dir / vector_file(lang)} holds {index.ntotal} "
                        f"vectors of dimension {index.dim}; the manifest says {expected} of "
                        f"{self.manifest.dim}.",
                        hint="rebuild the library: askdocs ingest --rebuild PATH...",
                    )
                self._vectors[lang] = index
            return self._vectors[lang]

    def lexical(self, lang: str) -> LexicalIndex | None:
        if lang not in self.manifest.langs:
            return None
        with self._lock:
            if lang not in self._lexical:
                self._lexical[lang] = LexicalIndex.load(self.dir / lexical_dir(lang))
            return self._lexical[lang]

    def close(self) -> None:
        self.store.close()
