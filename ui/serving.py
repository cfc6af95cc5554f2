"""What `askdocs serve` holds between requests: one warm Assistant per published generation.

Readers never block each other or a writer. Each request asks for the Assistant of the
generation published now (CURRENT, one small file read; or one row of a PostgreSQL store,
whose Library reads a pinned snapshot, index/postgres/generation.py); when another process (or this one) has
published a newer generation, a new Library is opened over it with the same loaded model
and its indexes loaded at once, and later requests use it. Requests already running keep the
old one until they finish (the files of a generation are never modified, and an open SQLite
or FAISS file stays readable after a writer sweeps its directory), so a reader sees the old
library or the new one, never a mix. Writes go through their own Library object, one at a
time in this process and under the library's file lock across processes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from assistant.config import AssistantConfig
from assistant.service import Assistant
from index.library import Library
from ingest.errors import LibraryError
from ui.upload import sweep_uploads, uploads_dir

UPLOAD_GRACE_S = 60.0  # a copy saved this recently may be an upload about to take the lock

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
            warm = "warm up: what does this library cover?"
            assistant.ask(warm[: self.config.max_query_chars])  # within any configured limit

    def sweep_uploads(self) -> list[Path]:
        """At start: remove copies in the uploads folder that never reached the library (a
        server killed mid-upload). Under the writer's lock where the store has a file lock,
        so no write in flight is robbed; copies younger than a minute are left alone."""
        from index.manifest import WriteLock

        if self.config.library.postgres:  # an advisory lock in the database: go by age alone
            kept = {d.path for d in self.reader().documents()}
            return sweep_uploads(self.uploads, kept, min_age_s=UPLOAD_GRACE_S * 60)
        if not self.config.library.path.is_dir():
            return []
        try:
            with WriteLock(self.config.library.path, self.name, wait=0):
                kept = {d.path for d in self.reader().documents()}
                return sweep_uploads(self.uploads, kept, min_age_s=UPLOAD_GRACE_S)
        except (LibraryError, OSError):
            return []  # a writer is at work (or the disk is full); the next start sweeps

    def write(self, fn: Callable[[Assistant], T]) -> T:
        """Run `fn` on an Assistant over a private writable Library; readers pick up the
        generation it publishes on their next request."""
        if not self._write_lock.acquire(blocking=False):  # refused, not queued (a client
            # that gave up would otherwise have its write run later, unseen)
            raise LibraryError(
                f"The library {self.name!r} is being written by this server (pid {os.getpid()}).",
                hint="wait for that upload or delete to finish, then send this one again",
            )
        try:
            if self._embedder is None:  # a first ingest into an empty library
                from index.model.embedder import load_embedder

                self._embedder = load_embedder(self.config.library)
            library = Library.open(self.config.library, self._embedder, create=True)
            try:
                return fn(Assistant(self.config, library=library))
            finally:
                library.close()
        finally:
            self._write_lock.release()
