"""The PostgreSQL store as an `index.protocol.Storage`: a library is a schema of a database.

A reader pins the published generation in a snapshot (`index.postgres.generation.PgGeneration`);
a write (`index.postgres.writer.PgWriter`) publishes the next in one transaction. psycopg is
imported only when a connection opens.
"""

from __future__ import annotations

from collections.abc import Callable

from index.config import LibraryConfig
from index.postgres import generation as pg
from index.postgres.writer import PgWriter
from index.protocol import Progress, Target


class Database:
    """A library in the schema `index.postgres.generation.schema_of` names, at
    `index.config.LibraryConfig.store`."""

    where = "the PostgreSQL server"
    # A new model's vectors need a rebuild (the vector column's type has the dimension);
    # a generation is a snapshot no writer can sweep under a reader.
    reembeds_in_place = False
    swept = False

    def __init__(self, config: LibraryConfig) -> None:
        self.config = config

    def tidy(self) -> None:
        """Nothing to tidy: an unfinished transaction was rolled back by the server."""

    def open(self) -> pg.PgGeneration | None:
        return pg.PgGeneration.open(self.config)

    def watch(self) -> Callable[[], object]:
        return pg.Watch(self.config)

    def built_model(self) -> str | None:
        return pg.built_model(self.config)

    def built_embedder(self) -> str | None:
        return None  # read with the model once open (`index.library.Library.manifest`)

    def writer(self, target: Target, progress: Progress | None) -> PgWriter:
        return PgWriter(target, progress)
