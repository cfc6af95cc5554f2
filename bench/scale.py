"""The embedded store at scale: synthetic libraries of 10k, 100k, 1M chunks, no model.

    python bench/scale.py [--sizes 10000 100000 1000000] [--backend auto] [--scratch DIR]
    python bench/scale.py --sizes 100000 --backend flat      # compare vector backends

Text comes from the bundled corpus (both languages, chunked and tokenized as askdocs does),
repeated as numbered copies of its documents until the size is reached. Vectors come from a
deterministic synthetic embedder (dimension 384, as multilingual-e5-small) so that the model
is not the bottleneck: a copy of base chunk j gets normalise(f(j) + 0.5·f(r) + 0.3·g), with f
the hashing FakeEmbedder of the base passage, r another base chunk and g Gaussian noise, all
seeded by position; questions are the dev questions through the same FakeEmbedder. The
library is written through the real Writer (store, per-language FAISS and bm25s files,
manifest, publish), only planning from files and embedding are skipped.

Each size runs in two fresh processes (build, then search) so that peak memory and open time
are their own. Search: open the library and load every index (as `askdocs serve` does; a
memory-mapped FAISS file counts one search that touches its pages), the time from opening
to the first hybrid answer, then hybrid `Retriever.search` for the dev questions (p50/p95
after a warm-up), dense
recall@10 of the FAISS index against exact search over the same vectors, strict (the exact
top-10 ids) and tie-aware (a returned id whose true cosine is within 1e-4 of the true 10th
best counts: the question vectors meet many near-copies of one chunk), and resident memory. A watchdog stops a process above --max-rss-gb.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"


def _questions(n: int) -> list[str]:
    """The first `n` questions of dev and dev2: they only drive the searches."""
    return [
        json.loads(line)["question"]
        for name in ("dev.jsonl", "dev2.jsonl")
        for line in (EVAL / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ][:n]


DIM = 384


def rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def watchdog(limit_gb: float) -> None:
    def watch() -> None:
        while True:
            if rss_gb() > limit_gb:
                print(json.dumps({"error": f"RSS above {limit_gb} GB"}), flush=True)
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


class SyntheticEmbedder:
    """Passages: made in the order the Writer asks for them, from the base vectors of the
    chunks `rows` copies (each batch seeded by its position); queries: the hashing
    FakeEmbedder. Deterministic, and fast enough for a million."""

    name = "synthetic-384"
    dim = DIM

    def __init__(self, base: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        from tests.helpers import FakeEmbedder

        self.fake = FakeEmbedder(dim=DIM, name=self.name)
        self.base, self.rows = base, rows
        self.next = 0

    def embed(self, texts: list[str], kind: str = "passage", progress=None) -> np.ndarray:  # noqa: ANN001
        if kind == "query" or self.base is None:
            return self.fake.embed(texts, kind)
        j = self.rows[self.next : self.next + len(texts)]
        rng = np.random.default_rng(self.next)
        self.next += len(texts)
        vecs = self.base[j] + 0.5 * self.base[rng.integers(0, len(self.base), len(j))]
        vecs += 0.3 * rng.standard_normal(vecs.shape, dtype=np.float32) / np.sqrt(DIM)
        return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def faiss_inner(index):  # noqa: ANN001, ANN201 - the HNSW inside a VectorIndex's id map
    import faiss

    return faiss.downcast_index(index.index.index)


TIE = 1e-4  # a hit within this of the true 10th best cosine is as good as the 10th


@dataclass(frozen=True)
class Truth:
    """Exact search over one language's vectors for a set of query rows: each query's true
    top-10 ids and its true 10th best cosine, and every stored vector's cosine to it (to
    judge a returned id that is not in the exact top 10 but ties with it)."""

    top: np.ndarray  # (queries, 10) ids, unordered
    kth: np.ndarray  # (queries,) the true 10th best cosine
    ids: np.ndarray  # stored ids, sorted
    sims: np.ndarray  # (stored, queries) cosines, rows in the order of `ids`


def exact_truth(ids: np.ndarray, vecs: np.ndarray, qs: np.ndarray) -> Truth:
    order = np.argsort(ids)
    ids, vecs = ids[order], vecs[order]
    sims = np.concatenate([vecs[i : i + 50_000] @ qs.T for i in range(0, len(vecs), 50_000)])
    top_rows = np.argpartition(-sims, 9, axis=0)[:10]  # (10, queries)
    kth = sims[top_rows, np.arange(sims.shape[1])].min(axis=0)
    return Truth(ids[top_rows.T], kth, ids, sims)


def measure(index, qs: np.ndarray, truth: Truth, times: list | None = None) -> tuple:  # noqa: ANN001
    """Recall@10 of `index` for the query rows `qs`: strict (the exact top-10 ids) and
    tie-aware (a returned id counts when its true cosine is within TIE of the true 10th
    best: the bench's question vectors have many near-copies of one chunk, and which ten of
    equals come back matters to no one)."""
    hits, ties = [], []
    for j, q in enumerate(qs):
        t0 = time.perf_counter()
        got = [i for i, _ in index.search(q, 10)[0]]
        if times is not None:
            times.append((time.perf_counter() - t0) * 1000)
        hits.append(len(set(got) & set(truth.top[j].tolist())) / 10)
        rows = np.searchsorted(truth.ids, np.asarray(got, dtype=np.int64))
        true = truth.sims[np.minimum(rows, len(truth.ids) - 1), j]
        ties.append(min(10, int((true >= truth.kth[j] - TIE).sum())) / 10)
    return float(np.mean(hits)), float(np.mean(ties))


def base_chunks():  # noqa: ANN201 - (documents, chunks per document, tokens per chunk)
    from index.config import LibraryConfig
    from index.plan import lexical_text
    from ingest.chunking import chunk_document
    from ingest.loading import load_paths
    from ingest.text import tokenize

    docs = load_paths([ROOT / "corpus"]).documents
    settings = LibraryConfig().chunk
    chunks = {d.doc_id: chunk_document(d, settings) for d in docs}
    t0 = time.perf_counter()
    tokens = {
        c.chunk_id: tokenize(lexical_text(c.heading, c.text)) for cs in chunks.values() for c in cs
    }
    per_s = len(tokens) / (time.perf_counter() - t0)
    return docs, chunks, tokens, per_s


def plan_for(n: int):  # noqa: ANN201 - (writer plan, base vectors, rows, tokenize chunks/s)
    from index.plan import Addition, Plan, passage_text
    from ingest.records import Chunk, content_hash

    docs, chunks, tokens, tok_per_s = base_chunks()
    flat = [(d, c) for d in docs for c in chunks[d.doc_id]]
    fake = SyntheticEmbedder().fake
    base = fake.embed([passage_text(c, d.title) for d, c in flat], "passage")
    plan, rows, copy = Plan(), [], 0
    while len(rows) < n:
        for d in docs:
            if len(rows) >= n:
                break
            doc_id = content_hash(f"{d.doc_id}:{copy}")
            doc = replace(d, doc_id=doc_id, source=f"copy{copy:04d}/{d.source}")
            cs = [
                Chunk(Chunk.make_id(doc_id, c.start, c.end), doc_id, doc.source, c.start,
                      c.end, c.text, c.heading, c.lang, c.hash)
                for c in chunks[d.doc_id][: n - len(rows)]
            ]  # fmt: skip
            toks = [tokens[c.chunk_id] for c in chunks[d.doc_id][: len(cs)]]
            path = f"/synthetic/{doc.source}"
            plan.additions.append(Addition(doc, path, doc_id, cs, toks))
            start = next(i for i, (dd, _) in enumerate(flat) if dd.doc_id == d.doc_id)
            rows += range(start, start + len(cs))
        copy += 1
    plan.added = len(plan.additions)
    return plan, base, np.asarray(rows), tok_per_s


def config(scratch: Path, n: int, backend: str):  # noqa: ANN201
    from index.config import LibraryConfig

    # --store URL: the PostgreSQL store (ASKDOCS_STORE for the step processes)
    store = os.environ.get("ASKDOCS_STORE", "")
    return LibraryConfig(
        name=f"scale-{n}-{backend}",
        home=scratch,
        model="synthetic",
        vector_backend=backend,
        store=store,
    )


def build(n: int, scratch: Path, backend: str) -> dict:
    from index.library import Library

    cfg = config(scratch, n, backend)
    shutil.rmtree(cfg.path, ignore_errors=True)
    if cfg.postgres:  # likewise a fresh schema: a rebuild in place keeps the graph and
        from index.postgres.generation import connect, schema_of  # maintains it row by row

        with connect(cfg.store) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(cfg)}" CASCADE')
    t0 = time.perf_counter()
    plan, base, rows, tok_per_s = plan_for(n)
    prepared = time.perf_counter() - t0
    lib = Library.open(cfg, SyntheticEmbedder(base, rows), create=True, fresh=cfg.postgres)
    t0 = time.perf_counter()
    writer = lib._writer(None)  # the store's own writer and lock
    with writer._locked():
        writer._write(plan)
    seconds = time.perf_counter() - t0
    stats = lib.stats()
    return {
        "n": n,
        "build_s": seconds,
        "prepare_s": prepared,
        "tokenize_per_s": tok_per_s,
        "chunks": stats.chunks,
        "backends": stats.backends,
        "disk_gb": stats.bytes["total"] / 1e9,
        "build_peak_gb": peak_gb(),
    }


def search(n: int, scratch: Path, backend: str, queries: int) -> dict:
    from assistant.retrieve import Retriever
    from index.embedded.vectors import VectorIndex
    from index.library import Library

    questions = _questions(queries)
    emb = SyntheticEmbedder()
    t0 = time.perf_counter()
    lib = Library.open(config(scratch, n, backend), emb)
    for lang in lib.langs():  # what `askdocs serve` does before its first request
        lib.lexical("warm", 1, lang)
        lib.dense(np.zeros(DIM, dtype=np.float32), 1, lang)
    open_s = time.perf_counter() - t0
    open_rss = rss_gb()
    retriever = Retriever(lib)
    retriever.search(questions[0], k=10)
    first_s = time.perf_counter() - t0  # from opening to the first hybrid answer
    for q in questions[:5]:
        retriever.search(q, k=10)
    ms = []
    for q in questions:
        t0 = time.perf_counter()
        retriever.search(q, k=10)
        ms.append((time.perf_counter() - t0) * 1000)
    # the same questions again: every term block a question needs is cached by now (the
    # PostgreSQL store's reader cache; for the embedded store the pages are in memory)
    warm = []
    for q in questions:
        t0 = time.perf_counter()
        retriever.search(q, k=10)
        warm.append((time.perf_counter() - t0) * 1000)
    search_rss = rss_gb()

    # Dense recall@10 of each language's index against exact search over the same vectors,
    # for the questions' vectors and for stored vectors plus noise (queries near the data);
    # for HNSW also at other efSearch values (a search-time setting: no rebuild).
    qv = emb.embed(questions, "query")
    recall, near, dense_ms, curve = {}, {}, [], {}
    for lang in lib.langs():
        index: VectorIndex = lib._gen.vectors(lang)
        ids, vecs = lib._gen.store.vectors(lang, DIM)
        rng = np.random.default_rng(1)
        qn = vecs[rng.integers(0, len(vecs), len(qv))] + 0.05 * rng.standard_normal(
            (len(qv), DIM), dtype=np.float32
        )
        qn /= np.linalg.norm(qn, axis=1, keepdims=True)
        exact = {"questions": exact_truth(ids, vecs, qv), "near": exact_truth(ids, vecs, qn)}
        del vecs

        recall[lang] = measure(index, qv, exact["questions"], dense_ms)
        near[lang] = measure(index, qn, exact["near"])
        if index.backend == "hnsw" and not lib.config.postgres:
            inner = faiss_inner(index)
            shipped = inner.hnsw.efSearch
            for ef in (64, 128, 256, 512, 1024):
                inner.hnsw.efSearch = ef
                ef_ms: list[float] = []
                curve[f"{lang} ef{ef}"] = (
                    measure(index, qv, exact["questions"], ef_ms),
                    measure(index, qn, exact["near"]),
                    float(np.percentile(ef_ms, 50)),
                )
            inner.hnsw.efSearch = shipped
        if index.backend == "hnsw" and lib.config.postgres:  # hnsw.ef_search, per search
            gen, shipped = lib._gen, lib._gen.ef_search
            for ef in (40, 100, 200, 400, 1000):
                gen.ef_search = ef
                ef_ms = []
                curve[f"{lang} ef{ef}"] = (
                    measure(index, qv, exact["questions"], ef_ms),
                    measure(index, qn, exact["near"]),
                    float(np.percentile(ef_ms, 50)),
                )
            gen.ef_search = shipped
    return {
        "open_s": open_s,
        "first_answer_s": first_s,
        "hybrid_p50_ms": float(np.percentile(ms, 50)),
        "hybrid_p95_ms": float(np.percentile(ms, 95)),
        "hybrid_again_p50_ms": float(np.percentile(warm, 50)),
        "hybrid_again_p95_ms": float(np.percentile(warm, 95)),
        "dense_p50_ms": float(np.percentile(dense_ms, 50)),
        "recall10": recall,
        "recall10_near": near,
        "ef_curve": curve,
        "open_rss_gb": open_rss,
        "search_rss_gb": search_rss,
        "queries": len(questions),
    }


def english_vectors(n: int, queries: int) -> tuple:
    """The English part of size `n`'s synthetic vectors with their ids, the two query kinds
    (question vectors; near-data: stored vectors plus noise) and each kind's `Truth`."""
    plan, base, rows, _ = plan_for(n)
    en = np.asarray([c.lang == "en" for a in plan.additions for c in a.chunks])
    ids = np.asarray([c.chunk_id for a in plan.additions for c in a.chunks], dtype=np.int64)[en]
    del plan
    emb = SyntheticEmbedder(base, rows)
    vecs = np.concatenate([emb.embed([""] * len(j)) for j in np.array_split(rows, 100)])[en]
    qv = emb.fake.embed(_questions(queries), "query")
    rng = np.random.default_rng(1)
    qn = vecs[rng.integers(0, len(vecs), len(qv))]
    qn = qn + 0.05 * rng.standard_normal(qn.shape, dtype=np.float32)
    qn /= np.linalg.norm(qn, axis=1, keepdims=True)
    exact = {"questions": exact_truth(ids, vecs, qv), "near": exact_truth(ids, vecs, qn)}
    return ids, vecs, (qv, qn), exact


def dense_only(n: int, scratch: Path, queries: int) -> dict:
    """The vector side alone at size `n` (its English part, as the library would file it):
    for when a whole library of that size does not fit the memory allowed (see the notes)."""
    import gc

    from index.embedded.vectors import VectorIndex

    ids, vecs, (qv, qn), exact = english_vectors(n, queries)
    t0 = time.perf_counter()
    index = VectorIndex.build(ids, vecs, "auto")
    build_s = time.perf_counter() - t0
    path = scratch / f"dense-{n}.faiss"
    scratch.mkdir(parents=True, exist_ok=True)
    index.save(path)
    del index, vecs
    gc.collect()
    before = rss_gb()
    t0 = time.perf_counter()
    index = VectorIndex.load(path)
    load_s = time.perf_counter() - t0
    index_gb, after = rss_gb() - before, rss_gb()
    out = {"n_en": len(ids), "backend": index.backend, "build_s": build_s,
           "load_s": load_s, "index_rss_gb": index_gb, "rss_gb": after, "peak_gb": peak_gb(),
           "curve": {}}  # fmt: skip
    inner = faiss_inner(index) if index.backend == "hnsw" else None
    for ef in (64, 128, 256, 512) if inner is not None else (0,):
        if inner is not None:
            inner.hnsw.efSearch = ef
        ms: list[float] = []
        out["curve"][ef] = (
            measure(index, qv, exact["questions"], ms),
            measure(index, qn, exact["near"]),
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 95)),
        )
    path.unlink()
    return out


def lexical_only(n: int, queries: int) -> dict:
    """The English bm25s index alone at size `n`: build time and peak (tokens shared between
    copies here, unlike the Writer's path), and BM25 query time for the dev questions (the
    retriever asks each language's index for its top DEPTH)."""
    from assistant.retrieve import DEPTH
    from index.embedded.lexical import LexicalIndex
    from ingest.text import tokenize

    plan, _, _, _ = plan_for(n)
    pairs = [
        (c.chunk_id, toks)
        for a in plan.additions
        for c, toks in zip(a.chunks, a.tokens, strict=True)
        if c.lang == "en"
    ]
    del plan
    t0 = time.perf_counter()
    index = LexicalIndex.build([i for i, _ in pairs], [t for _, t in pairs])
    build_s = time.perf_counter() - t0
    questions = _questions(queries)
    ms = []
    for q in questions:
        tokens = tokenize(q)
        t0 = time.perf_counter()
        index.search(tokens, DEPTH)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"n_en": len(pairs), "build_s": build_s, "rss_gb": rss_gb(), "peak_gb": peak_gb(),
            "bm25_p50_ms": float(np.percentile(ms, 50)),
            "bm25_p95_ms": float(np.percentile(ms, 95))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--backend", default="auto", choices=["auto", "flat", "sq8", "hnsw"])
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/askdocs-scale"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--max-rss-gb", type=float, default=8.0)
    ap.add_argument("--keep", action="store_true", help="keep the libraries after the run")
    ap.add_argument("--step", choices=["build", "search"], help=argparse.SUPPRESS)
    ap.add_argument("--dense-only", action="store_true", help="the FAISS index alone")
    ap.add_argument("--lexical-only", action="store_true", help="the English bm25s index alone")
    ap.add_argument("--store", default=None, help="a postgresql:// URL: the PostgreSQL store")
    args = ap.parse_args()
    if args.store is not None:
        os.environ["ASKDOCS_STORE"] = args.store  # for the step processes too

    if args.lexical_only:
        watchdog(args.max_rss_gb)
        for n in args.sizes:
            print(json.dumps({"n": n, **lexical_only(n, args.queries)}), flush=True)
        return
    if args.dense_only:
        watchdog(args.max_rss_gb)
        for n in args.sizes:
            print(json.dumps({"n": n, **dense_only(n, args.scratch, args.queries)}), flush=True)
        return
    if args.step:  # one step of one size, in its own process
        watchdog(args.max_rss_gb)
        n = args.sizes[0]
        if args.step == "build":
            out = build(n, args.scratch, args.backend)
        else:
            out = search(n, args.scratch, args.backend, args.queries)
        print(json.dumps(out), flush=True)
        return

    print("| chunks (zh/en) | index | build s | build peak GB | open s (to 1st answer) "
          "| hybrid p50 ms "
          "| hybrid p95 ms | dense p50 ms | recall@10 (zh/en) | tie-aware recall@10 (zh/en) "
          "| RSS GB | disk GB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        row: dict = {}
        for step in ("build", "search"):
            cmd = [sys.executable, __file__, "--step", step, "--sizes", str(n)]
            cmd += ["--backend", args.backend, "--scratch", str(args.scratch)]
            cmd += ["--queries", str(args.queries), "--max-rss-gb", str(args.max_rss_gb)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
            if done.returncode or not lines:
                print(f"| {n} | {step} failed: {(done.stderr or done.stdout)[-500:]!r} |")
                break
            row.update(json.loads(lines[-1]))
        else:
            c, b, r = row["chunks"], row["backends"], row["recall10"]
            z = (0.0, 0.0)  # a language the library lacks: (strict, tie-aware)
            print(
                f"| {n:,} ({c.get('zh', 0):,}/{c.get('en', 0):,}) "
                f"| {b.get('zh')}/{b.get('en')} | {row['build_s']:.1f} "
                f"| {row['build_peak_gb']:.2f} | {row['open_s']:.2f} ({row['first_answer_s']:.2f}) "
                f"| {row['hybrid_p50_ms']:.1f} | {row['hybrid_p95_ms']:.1f} "
                f"| {row['dense_p50_ms']:.2f} | {r.get('zh', z)[0]:.3f}/{r.get('en', z)[0]:.3f} "
                f"| {r.get('zh', z)[1]:.3f}/{r.get('en', z)[1]:.3f} "
                f"| {row['search_rss_gb']:.2f} | {row['disk_gb']:.2f} |",
                flush=True,
            )
            print(f"<!-- {json.dumps(row)} -->", flush=True)
        if not args.keep:
            shutil.rmtree(config(args.scratch, n, args.backend).path, ignore_errors=True)


if __name__ == "__main__":
    main()
