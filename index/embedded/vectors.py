"""FAISS vector index of one chunk language: inner product on L2-normalised vectors.

FAISS ids are chunk ids (an id map), so a hit maps straight to the store. Up to
`FLAT_MAX` vectors the index is exact (flat). Above it ("pq"), 4-bit product-quantization
codes of `PQ_DIMS` dimensions each are scanned in full with FAISS's SIMD fast scan, and the
best `RERANK` are re-ranked with the stored float vectors (IndexRefineFlat over
IndexPQFastScan): no graph to build, no clusters to miss. "sq8" (8-bit scalar codes, the same
re-rank) and "hnsw" remain on request; libraries built when HNSW was the default above
`FLAT_MAX` open and search as before, and the next change of such a language rebuilds it.
Readers memory-map the file (`mapped`): opening costs no read of the vectors at any size, and
pages come from the page cache as searches touch them. faiss is imported only inside
functions: opening a library to list or skip files must not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
# `python bench/vector_choice.py --size 1000000` (the same synthetic vectors, 976,596 English;
# table in docs/results.md, issue 17): for the question vectors, whose true top 10 are
# near-ties, HNSW (M=32, efConstruction 80) reaches recall@10 0.56 at efSearch 512 (build 16
# min, load 3.6 s) and IVF must probe most of its lists; full scans find them. SQ8 codes with
# a re-rank: recall 0.998, but a scan of 375 MB a query (tens of ms). 4-bit PQ fast scan
# re-ranking the best 5,120: recall 0.962 with 4 dimensions a code, 0.994 with 2 (near the
# data 1.000 both) for a few ms more; built in about a minute; memory-mapped, it opens at
# once. So 2 dimensions a code and 5,120 re-ranked (bench/scale.py at 1M: recall 0.988).
FLAT_MAX = 50_000
PQ_DIMS = 2  # dimensions per 4-bit sub-code: 192 codes for a 384-dimensional model
RERANK = 5120  # candidates of the code scan re-ranked exactly, whatever k
SQ8_K_FACTOR = 4  # "sq8": its scan keeps 4·k candidates for the re-rank
CODES_MIN = 1_000  # "pq" / "sq8" asked for fewer vectors than this: flat
TRAIN_MAX = 200_000  # vectors the PQ codebooks / SQ8 ranges are trained on
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
BACKENDS = ("auto", "flat", "pq", "sq8", "hnsw")


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
    kind = backend if backend != "auto" else "flat" if n <= FLAT_MAX else "pq"
    if kind in ("pq", "sq8") and n < CODES_MIN:
        return "flat"  # too few vectors to train codes on; flat is exact and instant here
    return kind


@dataclass
class VectorIndex:
    """One FAISS index (an id map over flat, PQ or SQ8 codes + re-rank, or HNSW) and its
    backend name; `mapped`: loaded as read-only views of the file (adding to it is refused)."""

    index: Any
    backend: str
    mapped: bool = False
    _rows: Any = field(default=None, repr=False, compare=False)  # (sorted ids, their rows)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, backend: str = "auto") -> VectorIndex:
        faiss = _faiss()
        dim = vectors.shape[1]
        kind = choose_backend(len(ids), backend)
        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif kind in ("pq", "sq8"):
            if kind == "pq":  # the number of sub-codes must divide the dimension
                m = next(m for m in range(max(1, dim // PQ_DIMS), 0, -1) if dim % m == 0)
                codes = faiss.IndexPQFastScan(dim, m, 4, faiss.METRIC_INNER_PRODUCT)
            else:
                codes = faiss.IndexScalarQuantizer(
                    dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
            inner = faiss.IndexRefineFlat(codes)  # keeps `codes` alive; re-ranks exactly
            inner.k_factor = SQ8_K_FACTOR
            # codebooks / ranges from a fixed sample (a rebuild, not growth, follows a change)
            pick = np.random.default_rng(0).permutation(len(vectors))[:TRAIN_MAX]
            _threads(_BUILD_THREADS)
            try:
                inner.train(np.ascontiguousarray(vectors[np.sort(pick)], dtype=np.float32))
            finally:
                _threads(1)
        else:
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        if kind == "hnsw":  # a graph may grow later: IndexIDMap2 finds ids in any order
            out = cls(faiss.IndexIDMap2(inner), kind)
            out.add(ids, vectors)
            return out
        # The others never grow: added in id order, an id's row is a binary search away, and
        # loading skips IndexIDMap2's id -> row hash (1.0-1.3 s at a million).
        order = np.argsort(ids, kind="stable")
        out = cls(faiss.IndexIDMap(inner), kind)
        out.add(np.asarray(ids)[order], np.asarray(vectors)[order])
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
        params = None
        if self.backend == "pq":  # the same re-rank depth for k=10 as for the retriever's 50
            # never past ntotal: FAISS pads the candidates with id -1, which can tie (IP 0).
            # (The code scan may also drop the least similar vectors when k nears ntotal: its
            # 16-bit distances tie; the retriever asks for 50 of more than FLAT_MAX.)
            depth = min(RERANK, self.ntotal)
            params = _faiss().IndexRefineSearchParameters(k_factor=max(1.0, depth / k))
        scores, ids = self.index.search(q, k, params=params)
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i != -1]
            for row_i, row_s in zip(ids, scores, strict=True)
        ]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of `ids` (each must be in the index), one row each."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        faiss = _faiss()
        if isinstance(self.index, faiss.IndexIDMap2):  # its own id -> row hash
            for row, i in enumerate(ids):
                out[row] = self.index.reconstruct(int(i))
            return out
        if self._rows is None:  # once: ids are in order unless grown (then sorted here)
            held = self.ids()
            order = None if np.all(held[1:] >= held[:-1]) else np.argsort(held, kind="stable")
            self._rows = (held if order is None else held[order], order)
        held, order = self._rows
        want = np.asarray(ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(held, want), len(held) - 1)
        if len(want) and not np.array_equal(held[pos], want):
            missing = int(want[held[pos] != want][0])
            raise LibraryError(
                f"Chunk {missing} has no vector in the index.",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            )
        inner = faiss.downcast_index(self.index.index)
        for row, p in enumerate(pos if order is None else order[pos]):
            out[row] = inner.reconstruct(int(p))
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
            base = faiss.downcast_index(inner.base_index)
            return cls(index, "pq" if isinstance(base, faiss.IndexPQFastScan) else "sq8", mapped)
        return cls(index, "flat", mapped)
