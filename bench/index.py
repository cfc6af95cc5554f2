"""Which FAISS index per library size: recall@10 against brute force, query latency, build time.

    python bench/index.py [--sizes 2000 20000 100000] [--dim 384] [--queries 200]
    python bench/index.py --library NAME [--questions ../shared/eval/dev.jsonl]

Vectors are "random-ish": a mixture of Gaussian clusters around random centres, L2-normalised,
which is closer to sentence embeddings (topical clusters) than uniform noise. Queries are fresh
draws from the same mixture. Latency is one query at a time (what a person's search does),
median over the queries, with one OpenMP thread (as the library searches; builds use all). The chosen threshold is
`index.embedded.vectors.FLAT_MAX`; rerun this after changing FAISS settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def mixture(
    n: int, dim: int, rng: np.random.Generator, centres: np.ndarray, noise: float
) -> np.ndarray:
    labels = rng.integers(0, len(centres), n)
    # noise of norm `noise` around unit centres; 1.0 puts same-cluster pairs at cosine ~0.5,
    # and the order inside a cluster is near random in 384 dims: hard for a graph or IVF
    x = centres[labels] + rng.normal(scale=noise / np.sqrt(dim), size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(kind: str, vectors: np.ndarray, params: dict):  # noqa: ANN201 - a faiss index
    import faiss

    dim = vectors.shape[1]
    if kind == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = params["efc"]
    else:  # ivf
        quant = faiss.IndexFlatIP(dim)
        inner = faiss.IndexIVFFlat(quant, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        inner.train(vectors)
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    return index, inner


def set_search(kind: str, inner, params: dict) -> None:  # noqa: ANN001
    if kind == "hnsw":
        inner.hnsw.efSearch = params["ef"]
    elif kind == "ivf":
        inner.nprobe = params["nprobe"]


def library_latency(name: str, questions: Path, model: str | None) -> None:
    """Warm per-question latency on a built library: query embedding, dense, lexical."""
    import json
    from dataclasses import replace

    from index.config import LibraryConfig
    from index.library import Library

    config = LibraryConfig(name=name)
    config = replace(config, model=model or Library.built_model(config) or config.model)
    lib = Library.open(config)
    qs = [json.loads(line)["question"] for line in questions.read_text().splitlines() if line]
    t0 = time.perf_counter()
    embedder = lib.embedder
    lib.dense(embedder.embed(["warm up"], "query")[0], 10)
    lib.lexical("warm up 预热", 10)
    print(
        f"library {name}: {lib.langs()}, model load + first query {time.perf_counter() - t0:.1f} s"
    )
    times: dict[str, list[float]] = {"embed": [], "dense": [], "lexical": [], "total": []}
    for q in qs:
        t0 = time.perf_counter()
        vec = embedder.embed([q], "query")[0]
        t1 = time.perf_counter()
        for lang in lib.langs():
            lib.dense(vec, 10, lang=lang)
        t2 = time.perf_counter()
        for lang in lib.langs():
            lib.lexical(q, 10, lang=lang)
        t3 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            times[key].append(dt * 1000)
    print(f"{len(qs)} questions, per-language dense and lexical top-10 for each")
    print("| step | p50 ms | p95 ms |\n|---|---|---|")
    for key, values in times.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"| {key} | {p50:.1f} | {p95:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--noise", type=float, default=1.0, help="cluster spread (0.6 is easy)")
    ap.add_argument("--library", help="instead: warm search latency on this built library")
    ap.add_argument("--questions", type=Path, default=Path("../shared/eval/dev.jsonl"))
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    if args.library:
        library_latency(args.library, args.questions, args.model)
        return
    import faiss

    from index.embedded.vectors import FLAT_MAX

    threads = faiss.omp_get_max_threads()
    rng = np.random.default_rng(0)
    print(
        f"faiss {faiss.__version__}, threads {faiss.omp_get_max_threads()}, cpus {os.cpu_count()}"
    )
    print(f"current FLAT_MAX = {FLAT_MAX}, noise {args.noise}")
    header = "| n | index | params | build s | recall@10 | p50 ms | p95 ms |"
    print(header + "\n|" + "---|" * 7)
    for n in args.sizes:
        centres = rng.normal(size=(max(8, n // 200), args.dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        data = mixture(n, args.dim, rng, centres, args.noise)
        queries = mixture(args.queries, args.dim, rng, centres, args.noise)
        truth = np.argsort(-(queries @ data.T), axis=1)[:, : args.k]
        nlist = int(4 * np.sqrt(n))
        configs = [
            ("flat", {}, [{}]),
            ("hnsw", {"M": 32, "efc": 80}, [{"ef": 64}, {"ef": 128}]),
            ("ivf", {"nlist": nlist}, [{"nprobe": 8}, {"nprobe": 32}]),
        ]
        for kind, build_params, search_params in configs:
            faiss.omp_set_num_threads(threads)  # builds use every thread, as the library does
            t0 = time.perf_counter()
            index, inner = build(kind, data, build_params)
            build_s = time.perf_counter() - t0
            faiss.omp_set_num_threads(1)  # one query, one thread, as index/embedded/vectors.py
            for sp in search_params:
                set_search(kind, inner, sp)
                times, hits = [], 0
                for qi, q in enumerate(queries):
                    t0 = time.perf_counter()
                    _, ids = index.search(q[None], args.k)
                    times.append((time.perf_counter() - t0) * 1000)
                    hits += len(set(ids[0].tolist()) & set(truth[qi].tolist()))
                recall = hits / (len(queries) * args.k)
                params = ", ".join(f"{k}={v}" for k, v in {**build_params, **sp}.items())
                p50, p95 = np.percentile(times, [50, 95])
                print(
                    f"| {n} | {kind} | {params or '-'} | {build_s:.2f} | {recall:.3f} "
                    f"| {p50:.3f} | {p95:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
