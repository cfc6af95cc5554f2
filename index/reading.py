"""What an ingest does before it takes the writer lock: read, chunk, tokenize and embed.

Why outside the lock: embedding is nearly all of an ingest's time, and a library written by
several processes (or machines, on one PostgreSQL store) then serialises only the commits;
under the lock the writer re-plans against what is published by then, and a file another
writer has committed meanwhile is skipped (`index.plan.Planner.ingest`, both stores).

Why overlapped: reading and tokenizing (jieba holds the GIL) run on the calling thread while
the passages read so far are embedded on another (ONNX Runtime and torch release the GIL);
passages go to the model in runs of `FLUSH`, which the embedder sorts by length.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.records import Chunk, Document

FLUSH = 256  # passages per embedding call: long enough to sort by length, short to overlap


@dataclass
class Read:
    """One file as read for a write: its document (None: unreadable), the warnings reading
    gave, and its chunks, their BM25 tokens and vectors (None until computed)."""

    doc: Document | None
    warnings: list[str] = field(default_factory=list)
    chunks: list[Chunk] | None = None
    tokens: list[list[str]] | None = None
    vectors: np.ndarray | None = None


def read_files(
    loading: Any,  # noqa: ANN401 - the ingest.loading module, imported lazily
    files: dict[str, Path],
    chunked: Callable[[Document, list[str]], Read],
    passage_text: Callable[[Chunk, str], str],
    known: set[str],
    embedder: Callable[[], Any],
    progress: Callable[[str, int, int], None],
) -> dict[str, Read]:
    """Read, chunk (`chunked`: chunks and tokens), tokenize and embed `files` (key → path),
    embedding overlapped with reading. A document whose content is already `known` (a stored
    or earlier doc_id: a likely duplicate, which the plan usually skips) is read but not
    chunked or embedded."""
    out: dict[str, Read] = {}
    pending: list[tuple[str, int, str]] = []  # (key, chunk index, passage text)
    futures: list[tuple[list[tuple[str, int, str]], Future]] = []
    results: list[tuple[list[tuple[str, int, str]], np.ndarray]] = []
    total = done = 0
    model = None
    with ThreadPoolExecutor(1) as pool:

        def flush() -> None:
            nonlocal model
            if model is None:  # loaded on this thread, once there is work: a stage of its own
                progress("model", 0, 1)
                model = embedder()
                progress("model", 1, 1)
            batch = list(pending)
            pending.clear()
            texts = [text for _, _, text in batch]
            futures.append((batch, pool.submit(model.embed, texts, "passage")))

        def collect(block: bool) -> None:
            nonlocal done
            while futures and (block or futures[0][1].done()):
                batch, future = futures.pop(0)
                results.append((batch, future.result()))
                done += len(batch)
                progress("embed", done, total)

        for n, (key, path) in enumerate(files.items(), 1):
            progress("load", n, len(files))
            warnings: list[str] = []
            doc = loading.load_or_warn(path, warnings)
            if doc is None or doc.doc_id in known:
                out[key] = Read(doc, warnings)
                continue
            known.add(doc.doc_id)
            read = out[key] = chunked(doc, warnings)
            chunks = read.chunks or []
            total += len(chunks)
            for i, chunk in enumerate(chunks):
                pending.append((key, i, passage_text(chunk, doc.title)))
                if len(pending) >= FLUSH:
                    flush()
            collect(block=False)
        if pending:
            flush()
        collect(block=True)
    for read in out.values():
        if read.chunks is not None and model is not None:
            read.vectors = np.zeros((len(read.chunks), model.dim), dtype=np.float32)
    for batch, vecs in results:
        for (key, i, _), vec in zip(batch, vecs, strict=True):
            rows = out[key].vectors
            assert rows is not None  # every key with chunks got its rows above
            rows[i] = vec
    return out
