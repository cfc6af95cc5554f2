"""Chunk counts and size distribution of the bundled library at two chunk settings.

    python bench/chunks.py [--settings 400/80 1000/200] [PATH ...]

Prints one row per file and setting plus a total row: chunks, min / median / p90 / max
characters, mean overlap between neighbouring chunks, and chunking time.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from pathlib import Path

from ingest.chunking import ChunkSettings, chunk_document
from ingest.loading import load_paths

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def _row(name: str, setting: str, sizes: list[int], overlaps: list[int], secs: float) -> str:
    sizes = sorted(sizes)
    p90 = sizes[min(len(sizes) - 1, int(0.9 * len(sizes)))]
    overlap = statistics.mean(overlaps) if overlaps else 0.0
    return (
        f"{name:<30} {setting:>8} {len(sizes):>7} {sizes[0]:>5} {statistics.median(sizes):>7.0f} "
        f"{p90:>5} {sizes[-1]:>5} {overlap:>8.1f} {secs * 1000:>8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(CORPUS)])
    parser.add_argument("--settings", nargs="+", default=["400/80", "1000/200"])
    args = parser.parse_args()

    t0 = time.perf_counter()
    report = load_paths(args.paths)
    load_s = time.perf_counter() - t0
    for warning in report.warnings:
        print("warning:", warning)
    t0 = time.perf_counter()
    importlib.import_module("langchain_text_splitters")  # once per process; not chunking time
    import_s = time.perf_counter() - t0
    print(f"loaded {len(report.documents)} files in {load_s * 1000:.0f} ms; ", end="")
    print(f"LangChain import {import_s * 1000:.0f} ms")
    print(
        f"{'file':<30} {'setting':>8} {'chunks':>7} {'min':>5} {'median':>7} {'p90':>5} "
        f"{'max':>5} {'overlap':>8} {'ms':>8}"
    )
    for setting in args.settings:
        size, overlap = (int(x) for x in setting.split("/"))
        cfg = ChunkSettings(size=size, overlap=overlap)
        all_sizes: list[int] = []
        all_overlaps: list[int] = []
        total_s = 0.0
        for doc in report.documents:
            t0 = time.perf_counter()
            chunks = chunk_document(doc, cfg)
            secs = time.perf_counter() - t0
            total_s += secs
            sizes = [len(c.text) for c in chunks]
            overlaps = [max(0, a.end - b.start) for a, b in zip(chunks, chunks[1:], strict=False)]
            all_sizes += sizes
            all_overlaps += overlaps
            print(_row(Path(doc.source).name[:30], setting, sizes, overlaps, secs))
        print(_row("TOTAL", setting, all_sizes, all_overlaps, total_s))


if __name__ == "__main__":
    main()
