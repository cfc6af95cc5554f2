"""Passage paths against fp32: speed and cosine on every chunk of a library's text.

    python bench/passage_paths.py [--home H] [--paths onnx-int8,torch-bf16,onnx-fp32]
                                  [--n 0] [CORPUS ...]

Chunks the corpus (default: the bundled one) as askdocs ingest does and embeds every
passage (`index.embedded.writer.passage_text`) with torch fp32, the reference, and with each
path of `index.model.passages`. Per path: CPU ms per passage on one thread (less sensitive to
a shared machine than wall time: every path runs one batch per thread at ingest) and the
cosine of each passage's vector to fp32's (min, 1st percentile, median, how many below the
bar of 0.995). --n samples that many chunks (0: all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BAR = 0.995


def passages(paths: list[str]) -> list[str]:
    from index.config import LibraryConfig
    from index.plan import passage_text
    from ingest.chunking import chunk_document
    from ingest.loading import load_paths

    settings = LibraryConfig().chunk
    docs = load_paths(paths).documents
    return [passage_text(c, d.title) for d in docs for c in chunk_document(d, settings)]


def embedder(path: str, model_dir: Path):  # noqa: ANN201
    """The embedder an ingest on `path` uses (its batch size included)."""
    from index.model import passages
    from index.model.embedder import SentenceTransformerEmbedder

    os.environ[passages.ENV] = path
    found = passages.load(model_dir, "x")
    precision = passages.torch_precision() or "auto"
    return found or SentenceTransformerEmbedder(model_dir, "x", precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", default=[str(ROOT / "corpus")])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--paths", default="onnx-int8,torch-bf16,onnx-fp32")
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args()
    if args.home:
        os.environ["ASKDOCS_HOME"] = str(args.home)
    os.environ["ASKDOCS_THREADS"] = "1"  # CPU per passage on one thread
    from index.config import LibraryConfig
    from index.model.embedder import default_model

    model_dir, _ = default_model(LibraryConfig())
    texts = passages(args.corpus)
    if args.n:
        rng = np.random.default_rng(0)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), args.n, replace=False))]
    rows, ref = [], None
    for path in ["torch-fp32", *args.paths.split(",")]:
        model = embedder(path, model_dir)
        model.embed(texts[:4])  # warm-up
        c0 = time.process_time()
        vecs = model.embed(texts, "passage")
        cpu_ms = (time.process_time() - c0) * 1000 / len(texts)
        del model
        if ref is None:
            ref = vecs
        cos = (ref * vecs).sum(1)
        below = int((cos < BAR).sum())
        rows.append((path, cpu_ms, cos.min(), np.percentile(cos, 1), np.median(cos), below))
        print(f"done {path}", file=sys.stderr, flush=True)
    print(f"{len(texts)} passages; load average {os.getloadavg()[0]:.1f}")
    print(f"| path | CPU ms/passage (1 thread) | vs fp32 | cosine min | p1 | median | < {BAR} |")
    print("|---|---|---|---|---|---|---|")
    base = rows[0][1]
    for path, ms, lo, p1, med, below in rows:
        print(
            f"| {path} | {ms:.1f} | {base / ms:.2f}x | {lo:.5f} | {p1:.5f} | {med:.5f} | {below} |"
        )


if __name__ == "__main__":
    main()
