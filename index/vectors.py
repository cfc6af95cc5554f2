"""FAISS vector index of one chunk language: inner product on L2-normalised vectors.

FAISS ids are chunk ids (IndexIDMap2), so a hit maps straight to the store. Below
`FLAT_MAX` vectors the index is exact (flat); above it 8-bit scalar-quantized codes are
scanned in full and the best `SQ8_K_FACTOR`·k re-ranked with the stored float vectors
(IndexRefineFlat over IndexScalarQuantizer). Libraries built when HNSW was the default above
`FLAT_MAX` still open and search as before; their next change of that language rebuilds it.
Readers memory-map the file (`mapped`): opening is instant whatever the size, and pages come
from the page cache as searches touch them. faiss is imported only inside functions: opening a
library to list or skip files must not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.disk import fsync
from ingest.errors import LibraryError

# Measured with `python bench/index.py` (dim 384, clustered random vectors, 1 query thread,
# 2 shared CPU cores). Flat: exact, builds instantly, p50 0.07 ms at 2k, 1.2 ms at 20k,
# 15 ms at 100k per query and language. HNSW (M=32, efSearch=128): recall@10 1.000 and
# 0.2-0.4 ms at every size, but a 100k build takes 70-80 s, paid again whenever that
# language changes (graphs cannot drop nodes). IVF (nprobe=8) is as fast but needs training
# and lost recall on small sets (0.886 at 2k). Flat stays under ~8 ms a query up to 50k,
# well below the query embedding, so flat up to 50k vectors per language, HNSW above.
# `python bench/scale.py` (synthetic libraries of copied corpus text, 100k and 1M chunks):
# recall@10 for queries near the data 0.99 / 0.81 at efSearch 128, 0.99 / 0.90 at 512, for
# p50 0.5 -> 2.1 ms (100k) and 0.5 -> 1.6 ms (1M), still far below the query embedding; so
# efSearch 512 (a search-time setting: existing libraries get it when they are opened).
# `python bench/vector_choice.py --size 1000000` (the same synthetic vectors, 976k English):
# no graph or IVF setting reached recall@10 0.95 for the question vectors (HNSW M=32 ef 512:
# 0.56, build 16 min, load 3.6 s; IVF needs most lists probed), while SQ8 codes scanned in
# full and re-ranked exactly find the true top 10 (see docs/results.md, issue 17), build in
# seconds and, memory-mapped, open at once. So SQ8 + exact re-rank above FLAT_MAX.
FLAT_MAX = 50_000
SQ8_K_FACTOR = 4  # the SQ8 scan keeps 4·k candidates for the exact re-rank
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
BACKENDS = ("auto", "flat", "sq8", "hnsw")


_BUILD_THREADS = 0  # FAISS's own default, remembered at first import


def _faiss() -> Any:
    global _BUILD_THREADS
    import faiss

    if not _BUILD_THREADS:
        _BUILD_THREADS = faiss.omp_get_max_threads()
    return faiss


def _threads(n: int) -> None:
    """One OpenMP thread per query: on a busy machine a 2-thread FAISS search waits for a
    free core at every parallel region (bench/index.py: flat 2k p50 20 ms with 2 threads
    under load vs 0.04 ms with one). Builds take every thread."""
    faiss = _faiss()
    if faiss.omp_get_max_threads() != n:
        faiss.omp_set_num_threads(n)


def choose_backend(n: int, backend: str = "auto") -> str:
    if backend not in BACKENDS:
        raise LibraryError(
            f"Unknown vector backend {backend!r}.", hint=f"use one of {', '.join(BACKENDS)}"
        )
    if backend != "auto":
        return backend
    return "flat" if n <= FLAT_MAX else "sq8"


@dataclass
class VectorIndex:
    """One FAISS index (IndexIDMap2 over flat, SQ8 + re-rank or HNSW) and its backend name;
    `mapped`: loaded as read-only views of the file (adding to it is refused)."""

    index: Any
    backend: str
    mapped: bool = False

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, backend: str = "auto") -> VectorIndex:
        faiss = _faiss()
        dim = vectors.shape[1]
        kind = choose_backend(len(ids), backend)
        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif kind == "sq8":
            codes = faiss.IndexScalarQuantizer(
                dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            inner = faiss.IndexRefineFlat(codes)  # keeps `codes` alive; re-ranks exactly
            inner.k_factor = SQ8_K_FACTOR
            # per-dimension ranges from the data (a rebuild, not growth, follows any change)
            _threads(_BUILD_THREADS)
            try:
                inner.train(np.ascontiguousarray(vectors, dtype=np.float32))
            finally:
                _threads(1)
        else:
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        out = cls(faiss.IndexIDMap2(inner), kind)
        out.add(ids, vectors)
        return out

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def ids(self) -> np.ndarray:
        """The chunk ids held, in insertion order."""
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self.mapped:  # FAISS would abort the process growing a view of a file
            raise LibraryError(
                "A memory-mapped vector index cannot grow.",
                hint="load it with VectorIndex.load(path) (not mapped) to add to it",
            )
        if len(ids):
            vecs = np.ascontiguousarray(vectors, dtype=np.float32)
            _threads(_BUILD_THREADS)
            try:
                self.index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))
            finally:
                _threads(1)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk_id, inner product) per query row, best first."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise LibraryError(
                f"Query vectors have dimension {q.shape[1]}, the library has {self.dim}.",
                hint="search with the model the library was built with (askdocs stats shows it)",
            )
        k = min(k, self.ntotal)
        if k <= 0:
            return [[] for _ in range(len(q))]
        _threads(1)
        scores, ids = self.index.search(q, k)
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i != -1]
            for row_i, row_s in zip(ids, scores, strict=True)
        ]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of `ids` (each must be in the index), one row each."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = self.index.reconstruct(int(i))
        return out

    def save(self, path: Path) -> None:
        _faiss().write_index(self.index, str(path))
        fsync(path)

    @classmethod
    def load(cls, path: Path, mapped: bool = False) -> VectorIndex:
        """`mapped`: memory-map the vectors, codes and graph (IO_FLAG_MMAP_IFC) instead of
        reading them: instant at any size, read-only; the file must not change meanwhile
        (published generations never do; a swept file stays readable while mapped)."""
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
        except RuntimeError as exc:
            raise LibraryError(
                f"The vector index {path} is corrupt ({str(exc).splitlines()[0]}).",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            ) from exc
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = HNSW_EF_SEARCH
            return cls(index, "hnsw", mapped)
        if isinstance(inner, faiss.IndexRefine):
            inner.k_factor = SQ8_K_FACTOR
            return cls(index, "sq8", mapped)
        return cls(index, "flat", mapped)
