"""FAISS vector index: exactness of flat and of PQ / SQ8 codes + re-rank, recall of HNSW, persistence,
memory-mapped loading, damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embedded.vectors import FLAT_MAX, VectorIndex, choose_backend
from ingest.errors import LibraryError


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(max(4, n // 100), dim)))
    return _unit(
        centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dim)) / np.sqrt(dim)
    )


def _brute(data: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[list[tuple]]:
    scores = q @ data.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(int(ids[j]), float(scores[i, j])) for j in row] for i, row in enumerate(order)]


@pytest.fixture(autouse=True)
def _small_codes(monkeypatch) -> None:
    """PQ / SQ8 codes on the few hundred vectors of these tests (16: PQ's centroids)."""
    import index.embedded.vectors as vectors

    monkeypatch.setattr(vectors, "CODES_MIN", 16)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    vecs = _unit(rng.normal(size=(600, 48)))
    ids = rng.choice(2**62, size=600, replace=False).astype(np.int64)  # chunk ids are 63-bit
    queries = _unit(rng.normal(size=(25, 48)))
    return ids, vecs, queries


def test_flat_topk_equals_numpy_brute_force(data) -> None:
    ids, vecs, queries = data
    index = VectorIndex.build(ids, vecs, "flat")
    got = index.search(queries, 10)
    want = _brute(vecs, ids, queries, 10)
    for g, w in zip(got, want, strict=True):
        assert [i for i, _ in g] == [i for i, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=0, atol=1e-5)


def test_hnsw_recall_at_10_at_least_095() -> None:
    vecs = _clustered(4000, 64, seed=2)
    ids = np.arange(10**12, 10**12 + len(vecs), dtype=np.int64)
    queries = _clustered(100, 64, seed=3)
    index = VectorIndex.build(ids, vecs, "hnsw")
    assert index.backend == "hnsw"
    got = index.search(queries, 10)
    want = _brute(vecs, ids, queries, 10)
    hits = sum(len({i for i, _ in g} & {i for i, _ in w}) for g, w in zip(got, want, strict=True))
    assert hits / (10 * len(queries)) >= 0.95


def test_auto_backend_switches_at_threshold() -> None:
    assert choose_backend(10, "auto") == "flat"
    assert choose_backend(FLAT_MAX, "auto") == "flat"
    assert choose_backend(FLAT_MAX + 1, "auto") == "pq"
    assert choose_backend(10, "hnsw") == "hnsw"
    assert choose_backend(10_000, "sq8") == "sq8"
    assert choose_backend(10, "pq") == "flat"  # too few to train codes on
    with pytest.raises(LibraryError):
        choose_backend(10, "annoy")


@pytest.mark.parametrize("backend", ["auto", "sq8"])
def test_codes_with_re_rank_find_the_exact_top_10_with_exact_scores(monkeypatch, backend) -> None:
    """Above FLAT_MAX (made small here) "auto" scans 4-bit PQ codes and re-ranks the best
    RERANK with the float vectors (sq8: 8-bit codes, the best SQ8_K_FACTOR·k): the top 10 of
    numpy's exact search, with exact scores. (The codes alone find ~0.3 / 0.986 of it.)"""
    import index.embedded.vectors as vectors

    monkeypatch.setattr(vectors, "FLAT_MAX", 1000)
    vecs = _clustered(6000, 64, seed=4)
    ids = np.arange(7 * 10**11, 7 * 10**11 + len(vecs), dtype=np.int64)
    queries = np.concatenate([_clustered(60, 64, seed=5), _unit(vecs[:60] + 0.05)])
    index = VectorIndex.build(ids, vecs, backend)
    assert index.backend == ("pq" if backend == "auto" else backend)
    got = index.search(queries, 10)
    want = _brute(vecs, ids, queries, 10)
    hits = sum(len({i for i, _ in g} & {i for i, _ in w}) for g, w in zip(got, want, strict=True))
    assert hits / (10 * len(queries)) >= 0.99
    exact = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    for q, row in zip(queries, got, strict=True):
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, vecs[[exact[i] for i, _ in row]] @ q, atol=1e-5)


@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("backend", ["flat", "pq", "sq8", "hnsw"])
def test_save_load_round_trip(tmp_path: Path, data, backend: str, mapped: bool) -> None:
    ids, vecs, queries = data
    index = VectorIndex.build(ids, vecs, backend)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", mapped=mapped)
    assert (loaded.backend, loaded.ntotal, loaded.dim) == (backend, len(ids), vecs.shape[1])
    assert loaded.search(queries, 10) == index.search(queries, 10)
    assert np.array_equal(np.sort(loaded.ids()), np.sort(ids))
    assert np.array_equal(loaded.vectors([int(ids[3])]), vecs[[3]])


def test_a_mapped_index_refuses_to_grow_and_an_unmapped_one_grows(tmp_path: Path, data) -> None:
    ids, vecs, queries = data
    VectorIndex.build(ids[:500], vecs[:500], "pq").save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss", mapped=True)
    with pytest.raises(LibraryError, match="memory-mapped"):  # FAISS itself would abort
        mapped.add(ids[500:], vecs[500:])
    grown = VectorIndex.load(tmp_path / "v.faiss")
    grown.add(ids[500:], vecs[500:])
    assert grown.ntotal == len(ids) and mapped.ntotal == 500


def test_vectors_by_id_after_growth_out_of_order_and_a_missing_id(data) -> None:
    """Built indexes hold ids in order (a binary search finds a row, no id hash to build at
    load); one grown with smaller ids is sorted on first use; an unknown id is an error."""
    ids, vecs, _ = data
    order = np.argsort(ids)
    index = VectorIndex.build(ids[order[300:]], vecs[order[300:]], "flat")
    index.add(ids[order[:300]], vecs[order[:300]])
    picked = [int(i) for i in order[[0, 299, 300, 599]]]
    assert np.array_equal(index.vectors([int(ids[i]) for i in picked]), vecs[picked])
    with pytest.raises(LibraryError, match="no vector"):
        index.vectors([int(ids[0]) + 1 if int(ids[0]) + 1 not in set(ids.tolist()) else -5])


@pytest.mark.parametrize("backend", ["flat", "pq", "sq8", "hnsw"])
def test_stored_vectors_come_back_by_id(data, backend: str) -> None:
    ids, vecs, _ = data
    index = VectorIndex.build(ids, vecs, backend)
    picked = [5, 0, 599, 17]
    assert np.array_equal(index.vectors([int(ids[i]) for i in picked]), vecs[picked])
    assert index.vectors([]).shape == (0, vecs.shape[1])


def test_k_larger_than_index_and_empty_results(data) -> None:
    ids, vecs, queries = data
    small = VectorIndex.build(ids[:3], vecs[:3], "flat")
    assert len(small.search(queries[0], 10)[0]) == 3


def test_wrong_dimension_query_is_a_library_error(data) -> None:
    ids, vecs, _ = data
    index = VectorIndex.build(ids, vecs, "flat")
    with pytest.raises(LibraryError, match="dimension"):
        index.search(np.ones(7, dtype=np.float32), 3)


def test_corrupt_file_is_a_library_error_with_a_fix(tmp_path: Path, data) -> None:
    ids, vecs, _ = data
    path = tmp_path / "v.faiss"
    VectorIndex.build(ids, vecs, "flat").save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(LibraryError) as err:
        VectorIndex.load(path)
    assert "--rebuild" in err.value.hint


def test_the_postgresql_store_builds_hnsw_where_the_embedded_store_scans_codes() -> None:
    """pgvector has no PQ / SQ8: a PostgreSQL language above FLAT_MAX gets its HNSW graph."""
    from types import SimpleNamespace

    from index.postgres.writer import PgWriter

    writer = SimpleNamespace(lib=SimpleNamespace(config=SimpleNamespace(vector_backend="auto")))
    assert choose_backend(FLAT_MAX + 1) == "pq"
    assert PgWriter._backend(writer, FLAT_MAX + 1) == "hnsw"
    assert PgWriter._backend(writer, FLAT_MAX) == "flat"
