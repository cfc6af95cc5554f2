"""Which FAISS index for a large language: candidates measured on bench/scale.py's vectors alone.

    python bench/vector_choice.py --size 1000000 [--specs flat sq8 ivf2048 ivf4096-sq8 hnsw32-80]

The English vectors of bench/scale.py's synthetic library of `--size` chunks (the same
deterministic SyntheticEmbedder, no library build) and its two query kinds: the dev
questions through the hashing FakeEmbedder, and stored vectors plus noise (queries near the
data). Exact top-10 by numpy over all vectors. Each candidate (wrapped in IndexIDMap2, as
index/embedded/vectors.py files it) is built in one fresh process and searched in another, loaded
normally and memory-mapped (IVF lists via `IO_FLAG_MMAP`, flat codes via `IO_FLAG_MMAP_IFC`):
build time, file size, load time, the first query after loading, p50/p95 of one query at a
time with one OpenMP thread (as the library searches), recall@10 of both kinds, and the
process's resident memory. Specs: flat, sq8, sqfp16, sq8-refine, ivf<nlist>, ivf<nlist>-sq8,
hnsw<M>-<efC>.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import english_vectors, peak_gb, rss_gb, watchdog  # noqa: E402

NPROBES = (8, 16, 32, 64, 128)
EFS = (128, 256, 512)
KF = (2, 4, 8)
PQ_KF = (32, 128, 512)


def prepare(n: int, out: Path, queries: int) -> None:
    """Vectors, ids, both query kinds and their exact top-10, as .npy files under `out`."""
    ids, vecs, (qv, qn), exact = english_vectors(n, queries)
    out.mkdir(parents=True, exist_ok=True)
    for name, qs in (("questions", qv), ("near", qn)):
        np.save(out / f"exact-{name}.npy", exact[name])
        np.save(out / f"q-{name}.npy", qs.astype(np.float32))
    np.save(out / "ids.npy", ids)
    np.save(out / "vecs.npy", vecs)


def make(spec: str, dim: int):  # noqa: ANN201 - an untrained faiss index
    import faiss

    ip = faiss.METRIC_INNER_PRODUCT
    if spec == "flat":
        return faiss.IndexFlatIP(dim)
    if spec.startswith("sq"):  # sq8, sqfp16, sq8-refine (exact re-rank of the SQ8 top k·f)
        bits = faiss.ScalarQuantizer.QT_fp16 if spec == "sqfp16" else faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexScalarQuantizer(dim, bits, ip)
        if spec.endswith("refine"):
            index = faiss.IndexRefineFlat(index)  # the wrapper keeps the SQ index alive
        return index
    if spec.startswith("pq"):  # pq<M>: 4-bit PQ codes in SIMD blocks (fast scan) + re-rank
        index = faiss.IndexRefineFlat(
            faiss.IndexPQFastScan(dim, int(spec[2:].split("-")[0]), 4, ip)
        )
        return index
    if spec.startswith("ivf"):
        nlist, _, kind = spec[3:].partition("-")
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "sq8":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, int(nlist), faiss.ScalarQuantizer.QT_8bit, ip
            )
        else:
            index = faiss.IndexIVFFlat(quantizer, dim, int(nlist), ip)
        index.own_fields = True
        quantizer.this.disown()
        return index
    m, efc = spec[4:].split("-")
    index = faiss.IndexHNSWFlat(dim, int(m), ip)
    index.hnsw.efConstruction = int(efc)
    return index


def build(spec: str, data: Path) -> dict:
    import faiss

    vecs, ids = np.load(data / "vecs.npy"), np.load(data / "ids.npy")
    t0 = time.perf_counter()
    inner = make(spec, vecs.shape[1])
    if not inner.is_trained:  # k-means / quantizer ranges on a fixed sample of the data
        sample = np.random.default_rng(0).choice(len(vecs), min(len(vecs), 200_000), False)
        inner.train(vecs[np.sort(sample)])
    if spec.startswith("ivf"):
        inner.make_direct_map()  # reconstruct by id (the retriever asks for stored vectors)
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(vecs, ids)
    build_s = time.perf_counter() - t0
    path = data / f"{spec}.faiss"
    faiss.write_index(index, str(path))
    return {"build_s": build_s, "build_peak_gb": peak_gb(), "file_gb": path.stat().st_size / 1e9}


def search(spec: str, data: Path, mmap: bool) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)
    qs = {k: np.load(data / f"q-{k}.npy") for k in ("questions", "near")}
    exact = {k: np.load(data / f"exact-{k}.npy") for k in qs}
    before = rss_gb()
    t0 = time.perf_counter()
    # IVF lists memory-mapped as on-disk lists; flat codes (flat, SQ, HNSW storage) as views
    flag = faiss.IO_FLAG_MMAP if spec.startswith("ivf") else faiss.IO_FLAG_MMAP_IFC
    index = faiss.read_index(str(data / f"{spec}.faiss"), flag if mmap else 0)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(qs["questions"][:1], 10)
    first_ms = (time.perf_counter() - t0) * 1000
    out: dict = {"load_s": load_s, "first_ms": first_ms, "load_rss_gb": rss_gb() - before}
    inner = faiss.downcast_index(index.index)
    knobs = {"ivf": ("nprobe", NPROBES), "hnsw": ("efSearch", EFS), "sq8-r": ("k_factor", KF),
             "pq": ("k_factor", PQ_KF)}  # fmt: skip
    knob, values = next((v for k, v in knobs.items() if spec.startswith(k)), ("", (0,)))
    if mmap:  # the same searches, so one setting (the middle one) is enough to compare
        values = values[len(values) // 2 :][:1]
    for v in values:
        if knob == "efSearch":
            inner.hnsw.efSearch = v
        elif knob:
            setattr(inner, knob, v)
        row = {}
        for kind, q in qs.items():
            ms, hits = [], []
            for qi, e in zip(q, exact[kind], strict=True):
                t0 = time.perf_counter()
                _, got = index.search(qi[None, :], 10)
                ms.append((time.perf_counter() - t0) * 1000)
                hits.append(len(set(got[0].tolist()) & set(e.tolist())) / 10)
            row[kind] = (float(np.mean(hits)), float(np.percentile(ms, 50)),
                         float(np.percentile(ms, 95)))  # fmt: skip
        out[f"{knob}{v}" if knob else "exact"] = row
    out["rss_gb"] = rss_gb()
    return out


def child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout)[-300:]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--specs", nargs="+", default=["flat", "sq8", "ivf1024", "ivf4096",
                                                   "ivf4096-sq8"])  # fmt: skip
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/askdocs-vchoice"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--max-rss-gb", type=float, default=8.0)
    ap.add_argument("--step", choices=["prepare", "build", "search", "search-mmap"],
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    data = args.scratch / str(args.size)
    if args.step:
        watchdog(args.max_rss_gb)
        spec = args.specs[0]
        if args.step == "prepare":
            prepare(args.size, data, args.queries)
            out = {"n_en": len(np.load(data / "ids.npy")), "peak_gb": peak_gb()}
        elif args.step == "build":
            out = build(spec, data)
        else:
            out = search(spec, data, args.step == "search-mmap")
        print(json.dumps(out), flush=True)
        return

    common = ["--size", str(args.size), "--scratch", str(args.scratch)]
    common += ["--queries", str(args.queries), "--max-rss-gb", str(args.max_rss_gb)]
    if not (data / "vecs.npy").exists():
        print(json.dumps(child([*common, "--step", "prepare"])), flush=True)
    print(f"English vectors of the {args.size:,}-chunk synthetic library; one thread per query")
    print(
        "| index | setting | build s | file GB | load s | load s mmap | first query ms (mmap) "
        "| p50 / p95 ms | recall@10 questions | recall@10 near-data | RSS GB (mmap) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for spec in args.specs:
        b = child([*common, "--specs", spec, "--step", "build"])
        s = child([*common, "--specs", spec, "--step", "search"])
        m = child([*common, "--specs", spec, "--step", "search-mmap"])
        print(f"<!-- {spec} {json.dumps({'build': b, 'search': s, 'mmap': m})} -->", flush=True)
        if "error" in b or "error" in s:
            print(f"| {spec} | failed: {b.get('error') or s.get('error')!r} |", flush=True)
            continue
        for key, row in s.items():
            if not isinstance(row, dict):
                continue
            mm = m.get(key, {})
            qr, qp50, qp95 = row["questions"]
            nr = row["near"][0]
            mm_load = f"{m['load_s']:.2f}" if "load_s" in m else "failed"
            mm_first = f" ({m['first_ms']:.1f})" if m and "first_ms" in m else ""
            mm_rss = f" ({m['rss_gb']:.2f})" if m and "rss_gb" in m else ""
            mm_rec = f" ({mm['questions'][0]:.3f})" if mm else ""
            print(
                f"| {spec} | {key} | {b['build_s']:.0f} | {b['file_gb']:.2f} | {s['load_s']:.2f} "
                f"| {mm_load} | {s['first_ms']:.1f}{mm_first} | {qp50:.2f} / {qp95:.2f} "
                f"| {qr:.3f}{mm_rec} | {nr:.3f} | {s['rss_gb']:.2f}{mm_rss} |",
                flush=True,
            )
        (data / f"{spec}.faiss").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
