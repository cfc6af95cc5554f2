"""The embedded store as an `index.protocol.Storage`: a library is a directory of generations.

CURRENT names the published generation (index/manifest.py); a reader opens it as an
`index.embedded.generation.Generation` and a write (`index.embedded.writer.Writer`) builds the
next one beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from index import manifest as layout
from index.config import LibraryConfig
from index.embedded.generation import Generation
from index.embedded.writer import Writer
from index.manifest import Manifest
from index.protocol import Progress, Target
from ingest.errors import LibraryError


class Files:
    """A library in $ASKDOCS_HOME/libraries/NAME/ (`index.config.LibraryConfig.path`)."""

    reembeds_in_place = True  # an ingest re-embeds into the next generation
    swept = True  # a writer sweeps old generations; a reader follows CURRENT

    def __init__(self, config: LibraryConfig) -> None:
        self.config = config
        self.path = config.path

    @property
    def where(self) -> str:
        return str(self.config.home)

    def tidy(self) -> None:
        if self.path.is_dir():
            layout.tidy(self.path)  # what a killed writer left, unless one is writing now

    def _current(self) -> Path | None:
        return layout.current(self.path) if self.path.is_dir() else None

    def open(self) -> Generation | None:
        """The published generation; retried if a writer swept it meanwhile."""
        for attempt in range(3):
            gen_dir = self._current()
            if gen_dir is None:
                return None
            try:
                return Generation(gen_dir)
            except LibraryError:
                if attempt == 2 or layout.current(self.path) == gen_dir:
                    raise  # damage of the published generation, not a writer's sweep
        return None

    def watch(self) -> Callable[[], object]:
        return self._current

    def _on_disk(self) -> Manifest | None:
        gen_dir = self._current()
        return Manifest.read(gen_dir) if gen_dir else None

    def built_model(self) -> str | None:
        m = self._on_disk()
        return m.model if m else None

    def built_embedder(self) -> str | None:
        m = self._on_disk()
        return m.embedder if m else None

    def writer(self, target: Target, progress: Progress | None) -> Writer:
        return Writer(target, progress)
