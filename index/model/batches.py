"""How a model runs its texts, shared by both runtimes (torch in index/model/embedder.py,
ONNX Runtime in index/model/onnx.py): the text kinds, progress, threads and length batches."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from ingest import settings

Kind = Literal["query", "passage"]
# Called after each batch with (texts done, texts in all).
Progress = Callable[[int, int], None]


def cores() -> int:
    """Cores this process may use ($ASKDOCS_THREADS overrides); affinity respects cgroups."""
    env = settings.THREADS.get()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def group_by_length(lengths: list[int], max_batch: int, slack: float = 0.1) -> list[list[int]]:
    """Indices, longest first, in batches of similar length: a batch ends when it is full or
    the next text is more than `slack` shorter than its first. Padding is most of the cost
    of naive batching on CPU (2x at batch 32 on 400-character chunks)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if cur and len(cur) < max_batch and lengths[cur[0]] - lengths[i] <= slack * lengths[cur[0]]:
            cur.append(i)
        else:
            batches.append([i])
    return batches


def run_batches(
    forward: Callable[[Any], np.ndarray],
    inputs: Iterable[Any],
    batches: list[list[int]],
    out: np.ndarray,
    workers: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """`forward` over each batch's input on `workers` threads (both backends release the
    GIL), each batch's rows written to `out` at its texts' places, then every row
    re-normalised in fp32 (a bf16 model normalises in bf16)."""
    done = 0
    with ThreadPoolExecutor(workers) as pool:
        for idx, vecs in zip(batches, pool.map(forward, inputs), strict=True):
            out[idx] = vecs
            done += len(idx)
            if progress is not None:
                progress(done, len(out))
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
