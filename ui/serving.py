"""What `askdocs serve` holds between requests: one warm Assistant per published generation.

Readers never block each other or a writer. Each request asks for the Assistant of the
generation published now (CURRENT, one small file read; or one row of a PostgreSQL store,
whose Library reads a pinned snapshot, index/postgres.py); when another process (or this one) has
published a newer generation, a new Library is opened over it with the same loaded model
and its indexes loaded at once, and later requests use it. Requests already running keep the
old one until they finish (the files of a generation are never modified, and an open SQLite
or FAISS file stays readable after a writer sweeps its directory), so a reader sees the old
library or the new one, never a mix. Writes go through their own Library object, one at a
time in this process and under the library's file lock across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from assistant.config import AssistantConfig
from assistant.service import Assistant
from index.library import Library
from ui.upload import uploads_dir

T = TypeVar("T")


class Served:
    """The served library: `reader()` for requests, `write(fn)` for uploads and deletes."""

    def __init__(self, config: AssistantConfig, embedder=None) -> None:  # noqa: ANN001
        self.config = config
        self._embedder = embedder  # loaded once, shared by every generation's Library
        self._snap: tuple[object, Assistant] | None = None
        self._current = Library.watch(config.library)  # CURRENT's file, or PostgreSQL's row
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.library.name

    @property
    def uploads(self) -> Path:
        return uploads_dir(self.config.library.home, self.name)

    def reader(self) -> Assistant:
        """The Assistant over the generation published now."""
        current = self._current()
        snap = self._snap
        if snap is not None and snap[0] == current:
            return snap[1]
        with self._open_lock:  # one request opens a new generation; the others wait for it
            snap = self._snap
            if snap is None or snap[0] != current:
                snap = (current, self._open())
                self._snap = snap
        return snap[1]

    def _open(self) -> Assistant:
        library = Library.open(self.config.library, self._embedder, create=True)
        if self._embedder is None and library.manifest is not None:
            self._embedder = library.embedder
        if library.manifest is not None:
            for lang in library.langs():  # load every index now, not inside a request
                library.lexical("warm", 1, lang)
                library.dense(np.zeros(library.manifest.dim, dtype=np.float32), 1, lang)
        assistant = Assistant(self.config, library=library)
        if library.manifest is not None:
            assistant.retriever._axes  # noqa: B018 - the language directions, from their cache
        return assistant

    def warm(self) -> None:
        """Open the library and load the model before the first request (seconds, once)."""
        assistant = self.reader()
        if assistant.library.manifest is not None:  # model, tokenizers, answer step: all loaded
            assistant.ask("warm up: what does this library cover?")

    def write(self, fn: Callable[[Assistant], T]) -> T:
        """Run `fn` on an Assistant over a private writable Library; readers pick up the
        generation it publishes on their next request."""
        with self._write_lock:
            if self._embedder is None:  # a first ingest into an empty library
                from index.embedder import load_embedder

                self._embedder = load_embedder(self.config.library)
            library = Library.open(self.config.library, self._embedder, create=True)
            try:
                return fn(Assistant(self.config, library=library))
            finally:
                library.close()
